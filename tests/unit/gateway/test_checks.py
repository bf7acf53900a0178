"""The checks as a decision table: one bad message per row, the reason it must get."""

from __future__ import annotations

import json
from collections.abc import Callable
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
from gateway.registry.changes import plan_key_revoke, plan_source_revoke
from gateway.registry.state import Registry
from ledger.envelope import MAX_RECORD_BYTES, SignedRecord, seal
from ledger.keys import Ed25519PrivateKey, generate_key
from tests.support.registry import apply_all

TOPIC = "swiftchain/v1/city-air/station-1/records"
WHEN = "2026-03-01T10:00:00Z"


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


def reason_of(registry: Registry, raw: bytes, topic: str = TOPIC) -> str:
    with pytest.raises(Rejected) as err:
        verify(precheck(topic, raw, registry, max_bytes=MAX_RECORD_BYTES))
    assert err.value.reason in REASONS
    return err.value.reason


def test_a_good_record_passes(registry: Registry, source_key: Ed25519PrivateKey) -> None:
    rec = record(source_key)
    v = verify(precheck(TOPIC, rec.to_wire(), registry, max_bytes=MAX_RECORD_BYTES))
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
            "before validity",
            record(source_key, observed_at="2025-12-31T23:59:59Z").to_wire(),
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
        "before validity": "key_not_valid",
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
        precheck(TOPIC, rec.to_wire(), registry, max_bytes=MAX_RECORD_BYTES)
    assert err.value.record_id == rec.header.id
    bad = tamper(rec, lambda d: d["header"].update(seq=0))
    with pytest.raises(Rejected) as err2:
        precheck(TOPIC, bad, registry, max_bytes=MAX_RECORD_BYTES)
    assert (err2.value.reason, err2.value.record_id) == ("invalid_envelope", rec.header.id)


def test_revoked_key_and_source(registry: Registry, source_key: Ed25519PrivateKey) -> None:
    kid = next(iter(registry.keys))
    apply_all(registry, plan_key_revoke(registry, key=kid, actor="t", at="2026-02-01T00:00:00Z"))
    assert reason_of(registry, record(source_key).to_wire()) == "key_not_valid"
    early = record(source_key, observed_at="2026-01-15T00:00:00Z")
    assert verify(precheck(TOPIC, early.to_wire(), registry, max_bytes=MAX_RECORD_BYTES))
    apply_all(
        registry, plan_source_revoke(registry, pilot="city-air", source="station-1", actor="t")
    )
    assert reason_of(registry, early.to_wire()) == "source_revoked"


def test_consent_hook_can_refuse(registry: Registry, source_key: Ed25519PrivateKey) -> None:
    def refuse(header: Any, source_org: str) -> None:
        raise Rejected("consent_required", "consent withdrawn", header.id)

    with pytest.raises(Rejected) as err:
        precheck(
            TOPIC,
            record(source_key).to_wire(),
            registry,
            max_bytes=MAX_RECORD_BYTES,
            consent_check=refuse,
        )
    assert err.value.reason == "consent_required"


def test_verify_chunk_keeps_order(registry: Registry, source_key: Ed25519PrivateKey) -> None:
    good = [
        precheck(TOPIC, record(source_key, seq=i).to_wire(), registry, max_bytes=MAX_RECORD_BYTES)
        for i in (1, 2)
    ]
    forged = precheck(
        TOPIC,
        tamper(record(source_key, seq=3), lambda d: d["header"].update(seq=4)),
        registry,
        max_bytes=MAX_RECORD_BYTES,
    )
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
