"""``city.traffic-flow``: vehicle counts and mean speeds per road segment and interval.

Demand follows :func:`clock.traffic_index` (weekday rush hours at 08:00 and 17:30, a flatter
weekend). A segment passes at most its capacity, so at the peak counts flatten while speeds
fall (BPR volume-delay curve). One incident on a seeded segment and time cuts that segment's
capacity for an hour or so: counts drop and speeds collapse.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from .clock import Window, rfc3339, traffic_index
from .params import CITY_TRANSPORT_BUREAU, TRAFFIC, Scale, clamp, rng_for
from .scenario import RecordEvent

VERSION = "1"
PILOT = TRAFFIC
TYPE = "city.traffic-flow"
ORG = CITY_TRANSPORT_BUREAU
#: Effective vehicle length over a loop detector (km), for occupancy = flow x length / speed.
VEHICLE_LENGTH_KM = 0.0065
#: BPR volume-delay parameters for congested urban roads.
BPR_ALPHA, BPR_BETA = 0.8, 4


@dataclass(frozen=True)
class Segment:
    source: str
    lanes: int
    #: Vehicles per hour the segment passes at most, all lanes together.
    capacity_vph: float
    free_speed_kmh: float
    #: Demand at the weekday morning peak relative to capacity (above 1: queues form).
    peak_demand: float


@dataclass(frozen=True)
class Incident:
    source: str
    start: datetime
    end: datetime
    #: Fraction of capacity left while it lasts.
    capacity_left: float

    def active(self, source: str, moment: datetime) -> bool:
        return source == self.source and self.start <= moment < self.end


def segments(seed: int, count: int) -> list[Segment]:
    rng = rng_for(seed, "traffic.segments")
    out = []
    for i in range(count):
        lanes = rng.choice((2, 2, 3, 3, 4))
        out.append(
            Segment(
                source=f"traffic-seg-{i + 1:02d}",
                lanes=lanes,
                capacity_vph=lanes * rng.uniform(1500, 1900),
                free_speed_kmh=rng.choice((50.0, 60.0, 60.0, 70.0, 80.0)),
                peak_demand=rng.uniform(0.85, 1.12),
            )
        )
    return out


def plan_incident(seed: int, window: Window, count: int) -> Incident:
    """One incident in daytime on a seeded segment, 40-100 minutes long."""
    rng = rng_for(seed, "traffic.incident")
    source = f"traffic-seg-{rng.randrange(count) + 1:02d}"
    day = rng.choice(window.days())
    start = day + timedelta(hours=rng.uniform(9.5, 15.5))
    if start < window.start:
        start = window.start + timedelta(hours=1)
    start = start.replace(second=0)
    return Incident(source, start, start + timedelta(minutes=rng.uniform(40, 100)), 0.35)


def generate(seed: int, window: Window, scale: Scale) -> list[RecordEvent]:
    rng = rng_for(seed, PILOT)
    roads = segments(seed, scale.segments)
    incident = plan_incident(seed, window, scale.segments)
    interval = timedelta(minutes=scale.traffic_interval_min)
    per_interval = interval / timedelta(hours=1)
    events = []
    for moment in window.ticks(interval):
        # Counts are for the interval that ends at ``moment``; its middle sets the demand.
        middle = moment + interval / 2
        for road in roads:
            demand = road.capacity_vph * road.peak_demand * traffic_index(middle)
            demand *= rng.gauss(1.0, 0.06)
            capacity = road.capacity_vph
            blocked = incident.active(road.source, middle)
            if blocked:
                capacity *= incident.capacity_left
            flow_vph = clamp(min(demand, capacity * rng.uniform(0.93, 0.99)), 0.0, 1e6)
            ratio = demand / capacity
            speed = road.free_speed_kmh / (1 + BPR_ALPHA * ratio**BPR_BETA)
            if blocked:
                speed = min(speed, road.free_speed_kmh * rng.uniform(0.12, 0.22))
            speed = clamp(speed * rng.gauss(1.0, 0.04), 3.0, road.free_speed_kmh * 1.15)
            vehicles = round(flow_vph * per_interval)
            occupancy = clamp(flow_vph / road.lanes * VEHICLE_LENGTH_KM / speed, 0.0, 0.95)
            events.append(_event(road, moment, interval, vehicles, speed, occupancy))
    return events


def _event(
    road: Segment,
    moment: datetime,
    interval: timedelta,
    vehicles: int,
    speed: float,
    occupancy: float,
) -> RecordEvent:
    observed = rfc3339(moment)
    payload = {
        "observed_at": observed,
        "detector": road.source,
        "interval_s": int(interval.total_seconds()),
        "vehicles": vehicles,
        "mean_speed_kmh": round(speed, 1),
        "occupancy": round(occupancy, 3),
    }
    return RecordEvent(
        t=observed,
        kind="record",
        pilot=PILOT,
        source=road.source,
        type=TYPE,
        patient=None,
        consent=None,
        payload=payload,
    )
