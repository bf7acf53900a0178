"""The log tally: what the dashboard keeps from each new entry, tolerant of odd bodies and
never keeping a pseudonym whole."""

from __future__ import annotations

import json
from typing import Any

from gateway.dashboard.tally import (
    AIR_QUALITY,
    PARKING,
    TRAFFIC_FLOW,
    LogTally,
    epoch,
    fold,
    redact,
    shorten,
)
from ledger.entries import AccessEntry, ConsentEntry
from ledger.queries import TailEntry

T0 = 1_780_000_000.0
SUBJECT = "ab" * 32


def record(
    index: int,
    type_: str,
    payload: Any,
    *,
    pilot: str = "city",
    source: str = "s1",
    observed_at: str = "2026-05-04T08:00:00Z",
    at: float = T0,
) -> TailEntry:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return TailEntry(index, "record", b"{}", b"", at, pilot, source, type_, observed_at, body)


def entry(index: int, kind: str, leaf: bytes, at: float = T0) -> TailEntry:
    return TailEntry(index, kind, leaf, b"", at)


def consent(index: int, cid: str, action: str, status: str) -> TailEntry:
    leaf = ConsentEntry(
        action=action,  # type: ignore[arg-type]
        at="2026-05-04T08:00:00Z",
        actor="hospital-a",
        pilot="chronic-care",
        consent=cid,
        subject=SUBJECT,
        status=status,
        resource_hash="0" * 64,
    ).leaf()
    return entry(index, "consent", leaf)


def access(index: int, decision: str, break_glass: bool = False) -> TailEntry:
    leaf = AccessEntry(
        at="2026-05-04T08:00:00Z",
        client="hospital-a-ehr",
        org="hospital-a",
        pilot="chronic-care",
        purpose="TREAT",
        type="fhir.Observation",
        subject=SUBJECT,
        decision=decision,  # type: ignore[arg-type]
        reason=f"no consent for {SUBJECT}",
        break_glass=break_glass,
        request="GET /fhir/Observation?subject=" + SUBJECT,
    ).leaf()
    return entry(index, "access", leaf)


def test_counts_kinds_pilots_and_commit_seconds() -> None:
    tally = LogTally()
    fold(
        tally,
        [
            entry(0, "registry", b"{}", T0),
            record(1, "t", {}, pilot="a", at=T0 + 0.2),
            record(2, "t", {}, pilot="a", at=T0 + 0.7),
            record(3, "t", {}, pilot="b", at=T0 + 1.1),
        ],
    )
    assert tally.size == 4
    assert tally.kinds == {"registry": 1, "record": 3}
    assert tally.records_by_pilot == {"a": 2, "b": 1}
    assert tally.per_second == {int(T0): {"a": 2}, int(T0) + 1: {"b": 1}}
    assert tally.last_commit_at == T0 + 1.1


def test_old_commit_seconds_are_dropped() -> None:
    tally = LogTally()
    fold(tally, [record(0, "t", {}, at=T0), record(1, "t", {}, at=T0 + 1000)])
    assert list(tally.per_second) == [int(T0) + 1000]


def test_city_readings_are_read_tolerantly() -> None:
    tally = LogTally()
    fold(
        tally,
        [
            record(0, AIR_QUALITY, {"station": "aq-1", "pm25": 12.5, "no2": 30}),
            record(1, AIR_QUALITY, {"station": "aq-1", "pm25": None, "no2": "high"}),  # nothing
            record(2, AIR_QUALITY, {"pm25": True, "no2": 40.0}, source="aq-2"),  # no station
            record(3, AIR_QUALITY, b"not json"),
            record(
                4,
                TRAFFIC_FLOW,
                {"detector": "seg-1", "vehicles": 100, "interval_s": 300, "mean_speed_kmh": 42.0},
            ),
            record(5, TRAFFIC_FLOW, {"detector": "seg-2", "vehicles": 10}),  # no interval
            record(6, PARKING, {"facility": "p1", "occupied": 40, "capacity": 50}),
            record(
                7,
                PARKING,
                {"facility": "p1", "occupied": 45, "capacity": 50},
                observed_at="2026-05-04T07:00:00Z",
            ),  # older: ignored
            record(8, PARKING, {"facility": "p2", "occupied": 1, "capacity": 0}),
            record(9, AIR_QUALITY, {"station": "aq-3", "pm25": 5}, observed_at="yesterday"),
        ],
    )
    assert [(p.pm25, p.no2) for p in tally.air["aq-1"]] == [(12.5, 30.0)]
    assert [(p.pm25, p.no2) for p in tally.air["aq-2"]] == [(None, 40.0)]
    assert tally.traffic["seg-1"][0].vehicles_per_hour == 1200
    assert tally.traffic["seg-1"][0].speed_kmh == 42.0
    assert "seg-2" not in tally.traffic
    assert tally.parking["p1"].occupied == 40
    assert "p2" not in tally.parking
    assert "aq-3" not in tally.air
    assert tally.unreadable == 2  # the non-JSON body and the unreadable time


def test_consents_follow_their_latest_entry() -> None:
    tally = LogTally()
    fold(
        tally,
        [
            consent(0, "c1", "grant", "active"),
            consent(1, "c2", "grant", "active"),
            consent(2, "c3", "grant", "rejected"),
            consent(3, "c2", "withdraw", "inactive"),
            consent(4, "c4", "grant", "active"),
            consent(5, "c4", "update", "active"),
        ],
    )
    assert tally.consents == {"c1": "active", "c2": "withdrawn", "c3": "other", "c4": "active"}


def test_access_decisions_never_keep_a_pseudonym_or_the_request() -> None:
    tally = LogTally()
    fold(tally, [access(0, "allow"), access(1, "deny", break_glass=True)])
    assert tally.access_counts == {"allow": 1, "deny": 1, "break_glass": 1}
    newest = tally.access[-1]
    assert newest.index == 1 and newest.decision == "deny" and newest.break_glass
    assert newest.subject == "ababab…"
    assert SUBJECT not in repr(tally.access)
    assert SUBJECT[:7] not in repr(tally.access)


def test_unreadable_leaves_are_counted_not_fatal() -> None:
    tally = LogTally()
    fold(tally, [entry(0, "consent", b"[1]"), entry(1, "access", b"\xff")])
    assert tally.unreadable == 2 and tally.size == 2


def test_redact_and_shorten() -> None:
    assert redact(f"no consent for {SUBJECT} today") == "no consent for ababab… today"
    assert redact("short words stay") == "short words stay"
    assert redact(None) is None
    assert shorten("abcdefgh") == "abcdef…"
    assert shorten(None) is None and shorten("") is None


def test_epoch() -> None:
    assert epoch("2026-05-04T00:00:00Z") == epoch("2026-05-04T02:00:00+02:00")
    assert epoch("2026-05-04T00:00:00") is None  # no offset
    assert epoch("nonsense") is None and epoch(None) is None
