"""A small city for the dashboard tests: consent and access entries written into a ledger
before its hub starts, and the simulators' street data signed and published over MQTT."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ledger.entries import AccessEntry, ConsentEntry
from ledger.envelope import seal
from ledger.keys import PrivateKey, load_private_key
from ledger.store import LedgerWriter, NewEntry
from ledger.suite import DEFAULT_SUITE, Suite
from simulators import air_quality, parking, traffic
from simulators.clock import Window, rfc3339
from simulators.params import SCALES
from tests.support.hub import MqttPeer, ThreadHub, records_topic

ORIGIN = "test.swiftchain/ledger"
#: Pseudonyms as the edge makes them (HMAC-SHA-256, hex); the page must never show one whole.
SUBJECTS = [f"{i:02x}" * 32 for i in range(1, 13)]
#: The subject whose Consent :func:`seed_consents_and_access` withdraws with erasure.
ERASED = 9
GENERATORS = (air_quality, traffic, parking)


def _at(minutes_ago: float) -> str:
    return rfc3339(datetime.now(UTC) - timedelta(minutes=minutes_ago))


def _entry(kind: str, fact: ConsentEntry | AccessEntry, sealed: bool, suite: Suite) -> NewEntry:
    if not sealed:
        return NewEntry(kind, fact.leaf())
    leaf, opening = fact.sealed(suite=suite)
    return NewEntry(kind, leaf, opening=opening)


def seed_consents_and_access(db_path: Path, suite: Suite = DEFAULT_SUITE) -> dict[str, int]:
    """Write 12 consents (3 withdrawn, 1 refused) and 14 access decisions (3 denied, one
    break-glass) into a new ledger at ``db_path``; returns the counts a summary should show.

    An older log written on: the first consents and every other access decision are v1
    leaves, the rest v2 (wire v2: sealed, their openings in the private store). One Consent
    (``cns-009``) is withdrawn with erasure: the openings of its entries, and of the access
    decision about its subject, are forgotten. The ledger is of ``suite`` (its hub's key's)."""
    db_path.parent.mkdir(parents=True, exist_ok=True)
    entries: list[NewEntry] = []
    forget: list[int] = []
    for i, subject in enumerate(SUBJECTS):
        status = "rejected" if i == 11 else "active"
        grant = ConsentEntry(
            action="grant",
            at=_at(300 - i),
            actor="hospital-a",
            pilot="chronic-care",
            consent=f"cns-{i:03d}",
            subject=subject,
            status=status,
            resource_hash=f"{i:064x}",
        )
        if i == ERASED:
            forget.append(len(entries))
        entries.append(_entry("consent", grant, sealed=i >= 6, suite=suite))
    for i in (2, 5, ERASED):
        withdraw = ConsentEntry(
            action="withdraw",
            at=_at(120 - i),
            actor="patient-portal",
            pilot="chronic-care",
            consent=f"cns-{i:03d}",
            subject=SUBJECTS[i],
            status="inactive",
            resource_hash=f"{i + 100:064x}",
            erase=i == ERASED,
        )
        if i == ERASED:
            forget.append(len(entries))
        entries.append(_entry("consent", withdraw, sealed=i >= 5, suite=suite))
    who = [
        ("hospital-a-ehr", "hospital-a", "TREAT", "fhir.Observation"),
        ("hospital-b-ehr", "hospital-b", "TREAT", "fhir.DiagnosticReport"),
        ("research-etl", "research-institute", "HRESCH", "fhir.Observation"),
        ("phb-analytics", "public-health-bureau", "PUBHLTH", "city.air-quality"),
    ]
    for i in range(14):
        client, org, purpose, data_type = who[i % len(who)]
        denied = i in (3, 8, 12)
        personal = data_type.startswith("fhir.")
        about = SUBJECTS[i % len(SUBJECTS)] if personal else None
        access = AccessEntry(
            at=_at(60 - 4 * i),
            client=client,
            org=org,
            pilot="chronic-care" if personal else "air-quality",
            purpose=purpose,
            type=data_type,
            subject=about,
            decision="deny" if denied else "allow",
            reason="consent withdrawn" if denied else "policy and consent permit",
            break_glass=i == 6,
            count=None if denied else 3,
        )
        if about == SUBJECTS[ERASED]:
            forget.append(len(entries))
        entries.append(_entry("access", access, sealed=i % 2 == 1, suite=suite))
    writer = LedgerWriter(db_path, origin=ORIGIN, suite=suite)
    try:
        writer.append(entries)
        writer.append([], forget=forget)
    finally:
        writer.close()
    return {"consent": 15, "access": 14, "active": 8, "withdrawn": 3, "other": 1, "deny": 3}


@dataclass
class CityFeed:
    """The simulators' air-quality, traffic and parking readings of the last ``hours``,
    signed by sources registered on ``hub`` and published on their topics."""

    hub: ThreadHub
    hours: float = 6.0
    seed: int = 7
    events: list[Any] = field(default_factory=list)
    keys: dict[tuple[str, str], PrivateKey] = field(default_factory=dict)
    seqs: dict[tuple[str, str], int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        end = datetime.now(UTC).replace(second=0, microsecond=0)
        window = Window(end - timedelta(hours=self.hours), timedelta(hours=self.hours))
        for generator in GENERATORS:
            self.events.extend(generator.generate(self.seed, window, SCALES["default"]))
        self.events.sort(key=lambda e: e.t)

    def register(self) -> None:
        for e in self.events:
            key = (e.pilot, e.source)
            if key not in self.keys:
                path, _ = self.hub.register_source(
                    e.pilot, e.source, [e.type], valid_from="2020-01-01T00:00:00Z"
                )
                self.keys[key] = load_private_key(path)

    def wire(self, event: Any) -> tuple[str, bytes]:
        key = (event.pilot, event.source)
        self.seqs[key] = seq = self.seqs.get(key, 0) + 1
        record = seal(
            pilot=event.pilot,
            source=event.source,
            seq=seq,
            type=event.type,
            payload=event.payload,
            observed_at=event.t,
            signing_key=self.keys[key],
        )
        return records_topic(event.pilot, event.source), record.to_wire()

    async def publish(self, peer: MqttPeer, events: list[Any], per_second: float = 0) -> None:
        """Publish ``events`` (all at once, or paced at ``per_second``)."""
        for event in events:
            topic, payload = self.wire(event)
            peer.publish_nowait(topic, payload)
            if per_second:
                await asyncio.sleep(1 / per_second)
