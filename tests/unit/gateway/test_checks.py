"""The checks as a decision table: one bad message per row, the reason it must get; and the
time rules (key validity on the hub's clock, ``observed_at`` in the future) as tables of
their own."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway.ingest.checks import (
    REASONS,
    Rejected,
    Verified,
    precheck,
    topic_parts,
    verify,
    verify_chunk,
)
from gateway.ingest.validity import KeyPeriod, TimeRules, future_refusal, key_refusal
from gateway.registry.changes import (
    plan_key_revoke,
    plan_key_rotate,
    plan_source_add,
    plan_source_revoke,
)
from gateway.registry.state import Registry, parse_time
from ledger.envelope import MAX_RECORD_BYTES, Origin, SignedRecord, seal
from ledger.keys import Ed25519PrivateKey, generate_key, key_id, public_key_b64
from tests.support.registry import apply_all

TOPIC = "swiftchain/v1/city-air/station-1/records"
WHEN = "2026-03-01T10:00:00Z"
#: When the hub took the message, by its own clock.
RECEIVED = parse_time("2026-03-01T10:00:05Z")


def record(key: Ed25519PrivateKey, **overrides: Any) -> SignedRecord:
    fields: dict[str, Any] = {
        "pilot": "city-air",
        "source": "station-1",
        "seq": 1,
        "type": "city.air-quality",
        "payload": {"pm25": 4.2},
        "signing_key": key,
        "observed_at": WHEN,
    }
    fields.update(overrides)
    return seal(**fields)


def tamper(rec: SignedRecord, edit: Callable[[dict[str, Any]], None]) -> bytes:
    doc = json.loads(rec.to_wire())
    edit(doc)
    return json.dumps(doc).encode()


def check(
    registry: Registry,
    raw: bytes,
    topic: str = TOPIC,
    *,
    received_at: datetime = RECEIVED,
    rules: TimeRules | None = None,
) -> Verified:
    return verify(
        precheck(
            topic,
            raw,
            registry,
            max_bytes=MAX_RECORD_BYTES,
            received_at=received_at,
            rules=rules or TimeRules(),
        )
    )


def reason_of(
    registry: Registry,
    raw: bytes,
    topic: str = TOPIC,
    *,
    received_at: datetime = RECEIVED,
    rules: TimeRules | None = None,
) -> str:
    with pytest.raises(Rejected) as err:
        check(registry, raw, topic, received_at=received_at, rules=rules)
    assert err.value.reason in REASONS
    return err.value.reason


def test_a_good_record_passes(registry: Registry, source_key: Ed25519PrivateKey) -> None:
    rec = record(source_key)
    v = check(registry, rec.to_wire())
    assert v.leaf == rec.header.canonical()
    assert v.receipts_topic == "swiftchain/v1/city-air/station-1/receipts"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"x" * (MAX_RECORD_BYTES + 1), "oversize"),
        (b"{not json", "malformed_json"),
        (b"\xff\xfe", "malformed_json"),
        (b'{"a": 1, "a": 2}', "malformed_json"),
        (b'{"a": NaN}', "malformed_json"),
        (b"[" * 100 + b"]" * 100, "too_deep"),
        (b"[]", "invalid_envelope"),
        (b'{"header": {}, "body": {}, "sig": ""}', "invalid_envelope"),
    ],
)
def test_unparseable_messages(registry: Registry, raw: bytes, reason: str) -> None:
    assert reason_of(registry, raw) == reason


def test_rejections_of_signed_records(registry: Registry, source_key: Ed25519PrivateKey) -> None:
    other = generate_key()
    good = record(source_key)
    table: list[tuple[str, bytes, str]] = [
        ("topic spoofing", good.to_wire(), "swiftchain/v1/city-air/station-2/records"),
        ("other pilot's topic", good.to_wire(), "swiftchain/v1/health/station-1/records"),
        (
            "unknown pilot",
            record(source_key, pilot="nowhere").to_wire(),
            "swiftchain/v1/nowhere/station-1/records",
        ),
        (
            "unknown source",
            record(source_key, source="station-9").to_wire(),
            "swiftchain/v1/city-air/station-9/records",
        ),
        ("unknown key", record(other).to_wire(), TOPIC),
        (
            "observed in the future",
            record(source_key, observed_at="9999-12-31T23:59:59Z").to_wire(),
            TOPIC,
        ),
        ("wrong type", record(source_key, type="city.noise").to_wire(), TOPIC),
        ("forged signature", tamper(good, lambda d: d.update(sig=record(other).sig)), TOPIC),
        ("edited header", tamper(good, lambda d: d["header"].update(seq=2)), TOPIC),
        (
            "commitment mismatch",
            tamper(good, lambda d: d["body"]["payload"].update(pm25=99)),
            TOPIC,
        ),
        ("extra field", tamper(good, lambda d: d["header"].update(extra=1)), TOPIC),
        ("wrong field type", tamper(good, lambda d: d["header"].update(seq="1")), TOPIC),
        (
            "subject without consent",
            tamper(good, lambda d: d["header"].update(subject="p-12345678")),
            TOPIC,
        ),
    ]
    expected = {
        "topic spoofing": "topic_mismatch",
        "other pilot's topic": "topic_mismatch",
        "unknown pilot": "unknown_pilot",
        "unknown source": "unknown_source",
        "unknown key": "unknown_key",
        "observed in the future": "observed_in_future",
        "wrong type": "type_not_allowed",
        "forged signature": "bad_signature",
        "edited header": "bad_signature",
        "commitment mismatch": "commitment_mismatch",
        "extra field": "invalid_envelope",
        "wrong field type": "invalid_envelope",
        "subject without consent": "consent_required",
    }
    got = {name: reason_of(registry, raw, topic) for name, raw, topic in table}
    assert got == expected


def test_rejection_names_the_record(registry: Registry, source_key: Ed25519PrivateKey) -> None:
    rec = record(source_key, type="city.noise")
    with pytest.raises(Rejected) as err:
        check(registry, rec.to_wire())
    assert err.value.record_id == rec.header.id
    bad = tamper(rec, lambda d: d["header"].update(seq=0))
    with pytest.raises(Rejected) as err2:
        check(registry, bad)
    assert (err2.value.reason, err2.value.record_id) == ("invalid_envelope", rec.header.id)


def test_revoked_key_and_source(registry: Registry, source_key: Ed25519PrivateKey) -> None:
    kid = next(iter(registry.keys))
    revoked = "2026-02-01T00:00:00Z"
    apply_all(registry, plan_key_revoke(registry, key=kid, actor="t", at=revoked))
    early = record(source_key, observed_at="2026-01-15T00:00:00Z")
    # Received before the revocation: the key vouched for it then.
    assert check(registry, early.to_wire(), received_at=parse_time("2026-01-31T23:59:59Z"))
    # Received after it: refused, however early it says it was observed.
    assert reason_of(registry, early.to_wire()) == "key_not_valid"
    apply_all(
        registry, plan_source_revoke(registry, pilot="city-air", source="station-1", actor="t")
    )
    assert reason_of(registry, early.to_wire()) == "source_revoked"


def test_a_revoked_key_lands_no_backdated_record(
    registry: Registry, source_key: Ed25519PrivateKey
) -> None:
    """The attack: a stolen key, revoked, goes on signing records "observed" before its
    revocation. Judged by observed_at they landed; judged on the hub's clock none does."""
    kid = next(iter(registry.keys))
    revoked = parse_time("2026-05-01T12:00:00Z")
    apply_all(registry, plan_key_revoke(registry, key=kid, actor="t", at="2026-05-01T12:00:00Z"))
    received = revoked + timedelta(seconds=1)
    for back in (timedelta(minutes=1), timedelta(days=90)):
        observed = (revoked - back).isoformat().replace("+00:00", "Z")
        raw = record(source_key, observed_at=observed).to_wire()
        assert reason_of(registry, raw, received_at=received) == "key_not_valid", back
        # Not even within a generous late-delivery window: that is for rotations.
        generous = TimeRules(late_delivery={"city-air": timedelta(hours=1)})
        assert reason_of(registry, raw, received_at=received, rules=generous) == "key_not_valid"


def test_a_rotated_key_lands_only_records_in_flight(
    registry: Registry, source_key: Ed25519PrivateKey
) -> None:
    new = generate_key()
    switch = "2026-05-01T12:00:00Z"
    apply_all(
        registry,
        plan_key_rotate(
            registry,
            pilot="city-air",
            source="station-1",
            public_key=public_key_b64(new.public_key()),
            actor="t",
            valid_from=switch,
        ),
    )
    end = parse_time(switch)
    before = record(source_key, observed_at="2026-05-01T11:59:00Z").to_wire()
    after = record(source_key, observed_at="2026-05-01T12:00:30Z").to_wire()
    soon, late = end + timedelta(minutes=1), end + timedelta(minutes=10)
    assert check(registry, before, received_at=soon)
    assert reason_of(registry, after, received_at=soon) == "key_not_valid"
    assert reason_of(registry, before, received_at=late) == "key_not_valid"
    # The pilot's own window: none at all here.
    strict = TimeRules(late_delivery={"city-air": timedelta(0)})
    assert reason_of(registry, before, received_at=soon, rules=strict) == "key_not_valid"
    # An agent's backlog, re-sealed with the new key, lands whenever it arrives.
    resealed = record(new, observed_at="2026-04-24T08:00:00Z").to_wire()
    assert check(registry, resealed, received_at=end + timedelta(days=7))
    assert reason_of(registry, resealed, received_at=end - timedelta(seconds=1)) == "key_not_valid"


@pytest.mark.parametrize(
    ("observed_at", "skew", "reason"),
    [
        ("2026-03-01T10:05:05Z", timedelta(minutes=5), None),
        ("2026-03-01T10:05:05.000001Z", timedelta(minutes=5), "observed_in_future"),
        ("2026-03-01T10:00:06Z", timedelta(0), "observed_in_future"),
        ("9999-12-31T23:59:59Z", timedelta(hours=1), "observed_in_future"),
        ("0001-01-01T00:00:00Z", timedelta(minutes=5), None),
    ],
)
def test_observed_at_ahead_of_the_hub(
    registry: Registry,
    source_key: Ed25519PrivateKey,
    observed_at: str,
    skew: timedelta,
    reason: str | None,
) -> None:
    raw = record(source_key, observed_at=observed_at).to_wire()
    rules = TimeRules(max_clock_skew=skew)
    if reason is None:
        assert check(registry, raw, rules=rules)
    else:
        assert reason_of(registry, raw, rules=rules) == reason


def test_consent_hook_can_refuse(registry: Registry, source_key: Ed25519PrivateKey) -> None:
    def refuse(record: Any, source_org: str) -> None:
        raise Rejected("consent_required", "consent withdrawn", record.header.id)

    with pytest.raises(Rejected) as err:
        precheck(
            TOPIC,
            record(source_key).to_wire(),
            registry,
            max_bytes=MAX_RECORD_BYTES,
            received_at=RECEIVED,
            consent_check=refuse,
        )
    assert err.value.reason == "consent_required"


def test_verify_chunk_keeps_order(registry: Registry, source_key: Ed25519PrivateKey) -> None:
    def candidate(raw: bytes) -> Any:
        return precheck(TOPIC, raw, registry, max_bytes=MAX_RECORD_BYTES, received_at=RECEIVED)

    good = [candidate(record(source_key, seq=i).to_wire()) for i in (1, 2)]
    forged = candidate(tamper(record(source_key, seq=3), lambda d: d["header"].update(seq=4)))
    out = verify_chunk([good[0], forged, good[1]])
    assert [type(x) for x in out] == [Verified, Rejected, Verified]


@pytest.mark.parametrize(
    ("topic", "parts"),
    [
        ("swiftchain/v1/a/b/records", ("a", "b")),
        ("swiftchain/v1/a/b/receipts", None),
        ("swiftchain/v2/a/b/records", None),
        ("swiftchain/v1/a/b/c/records", None),
    ],
)
def test_topic_parts(topic: str, parts: tuple[str, str] | None) -> None:
    assert topic_parts(topic) == parts


# -- the rules as tables: key validity on the hub's clock, and observed_at ---------------------

T0 = datetime(2026, 1, 1, tzinfo=UTC)
END = datetime(2026, 6, 1, tzinfo=UTC)
MIN, DAY = timedelta(minutes=1), timedelta(days=1)
WINDOW = timedelta(minutes=10)
FOREVER = KeyPeriod("k", T0)
ROTATED_OUT = KeyPeriod("k", T0, planned_end=END)
REVOKED = KeyPeriod("k", T0, revoked_at=END)


@pytest.mark.parametrize(
    ("case", "period", "observed_at", "received_at", "window", "usable"),
    [
        ("in force, no end", FOREVER, END, END, WINDOW, True),
        ("received before valid_from", FOREVER, T0, T0 - MIN, WINDOW, False),
        (
            "observed before valid_from, received in force",
            FOREVER,
            T0 - 90 * DAY,
            END,
            WINDOW,
            True,
        ),
        ("rotated: received before the end", ROTATED_OUT, END - MIN, END - MIN, WINDOW, True),
        ("rotated: in flight at the end", ROTATED_OUT, END - MIN, END + MIN, WINDOW, True),
        ("rotated: observed after the end", ROTATED_OUT, END + MIN / 2, END + MIN, WINDOW, False),
        ("rotated: observed at the end", ROTATED_OUT, END, END + MIN, WINDOW, False),
        ("rotated: past the window", ROTATED_OUT, END - MIN, END + 11 * MIN, WINDOW, False),
        ("rotated: at the window's end", ROTATED_OUT, END - MIN, END + WINDOW, WINDOW, False),
        ("rotated: a week later", ROTATED_OUT, END - DAY, END + 7 * DAY, WINDOW, False),
        ("rotated: no window", ROTATED_OUT, END - MIN, END, timedelta(0), False),
        ("revoked: received before", REVOKED, END - MIN, END - MIN, WINDOW, True),
        ("revoked: backdated a minute", REVOKED, END - MIN, END + MIN, WINDOW, False),
        ("revoked: backdated 90 days", REVOKED, END - 90 * DAY, END + MIN, WINDOW, False),
        ("revoked: at the instant", REVOKED, END - DAY, END, WINDOW, False),
        (
            "revoked before its planned end",
            KeyPeriod("k", T0, planned_end=END + DAY, revoked_at=END),
            END - MIN,
            END + MIN,
            WINDOW,
            False,
        ),
        (
            "expired, then revoked: the window still closes at the revocation",
            KeyPeriod("k", T0, planned_end=END, revoked_at=END + 2 * MIN),
            END - MIN,
            END + 3 * MIN,
            WINDOW,
            False,
        ),
    ],
)
def test_key_validity_table(
    case: str,
    period: KeyPeriod,
    observed_at: datetime,
    received_at: datetime,
    window: timedelta,
    usable: bool,
) -> None:
    refusal = key_refusal(
        period, observed_at=observed_at, received_at=received_at, late_window=window
    )
    assert (refusal is None) == usable, (case, refusal)
    if refusal is not None:
        assert "key k" in refusal


def test_key_period_tells_rotation_from_revocation(
    registry: Registry, source_key: Ed25519PrivateKey
) -> None:
    old = key_id(source_key.public_key())
    new = generate_key()
    apply_all(
        registry,
        plan_key_rotate(
            registry,
            pilot="city-air",
            source="station-1",
            public_key=public_key_b64(new.public_key()),
            actor="t",
            valid_from="2026-06-01T00:00:00Z",
            valid_until="2027-01-01T00:00:00Z",
        ),
    )
    rotated = KeyPeriod.of(registry.keys[old])
    assert (rotated.planned_end, rotated.revoked_at) == (END, None)
    fresh_id = key_id(new.public_key())
    assert KeyPeriod.of(registry.keys[fresh_id]).planned_end == datetime(2027, 1, 1, tzinfo=UTC)
    apply_all(
        registry, plan_key_revoke(registry, key=fresh_id, actor="t", at="2026-07-01T00:00:00Z")
    )
    revoked = KeyPeriod.of(registry.keys[fresh_id])
    assert revoked.revoked_at == datetime(2026, 7, 1, tzinfo=UTC)
    assert revoked.planned_end == datetime(2027, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("ahead", "skew", "believable"),
    [
        (timedelta(0), timedelta(0), True),
        (-365 * DAY, timedelta(0), True),
        (5 * MIN, 5 * MIN, True),
        (5 * MIN + timedelta(microseconds=1), 5 * MIN, False),
        (timedelta(seconds=1), timedelta(0), False),
    ],
)
def test_observed_at_table(ahead: timedelta, skew: timedelta, believable: bool) -> None:
    refusal = future_refusal(END + ahead, received_at=END, max_clock_skew=skew)
    assert (refusal is None) == believable, refusal


def test_far_future_observed_at_is_refused_without_overflow() -> None:
    far = datetime.max.replace(tzinfo=UTC)
    assert future_refusal(far, received_at=END, max_clock_skew=timedelta(hours=1))
    assert (
        future_refusal(datetime.min.replace(tzinfo=UTC), received_at=END, max_clock_skew=MIN)
        is None
    )


def test_pilots_without_a_window_get_the_default() -> None:
    rules = TimeRules(late_delivery={"strict": timedelta(0)})
    assert rules.late_delivery_window("strict") == timedelta(0)
    assert rules.late_delivery_window("city-air") == timedelta(minutes=10)


# -- wire v2: nothing new names a person on the log ----------------------------------------------
def test_a_v1_record_naming_a_person_or_a_consent_is_refused(
    registry: Registry, source_key: Ed25519PrivateKey
) -> None:
    about = record(source_key, subject="pt-00000001", consent="c-1", version=1)
    assert reason_of(registry, about.to_wire()) == "subject_in_header"
    consent_only = tamper(
        record(source_key, version=1), lambda d: d["header"].update(consent="c-1")
    )
    assert reason_of(registry, consent_only) in ("subject_in_header", "bad_signature")
    # A v1 record about nobody (an old city agent) still goes in.
    assert check(registry, record(source_key, version=1).to_wire())


def test_a_v2_record_keeps_its_person_off_the_leaf(
    registry: Registry, source_key: Ed25519PrivateKey
) -> None:
    v = check(registry, record(source_key, subject="pt-00000001", consent="c-1").to_wire())
    assert b"pt-00000001" not in v.leaf and b"c-1" not in v.leaf
    assert v.record.subject == "pt-00000001" and v.record.consent == "c-1"
    other = tamper(
        record(source_key, subject="pt-00000001", consent="c-1"),
        lambda d: d["body"]["person"].update(subject="pt-00000002"),
    )
    assert reason_of(registry, other) == "commitment_mismatch"


def test_a_relayed_reading_is_the_devices_and_the_device_is_unregistered(
    registry: Registry, source_key: Ed25519PrivateKey
) -> None:
    device_key = generate_key()
    salts = {"salt": bytes(16), "person_salt": bytes(range(16))}
    device = record(
        device_key, source="hd-0a1b2c3d4e", subject="pt-00000001", consent="c-1", **salts
    )
    relayed = record(
        source_key,
        subject="pt-00000001",
        consent="c-1",
        record_id=device.header.id,
        origin=Origin(header=device.header, sig=device.sig),
        **salts,
    )
    assert check(registry, relayed.to_wire()).record.body.origin is not None
    moved = tamper(
        relayed, lambda d: d["body"]["origin"]["header"].update(observed_at=WHEN[:-3] + "01Z")
    )
    assert reason_of(registry, moved) == "origin_mismatch"
    # A device on the public registry would name itself: refused.
    apply_all(
        registry,
        plan_source_add(
            registry,
            pilot="city-air",
            source="hd-0a1b2c3d4e",
            org="city",
            types=["city.air-quality"],
            public_key=public_key_b64(device_key.public_key()),
            actor="test",
            valid_from="2026-01-01T00:00:00Z",
        ),
    )
    with pytest.raises(Rejected) as err:
        check(registry, relayed.to_wire())
    assert err.value.reason == "origin_mismatch" and "registered source" in err.value.detail
