"""The log tally: what the dashboard keeps from each new entry, tolerant of odd bodies and
never keeping a pseudonym whole; v1 leaves of older logs and v2 leaves read through their
openings alike, and consents counted right after a withdrawal with erasure forgot them."""

from __future__ import annotations

import json
from typing import Any

from gateway.dashboard.tally import (
    AIR_QUALITY,
    PARKING,
    RECENT_ACCESS,
    TRAFFIC_FLOW,
    LogTally,
    consent_states,
    epoch,
    fold,
    forget_lines,
    redact,
    shorten,
)
from ledger.entries import AccessEntry, ConsentEntry
from ledger.queries import TailEntry
from ledger.sealed import Opening

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


def entry(
    index: int, kind: str, leaf: bytes, at: float = T0, opening: Opening | None = None
) -> TailEntry:
    held = None if opening is None else opening.encode()
    return TailEntry(index, kind, leaf, b"", at, opening=held)


def consent_entry(cid: str, action: str, status: str) -> ConsentEntry:
    return ConsentEntry(
        action=action,  # type: ignore[arg-type]
        at="2026-05-04T08:00:00Z",
        actor="hospital-a",
        pilot="chronic-care",
        consent=cid,
        subject=SUBJECT,
        status=status,
        resource_hash="0" * 64,
        erase=action == "withdraw",
    )


def consent(index: int, cid: str, action: str, status: str) -> TailEntry:
    return entry(index, "consent", consent_entry(cid, action, status).leaf())


def access_entry(decision: str, break_glass: bool = False) -> AccessEntry:
    return AccessEntry(
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
    )


def access(index: int, decision: str, break_glass: bool = False) -> TailEntry:
    return entry(index, "access", access_entry(decision, break_glass).leaf())


def sealed_access(
    index: int, decision: str, break_glass: bool = False, *, held: bool = True
) -> TailEntry:
    leaf, opening = access_entry(decision, break_glass).sealed()
    return entry(index, "access", leaf, opening=opening if held else None)


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
    steps = [
        ("c1", "grant", "active"),
        ("c2", "grant", "active"),
        ("c3", "grant", "rejected"),
        ("c2", "withdraw", "inactive"),
        ("c4", "grant", "active"),
        ("c4", "update", "active"),
    ]
    v1 = [(i, consent_entry(*step).leaf()) for i, step in enumerate(steps)]
    assert consent_states(v1, {}) == {"active": 2, "withdrawn": 1, "other": 1}
    # The same story in v2 leaves, each read through its opening.
    sealed = [consent_entry(*step).sealed() for step in steps]
    v2 = [(i, leaf) for i, (leaf, _) in enumerate(sealed)]
    openings = {i: o for i, (_, o) in enumerate(sealed) if o is not None}
    assert consent_states(v2, openings) == {"active": 2, "withdrawn": 1, "other": 1}
    # Both in one log (an older log written on): c2's v2 withdrawal ends its v1 grant.
    mixed = v1[:3] + v2[3:]
    assert consent_states(mixed, openings) == {"active": 2, "withdrawn": 1, "other": 1}


def test_a_consent_withdrawn_with_erasure_counts_once_without_its_openings() -> None:
    steps = [
        ("c1", "grant", "active"),
        ("c2", "grant", "active"),
        ("c2", "update", "active"),
        ("c2", "withdraw", "inactive"),
    ]
    sealed = [consent_entry(*step).sealed() for step in steps]
    leaves = [(i, leaf) for i, (leaf, _) in enumerate(sealed)]
    openings = {i: o for i, (_, o) in enumerate(sealed) if o is not None}
    # Every entry of c2 forgotten: no Consent id left, its withdrawal still counts it.
    kept = {0: openings[0]}
    assert consent_states(leaves, kept) == {"active": 1, "withdrawn": 1}
    # Its earlier entries forgotten, the withdrawal still opened: counted by its id.
    kept = {0: openings[0], 3: openings[3]}
    assert consent_states(leaves, kept) == {"active": 1, "withdrawn": 1}
    # An opening of another entry's is no opening of this one: not counted as c1.
    assert consent_states(leaves[:1], {0: openings[3]}) == {}
    assert consent_states([(0, b"[1]"), (1, b"\xff")], {}) == {}


def test_consent_and_erasure_entries_call_for_a_recount() -> None:
    tally = LogTally()
    fold(tally, [access(0, "allow")])
    assert not tally.consents_stale
    fold(tally, [consent(1, "c1", "grant", "active")])
    assert tally.consents_stale
    tally.consents_stale = False
    fold(tally, [entry(2, "erasure", b"{}")])
    assert tally.consents_stale


def test_access_decisions_never_keep_a_pseudonym_or_the_request() -> None:
    tally = LogTally()
    fold(tally, [access(0, "allow"), access(1, "deny", break_glass=True)])
    assert tally.access_counts == {"allow": 1, "deny": 1, "break_glass": 1}
    newest = tally.access[-1]
    assert newest.index == 1 and newest.decision == "deny" and newest.break_glass
    assert newest.subject == "ababab…"
    assert SUBJECT not in repr(tally.access)
    assert SUBJECT[:7] not in repr(tally.access)


def test_sealed_access_decisions_are_read_through_their_openings() -> None:
    tally = LogTally()
    fold(tally, [sealed_access(0, "allow"), sealed_access(1, "allow", True, held=False)])
    assert tally.access_counts == {"allow": 2, "break_glass": 1}
    opened, erased = tally.access
    assert opened.subject == "ababab…" and opened.reason == "no consent for ababab…"
    assert opened.client == "hospital-a-ehr" and opened.type == "fhir.Observation"
    # Its person erased: counted, and its line says whom and why no more.
    assert erased.subject is None and erased.reason == "" and erased.break_glass
    assert tally.break_glass_reads == 1 and tally.latest_break_glass == erased
    assert SUBJECT[:7] not in repr(tally.access)


def test_an_erasure_takes_whom_and_why_out_of_the_lines() -> None:
    tally = LogTally()
    fold(
        tally,
        [access(0, "allow"), sealed_access(1, "allow", True), sealed_access(2, "deny")],
    )
    forget_lines(tally, held={2})  # entry 1's opening blinded by an erasure since
    v1, erased, kept = tally.access
    assert (erased.subject, erased.reason, erased.break_glass) == (None, "", True)
    assert tally.latest_break_glass == erased and tally.access.maxlen == RECENT_ACCESS
    assert kept.subject == "ababab…" and kept.reason
    assert v1.subject == "ababab…"  # a v1 leaf says it in the open anyway


def test_a_stored_opening_that_is_not_one_is_ignored() -> None:
    leaf, _ = access_entry("deny").sealed()
    tally = LogTally()
    fold(tally, [TailEntry(0, "access", leaf, b"", T0, opening=b"not an opening")])
    assert tally.access_counts == {"deny": 1} and tally.access[-1].subject is None


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
