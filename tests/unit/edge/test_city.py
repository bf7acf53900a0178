from __future__ import annotations

import pytest
from pydantic import ValidationError

from edge.city import AirQuality, Parking, TrafficFlow

NOW = "2026-05-01T08:30:00Z"


def test_valid_readings() -> None:
    AirQuality.model_validate({"station": "st-1", "observed_at": NOW, "pm25": 12, "no2": 30.5})
    TrafficFlow.model_validate(
        {"detector": "d-7", "observed_at": NOW, "interval_s": 60, "vehicles": 31, "occupancy": 0.2}
    )
    Parking.model_validate({"facility": "p-1", "observed_at": NOW, "capacity": 100, "occupied": 5})


@pytest.mark.parametrize(
    ("model", "reading"),
    [
        (AirQuality, {"station": "st-1", "observed_at": NOW}),  # measures nothing
        (AirQuality, {"station": "st-1", "observed_at": NOW, "pm25": -1}),
        (AirQuality, {"station": "st-1", "observed_at": "yesterday", "pm25": 1}),
        (AirQuality, {"station": "st-1", "observed_at": NOW, "pm25": 1, "name": "Ann"}),
        (AirQuality, {"station": "st-1", "observed_at": NOW, "pm25": "12"}),  # strict
        (TrafficFlow, {"detector": "d", "observed_at": NOW, "interval_s": 0, "vehicles": 1}),
        (Parking, {"facility": "p", "observed_at": NOW, "capacity": 5, "occupied": 6}),
    ],
)
def test_invalid_readings_are_refused(model: type, reading: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        model.model_validate(reading)
