"""What every generator shares: scale presets, seeded randomness, ids, pilot and org names."""

from __future__ import annotations

import random
from dataclasses import dataclass

# Pilot and organisation ids, as pilots/definitions/*.yaml spell them: the only place they
# are spelled here.
AIR_QUALITY = "air-quality"
TRAFFIC = "traffic-flow"
PARKING = "smart-parking"
CHRONIC_CARE = "chronic-care"
REFERRAL = "cross-hospital-referral"
#: Pilot ids, in the order their events are generated (ties in time keep this order).
PILOTS = (AIR_QUALITY, TRAFFIC, PARKING, CHRONIC_CARE, REFERRAL)

CITY_ENV_BUREAU = "env-bureau"
CITY_TRANSPORT_BUREAU = "transport-bureau"
PARKCO = "parkwise"
HOSPITAL_A = "harbour-peoples-hospital"
HOSPITAL_B = "harbour-university-hospital"
RESEARCH_INSTITUTE = "urban-health-institute"
PUBLIC_HEALTH_BUREAU = "harbour-cdc"


@dataclass(frozen=True)
class Scale:
    """How much of the city and how many patients a scenario simulates."""

    name: str
    stations: int
    segments: int
    car_parks: int
    patients: int
    #: Days of home readings before the start, uploaded by each patient's first sync.
    history_days: int
    referrals_per_day: float
    aq_interval_min: int
    traffic_interval_min: int
    parking_interval_min: int


SCALES = {
    s.name: s
    for s in (
        Scale("small", 2, 2, 2, 8, 3, 4, 30, 15, 30),
        # The demo's: ~5,000 events a day, replayed in seconds.
        Scale("default", 5, 8, 5, 40, 13, 10, 15, 5, 10),
        Scale("large", 12, 24, 12, 400, 27, 80, 5, 1, 5),
    )
}


def rng_for(seed: int, generator: str) -> random.Random:
    """A generator's own stream: adding or leaving out one pilot never shifts another's data.

    (``random.Random`` seeded with a str hashes it with SHA-512, the same on every run.)
    """
    return random.Random(f"swiftchain:{seed}:{generator}")


def new_id(rng: random.Random, prefix: str) -> str:
    """A FHIR-id-safe, seeded identifier such as ``obs-3f9a0c1d2e4b5a69``."""
    return f"{prefix}-{rng.getrandbits(64):016x}"


def clamp(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))
