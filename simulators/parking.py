"""``city.parking``: occupancy of car parks with different daily lives.

Each car park has a purpose (offices fill by 09:00 and empty after 17:00; the mall fills in
the afternoon and on weekends; park-and-ride fills before the morning rush; the hospital is
busy in clinic and visiting hours; residential parking is full at night). Occupancy moves
toward that purpose's target through simulated arrivals and departures, so it turns over
smoothly rather than jumping.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from .clock import Window, bump, hour_of_day, is_weekend, rfc3339
from .params import PARKCO, PARKING, Scale, clamp, rng_for
from .scenario import RecordEvent

VERSION = "1"
PILOT = PARKING
TYPE = "city.parking"
ORG = PARKCO


def _office(h: float, weekend: bool) -> float:
    if weekend:
        return 0.08 + 0.1 * bump(h, 12, 3)
    day = clamp((h - 7.0) / 2.0, 0, 1) * clamp((18.5 - h) / 2.0, 0, 1)
    return 0.06 + 0.86 * day


def _mall(h: float, weekend: bool) -> float:
    open_hours = clamp((h - 9.5) / 1.5, 0, 1) * clamp((22.0 - h) / 1.0, 0, 1)
    peak = 0.97 if weekend else 0.8
    return 0.04 + open_hours * (0.35 + (peak - 0.35) * max(bump(h, 15, 2.5), bump(h, 19.5, 1.5)))


def _park_and_ride(h: float, weekend: bool) -> float:
    if weekend:
        return 0.05 + 0.3 * bump(h, 13, 3)
    day = clamp((h - 5.5) / 2.5, 0, 1) * clamp((19.5 - h) / 2.0, 0, 1)
    return 0.04 + 0.9 * day


def _hospital(h: float, weekend: bool) -> float:
    clinic = 0.0 if weekend else 0.55 * clamp((h - 7.5) / 1.5, 0, 1) * clamp((17 - h) / 1.5, 0, 1)
    return 0.3 + clinic + 0.3 * bump(h, 19, 1.2)


def _residential(h: float, weekend: bool) -> float:
    away = 0.15 if weekend else 0.45 * clamp((h - 7) / 1.5, 0, 1) * clamp((18.5 - h) / 1.5, 0, 1)
    return 0.92 - away


#: Purpose -> (target occupancy curve, typical capacity)
PURPOSES: dict[str, tuple[Callable[[float, bool], float], int]] = {
    "office": (_office, 420),
    "mall": (_mall, 850),
    "park-and-ride": (_park_and_ride, 300),
    "hospital": (_hospital, 260),
    "residential": (_residential, 140),
}


@dataclass(frozen=True)
class CarPark:
    source: str
    purpose: str
    capacity: int

    def target(self, moment: datetime) -> float:
        curve, _ = PURPOSES[self.purpose]
        return curve(hour_of_day(moment), is_weekend(moment))


def car_parks(seed: int, count: int) -> list[CarPark]:
    rng = rng_for(seed, "parking.car-parks")
    names = list(PURPOSES)
    out = []
    for i in range(count):
        purpose = names[i % len(names)]
        capacity = round(PURPOSES[purpose][1] * rng.uniform(0.8, 1.2))
        out.append(CarPark(f"parking-{i + 1:02d}", purpose, capacity))
    return out


def _step(rng: random.Random, park: CarPark, occupied: int, target: float, hours: float) -> int:
    """Arrivals and departures over ``hours``: both happen all day (turnover); their
    balance pulls occupancy toward the target."""
    goal = target * park.capacity
    turnover = 0.12 * occupied * hours  # some of those parked leave even at a steady state
    gap = goal - occupied
    rate = min(1.0, 2.2 * hours)  # close most of the gap within about half an hour
    arrivals = max(0.0, turnover + max(gap, 0.0) * rate + rng.gauss(0, 0.015 * park.capacity))
    departures = max(0.0, turnover + max(-gap, 0.0) * rate + rng.gauss(0, 0.015 * park.capacity))
    return int(clamp(round(occupied + arrivals - departures), 0, park.capacity))


def generate(seed: int, window: Window, scale: Scale) -> list[RecordEvent]:
    rng = rng_for(seed, PILOT)
    parks = car_parks(seed, scale.car_parks)
    interval = timedelta(minutes=scale.parking_interval_min)
    hours = interval / timedelta(hours=1)
    occupied = {p.source: round(p.target(window.start) * p.capacity) for p in parks}
    events = []
    for moment in window.ticks(interval):
        for park in parks:
            occupied[park.source] = _step(
                rng, park, occupied[park.source], park.target(moment), hours
            )
            observed = rfc3339(moment)
            events.append(
                RecordEvent(
                    t=observed,
                    kind="record",
                    pilot=PILOT,
                    source=park.source,
                    type=TYPE,
                    patient=None,
                    consent=None,
                    payload={
                        "observed_at": observed,
                        "facility": park.source,
                        "capacity": park.capacity,
                        "occupied": occupied[park.source],
                    },
                )
            )
    return events
