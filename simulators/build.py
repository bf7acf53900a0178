"""Putting a scenario together: run the chosen pilots' generators, merge, count, head it.

``build_scenario`` is pure: the same arguments give the same :class:`Scenario`, byte for byte
once written. ``default_scenario()`` is the demo's.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta

from . import air_quality, chronic_care, consents, parking, referral, story, traffic
from .clock import Window, parse_utc, rfc3339
from .params import HOSPITAL_A, HOSPITAL_B, PILOTS, SCALES, Scale
from .patients import plan_consents, plan_referral_consents, roster
from .scenario import (
    FORMAT,
    FORMAT_VERSION,
    ClientInfo,
    ConsentEvent,
    DeviceInfo,
    Header,
    QueryEvent,
    RecordEvent,
    Scenario,
    SourceInfo,
    count_events,
)

DEFAULT_SEED = 7
DEFAULT_START = "2026-05-04T00:00:00Z"
DEFAULT_HOURS = 24.0

GENERATORS = {
    air_quality.PILOT: air_quality.VERSION,
    traffic.PILOT: traffic.VERSION,
    parking.PILOT: parking.VERSION,
    chronic_care.PILOT: chronic_care.VERSION,
    referral.PILOT: referral.VERSION,
    "consents": consents.VERSION,
    "story": story.VERSION,
}
#: Who operates each source (by source id prefix).
_SOURCE_ORGS = (
    ("aq-station-", air_quality.ORG),
    ("traffic-seg-", traffic.ORG),
    ("parking-", parking.ORG),
    ("home-bp-gw-01", HOSPITAL_A),
    ("home-bp-gw-02", HOSPITAL_B),
    (f"{HOSPITAL_A}-", HOSPITAL_A),
    (f"{HOSPITAL_B}-", HOSPITAL_B),
)

AnyEvent = RecordEvent | ConsentEvent | QueryEvent


def _org_of(source: str) -> str:
    for prefix, org in _SOURCE_ORGS:
        if source.startswith(prefix):
            return org
    raise ValueError(f"no organisation operates source {source!r}")


def _sources(events: Sequence[AnyEvent], devices: dict[str, DeviceInfo]) -> list[SourceInfo]:
    """Every source that publishes: a device's readings are its relay's."""
    types: dict[tuple[str, str], set[str]] = {}
    for e in events:
        if e.kind != "query":
            device = devices.get(e.source)
            source = device.relay if device is not None else e.source
            types.setdefault((e.pilot, source), set()).add(e.type)
    return [
        SourceInfo(pilot=pilot, source=source, org=_org_of(source), types=sorted(kinds))
        for (pilot, source), kinds in sorted(
            types.items(), key=lambda item: (PILOTS.index(item[0][0]), item[0][1])
        )
    ]


def _clients(events: Sequence[AnyEvent]) -> list[ClientInfo]:
    found = {(e.source, e.payload.org) for e in events if isinstance(e, QueryEvent)}
    return [ClientInfo(client=c, org=o) for c, o in sorted(found)]


def build_scenario(
    seed: int = DEFAULT_SEED,
    start: datetime | str = DEFAULT_START,
    hours: float = DEFAULT_HOURS,
    pilots: Collection[str] = PILOTS,
    scale: str | Scale = "default",
) -> Scenario:
    """The scenario of these parameters; ValueError for unknown pilots or scales."""
    unknown = set(pilots) - set(PILOTS)
    if unknown:
        raise ValueError(f"unknown pilot(s) {', '.join(sorted(unknown))}; use {', '.join(PILOTS)}")
    if not pilots:
        raise ValueError("choose at least one pilot")
    if isinstance(scale, str):
        if scale not in SCALES:
            raise ValueError(f"unknown scale {scale!r}; use {', '.join(SCALES)}")
        scale = SCALES[scale]
    if not 0 < hours <= 24 * 366:
        raise ValueError("hours is more than 0 and at most a year")
    begin = parse_utc(start) if isinstance(start, str) else start
    window = Window(begin, timedelta(seconds=round(hours * 3600)))
    chosen = [p for p in PILOTS if p in pilots]

    people = roster(seed, scale.patients)
    chronic_plans = plan_consents(seed, window, people, scale.history_days)
    referral_count = max(1, round(scale.referrals_per_day / 2))
    referral_plans = plan_referral_consents(seed, window, chronic_plans, referral_count)
    referrals = referral.plan_referrals(seed, window, scale, referral_plans)
    episode = air_quality.plan_episode(seed, window)

    groups: list[Sequence[AnyEvent]] = []
    plans = (chronic_plans if chronic_care.PILOT in chosen else []) + (
        referral_plans if referral.PILOT in chosen else []
    )
    groups.append(consents.generate(plans, window.end))
    if air_quality.PILOT in chosen:
        groups.append(air_quality.generate(seed, window, scale))
    if traffic.PILOT in chosen:
        groups.append(traffic.generate(seed, window, scale))
    if parking.PILOT in chosen:
        groups.append(parking.generate(seed, window, scale))
    if chronic_care.PILOT in chosen:
        groups.append(chronic_care.generate(seed, window, scale, chronic_plans))
    if referral.PILOT in chosen:
        groups.append(referral.generate(seed, window, scale, referral_plans))
    groups.append(
        story.generate(
            window,
            chronic_plans[0] if chronic_care.PILOT in chosen else None,
            episode if air_quality.PILOT in chosen else None,
            referrals if referral.PILOT in chosen else [],
        )
    )
    # Stable: events at the same second keep generator order (consents first, queries last).
    events = sorted((e for g in groups for e in g), key=lambda e: e.t)
    homes = chronic_care.devices(seed, chronic_plans) if chronic_care.PILOT in chosen else {}
    used = {e.source for e in events if e.kind == "record"}
    homes = {d: info for d, info in homes.items() if d in used}
    header = Header(
        format=FORMAT,
        version=FORMAT_VERSION,
        seed=seed,
        scale=scale.name,
        start=rfc3339(window.start),
        duration_s=window.seconds,
        pilots=chosen,
        generators=GENERATORS,
        sources=_sources(events, homes),
        clients=_clients(events),
        counts=count_events(events),
        devices=sorted(homes.values(), key=lambda d: d.device),
    )
    return Scenario(header, events)


def default_scenario() -> Scenario:
    """The demo's scenario: seed 7, 24 hours from 2026-05-04T00:00:00Z, every pilot."""
    return build_scenario()
