"""``city.air-quality``: PM2.5, PM10, NO2 and O3 (µg/m³) from a few monitoring stations.

The shapes: primary pollutants (NO2, and PM a little) follow the traffic and a shallow night
and morning boundary layer; NO2 peaks with the rush hours, most at roadside stations; O3 is
photochemical, so it peaks mid-afternoon and is eaten by NO at the kerb; PM2.5 builds up over
many hours during one pollution episode (stagnant air) on a seeded day, then clears. Sensor
noise is autocorrelated; now and then a reading, or one pollutant, is missing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from .clock import Window, bump, hour_of_day, rfc3339, traffic_index
from .params import AIR_QUALITY, CITY_ENV_BUREAU, Scale, clamp, rng_for
from .scenario import RecordEvent

VERSION = "1"
PILOT = AIR_QUALITY
TYPE = "city.air-quality"
ORG = CITY_ENV_BUREAU
#: A fictional city centre (lat, lon) that the stations are spread around.
CENTRE = (31.2304, 121.4737)
#: Chance that a whole reading is lost, and that one pollutant of a reading is.
P_MISSING_READING = 0.015
P_MISSING_VALUE = 0.01
POLLUTANTS = ("pm25", "pm10", "no2", "o3")


@dataclass(frozen=True)
class Station:
    source: str
    setting: str
    lat: float
    lon: float
    #: How much road traffic the station sees (0 park .. 1 kerbside of an arterial).
    traffic_weight: float
    pm25_base: float
    no2_base: float
    o3_base: float
    pm10_ratio: float


#: (setting, traffic weight, PM2.5, NO2, O3 baselines in µg/m³)
_SETTINGS = (
    ("roadside", 1.0, 18.0, 48.0, 55.0),
    ("urban-background", 0.5, 14.0, 28.0, 70.0),
    ("suburban", 0.25, 10.0, 16.0, 82.0),
    ("industrial", 0.6, 22.0, 34.0, 60.0),
    ("residential", 0.35, 12.0, 22.0, 75.0),
)


def stations(seed: int, count: int) -> list[Station]:
    rng = rng_for(seed, "air-quality.stations")
    out = []
    for i in range(count):
        setting, weight, pm25, no2, o3 = _SETTINGS[i % len(_SETTINGS)]
        out.append(
            Station(
                source=f"aq-station-{i + 1:02d}",
                setting=setting,
                lat=round(CENTRE[0] + rng.uniform(-0.08, 0.08), 5),
                lon=round(CENTRE[1] + rng.uniform(-0.1, 0.1), 5),
                traffic_weight=weight,
                pm25_base=pm25 * rng.uniform(0.85, 1.15),
                no2_base=no2 * rng.uniform(0.85, 1.15),
                o3_base=o3 * rng.uniform(0.9, 1.1),
                pm10_ratio=rng.uniform(1.45, 1.85),
            )
        )
    return out


@dataclass(frozen=True)
class Episode:
    """A pollution episode: PM2.5 builds up from ``start`` to ``peak``, clears by ``end``."""

    start: datetime
    peak: datetime
    end: datetime
    #: PM2.5 added at the peak (µg/m³), before each station's own weighting.
    extra_pm25: float

    def excess(self, moment: datetime) -> float:
        if moment <= self.start or moment >= self.end:
            return 0.0
        if moment <= self.peak:
            x = (moment - self.start) / (self.peak - self.start)
            return self.extra_pm25 * x * x * (3 - 2 * x)  # smoothstep build-up
        x = (moment - self.peak) / (self.end - self.peak)
        return self.extra_pm25 * (1 - x) ** 2  # a front clears it faster than it came


def plan_episode(seed: int, window: Window) -> Episode:
    """The episode of this seed: it starts early on one of the window's days."""
    rng = rng_for(seed, "air-quality.episode")
    day = rng.choice(window.days())
    start = day + timedelta(hours=rng.uniform(3, 9))
    if start < window.start:
        start = window.start + timedelta(hours=1)
    peak = start + timedelta(hours=rng.uniform(8, 12))
    end = peak + timedelta(hours=rng.uniform(3, 6))
    return Episode(start, peak, end, rng.uniform(60, 110))


def _levels(station: Station, moment: datetime, episode: Episode) -> dict[str, float]:
    """Noise-free concentrations at ``moment``."""
    h = hour_of_day(moment)
    traffic = traffic_index(moment)
    # Shallow mixing layer at night and dawn traps primary pollutants; afternoon dilutes.
    mixing = 1 + 0.35 * bump(h, 5.0, 3.0) - 0.25 * bump(h, 14.5, 3.0)
    no2 = station.no2_base * (0.3 + 1.2 * station.traffic_weight * traffic) * mixing
    sunlight = bump(h, 15.0, 2.8)
    o3 = station.o3_base * (0.2 + 1.0 * sunlight) * (1 - 0.35 * station.traffic_weight * traffic)
    pm25 = station.pm25_base * (0.8 + 0.3 * traffic) * mixing + episode.excess(moment) * (
        0.8 + 0.3 * (1 - station.traffic_weight)
    )
    pm10 = pm25 * station.pm10_ratio + 6 * station.traffic_weight * traffic  # road dust
    return {"pm25": pm25, "pm10": pm10, "no2": no2, "o3": o3}


def generate(seed: int, window: Window, scale: Scale) -> list[RecordEvent]:
    rng = rng_for(seed, PILOT)
    episode = plan_episode(seed, window)
    interval = timedelta(minutes=scale.aq_interval_min)
    sites = stations(seed, scale.stations)
    drift: dict[tuple[str, str], float] = {(s.source, p): 0.0 for s in sites for p in POLLUTANTS}
    events = []
    for moment in window.ticks(interval):
        for station in sites:
            levels = _levels(station, moment, episode)
            reading: dict[str, float | None] = {}
            for pollutant in POLLUTANTS:
                key = (station.source, pollutant)
                # Autocorrelated sensor error (slow) plus white noise (fast), multiplicative.
                drift[key] = 0.6 * drift[key] + rng.gauss(0, 0.06)
                value = levels[pollutant] * math.exp(drift[key] + rng.gauss(0, 0.03))
                reading[pollutant] = round(clamp(value, 0.0, 2000.0), 1)
            if rng.random() < P_MISSING_READING:
                continue  # the station was offline
            for pollutant in POLLUTANTS:
                if rng.random() < P_MISSING_VALUE:
                    reading[pollutant] = None
            if all(v is None for v in reading.values()):
                continue  # a reading measures something (edge.city.AirQuality)
            events.append(_event(station, moment, reading))
    return events


def _event(station: Station, moment: datetime, reading: dict[str, float | None]) -> RecordEvent:
    observed = rfc3339(moment)
    payload = {
        "observed_at": observed,
        "location": {"lat": station.lat, "lon": station.lon},
        "station": station.source,
        **{k: v for k, v in reading.items() if v is not None},
    }
    return RecordEvent(
        t=observed,
        kind="record",
        pilot=PILOT,
        source=station.source,
        type=TYPE,
        patient=None,
        consent=None,
        payload=payload,
    )
