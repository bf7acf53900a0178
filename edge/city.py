"""Typed models for the smart-city sensor types (until pilots/ YAML declares them).

Strict wire models: unknown fields are refused, strings are bounded, numbers are checked for
physical sense. None of them can describe a person, so their records carry no subject.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ledger.envelope import UtcTimestamp

DeviceId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")]
Concentration = Annotated[float, Field(ge=0, le=100_000)]


class GeoPoint(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    lat: Annotated[float, Field(ge=-90, le=90)]
    lon: Annotated[float, Field(ge=-180, le=180)]


class _Reading(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    observed_at: UtcTimestamp
    location: GeoPoint | None = None


class AirQuality(_Reading):
    """``city.air-quality``: one station's pollutant concentrations in µg/m³."""

    station: DeviceId
    pm25: Concentration | None = None
    pm10: Concentration | None = None
    no2: Concentration | None = None
    o3: Concentration | None = None
    so2: Concentration | None = None
    co: Concentration | None = None
    #: Air-quality index as the city publishes it.
    aqi: Annotated[int, Field(ge=0, le=1000)] | None = None

    @model_validator(mode="after")
    def _measures_something(self) -> AirQuality:
        values = (self.pm25, self.pm10, self.no2, self.o3, self.so2, self.co, self.aqi)
        # Counted, not all(... for ...): a generator per reading was a measurable part of it.
        if values.count(None) == len(values):
            raise ValueError("an air-quality reading has at least one measurement")
        return self


class TrafficFlow(_Reading):
    """``city.traffic-flow``: vehicles counted by one detector over an interval."""

    detector: DeviceId
    interval_s: Annotated[int, Field(gt=0, le=86_400)]
    vehicles: Annotated[int, Field(ge=0, le=1_000_000)]
    lane: Annotated[int, Field(ge=0, le=64)] | None = None
    mean_speed_kmh: Annotated[float, Field(ge=0, le=400)] | None = None
    #: Fraction of the interval the detector was occupied.
    occupancy: Annotated[float, Field(ge=0, le=1)] | None = None


class Parking(_Reading):
    """``city.parking``: occupancy of one car park or street segment."""

    facility: DeviceId
    capacity: Annotated[int, Field(ge=0, le=100_000)]
    occupied: Annotated[int, Field(ge=0, le=100_000)]

    @model_validator(mode="after")
    def _fits(self) -> Parking:
        if self.occupied > self.capacity:
            raise ValueError("occupied is larger than capacity")
        return self


CITY_MODELS: dict[str, type[_Reading]] = {
    "city.air-quality": AirQuality,
    "city.traffic-flow": TrafficFlow,
    "city.parking": Parking,
}
