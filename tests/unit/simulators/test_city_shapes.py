"""The city generators have the shapes a city would recognise."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from itertools import pairwise
from statistics import mean

from edge.city import CITY_MODELS
from simulators.air_quality import plan_episode
from simulators.clock import Window, parse_utc
from simulators.params import SCALES
from simulators.scenario import RecordEvent, Scenario
from simulators.traffic import plan_incident


def _records(scenario: Scenario, type_id: str) -> list[RecordEvent]:
    return [e for e in scenario.events if isinstance(e, RecordEvent) and e.type == type_id]


def _at(text: str) -> datetime:
    return parse_utc(text)


def _hours(records: Iterable[RecordEvent], field: str, low: float, high: float) -> list[float]:
    """``field`` of every reading observed in [low, high) hours of the day."""
    out = []
    for r in records:
        moment = _at(r.payload["observed_at"])
        h = moment.hour + moment.minute / 60
        if low <= h < high and r.payload.get(field) is not None:
            out.append(float(r.payload[field]))
    return out


def _window(scenario: Scenario) -> Window:
    return Window(_at(scenario.header.start), timedelta(seconds=scenario.header.duration_s))


def test_city_payloads_are_valid_edge_sensor_models(demo: Scenario, weekend: Scenario) -> None:
    for scenario in (demo, weekend):
        for e in scenario.events:
            if e.type in CITY_MODELS and isinstance(e, RecordEvent):
                assert e.patient is None and e.consent is None
                CITY_MODELS[e.type].model_validate(e.payload)
                assert e.payload["observed_at"] == e.t


def test_rush_hour_traffic_is_heavier_and_slower_than_3am(demo: Scenario) -> None:
    traffic = _records(demo, "city.traffic-flow")  # 2026-05-04 is a Monday
    morning = mean(_hours(traffic, "vehicles", 7.5, 9.0))
    evening = mean(_hours(traffic, "vehicles", 17.0, 18.5))
    night = mean(_hours(traffic, "vehicles", 2.5, 4.0))
    assert morning > 5 * night and evening > 5 * night
    assert mean(_hours(traffic, "mean_speed_kmh", 7.5, 9.0)) < mean(
        _hours(traffic, "mean_speed_kmh", 2.5, 4.0)
    )


def test_weekend_traffic_has_no_rush_hour_but_a_midday_hump(weekend: Scenario) -> None:
    traffic = _records(weekend, "city.traffic-flow")  # 2026-05-09 is a Saturday
    by_hour = {h: mean(_hours(traffic, "vehicles", h, h + 1)) for h in range(24)}
    assert 11 <= max(by_hour, key=lambda h: by_hour[h]) <= 16
    assert by_hour[8] < 0.8 * by_hour[13]
    assert by_hour[3] < 0.25 * by_hour[13]


def test_incident_slows_its_segment(demo: Scenario) -> None:
    incident = plan_incident(demo.header.seed, _window(demo), SCALES["default"].segments)
    speeds = [
        (_at(e.payload["observed_at"]), e.payload["mean_speed_kmh"])
        for e in _records(demo, "city.traffic-flow")
        if e.source == incident.source
    ]
    during = [s for t, s in speeds if incident.start < t <= incident.end]
    before = [s for t, s in speeds if incident.start - timedelta(hours=2) < t <= incident.start]
    assert during and before
    assert mean(during) < 0.5 * mean(before)


def test_ozone_peaks_in_the_afternoon_and_no2_with_the_rush(demo: Scenario) -> None:
    air = _records(demo, "city.air-quality")
    o3 = {h: mean(_hours(air, "o3", h, h + 1)) for h in range(24)}
    assert 12 <= max(o3, key=lambda h: o3[h]) <= 17
    assert mean(_hours(air, "o3", 13, 17)) > 2 * mean(_hours(air, "o3", 0, 5))
    kerb = [e for e in air if e.source == "aq-station-01"]  # the roadside station
    assert mean(_hours(kerb, "no2", 7.5, 9.5)) > 1.8 * mean(_hours(kerb, "no2", 2.5, 4.0))


def test_pollution_episode_builds_up_pm25(demo: Scenario) -> None:
    episode = plan_episode(demo.header.seed, _window(demo))
    air = _records(demo, "city.air-quality")
    pm25 = [(_at(e.payload["observed_at"]), e.payload.get("pm25")) for e in air]
    peak = [v for t, v in pm25 if v is not None and abs((t - episode.peak).total_seconds()) < 3600]
    before = [v for t, v in pm25 if v is not None and t < episode.start]
    assert peak and before
    assert mean(peak) > 2.5 * mean(before)
    # A build-up over hours, not a step: half-way up it is between the two.
    middle = episode.start + (episode.peak - episode.start) / 2
    half = [v for t, v in pm25 if v is not None and abs((t - middle).total_seconds()) < 1800]
    assert mean(before) < mean(half) < mean(peak)


def test_some_readings_are_missing(demo: Scenario) -> None:
    air = _records(demo, "city.air-quality")
    scale = SCALES["default"]
    expected = scale.stations * 24 * 60 // scale.aq_interval_min
    assert 0.9 * expected < len(air) < expected
    assert any("no2" not in e.payload or "pm25" not in e.payload for e in air)


def test_parking_turns_over_within_capacity(demo: Scenario, weekend: Scenario) -> None:
    parking = _records(demo, "city.parking")
    by_park: dict[str, list[RecordEvent]] = defaultdict(list)
    for e in parking:
        assert 0 <= e.payload["occupied"] <= e.payload["capacity"]
        by_park[e.source].append(e)
    office = by_park["parking-01"]  # purposes cycle: office, mall, park-and-ride, ...
    assert mean(_hours(office, "occupied", 10, 15)) > 4 * mean(_hours(office, "occupied", 2, 5))
    mall = by_park["parking-02"]
    assert mean(_hours(mall, "occupied", 14, 17)) > 3 * mean(_hours(mall, "occupied", 3, 6))
    for events in by_park.values():
        values = [e.payload["occupied"] for e in events]
        changes = sum(a != b for a, b in pairwise(values))
        assert changes > len(values) // 2  # it moves through the day
    weekend_office = [e for e in _records(weekend, "city.parking") if e.source == "parking-01"]
    assert mean(_hours(weekend_office, "occupied", 10, 15)) < 0.5 * mean(
        _hours(office, "occupied", 10, 15)
    )
