"""The relay's decisions on a device's sealed envelope, and the outer record it seals: a table
of every refusal with its reason and status, then what the relay keeps of a good one."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from edge.datatypes import TypeRegistry
from edge.drafts import drafts_from_json, prepare
from edge.errors import ConfigError, InvalidInput
from edge.relay import Relay, is_envelope, open_envelope
from edge.signer import Signer
from ledger.envelope import (
    check_commitment,
    check_origin,
    check_signature,
    parse_record,
)
from ledger.hashing import leaf_hash
from ledger.keys import generate_key
from tests.support.devices import CONSENT, PILOT, RELAY_SOURCE, SUBJECT, Device, reading, relay_of
from tests.support.drafts import air

DEVICE = Device()
RELAY = relay_of(DEVICE)


def _prepared(value: Any, relay: Relay | None = RELAY, registry: TypeRegistry | None = None) -> Any:
    (draft,) = drafts_from_json(value)
    return prepare(draft, registry or TypeRegistry(), None, None, relay)


# -- shapes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"header": {}, "body": {}, "sig": ""}, True),
        ({"header": {}, "body": {}}, False),
        ({"header": {}, "body": {}, "sig": "", "extra": 1}, False),
        ({"type": "x", "payload": {}}, False),
        ([], False),
        ("header", False),
    ],
)
def test_an_envelope_is_exactly_header_body_and_sig(value: Any, expected: bool) -> None:
    assert is_envelope(value) is expected


def test_an_envelope_is_a_draft_of_its_stated_type() -> None:
    (draft,) = drafts_from_json(DEVICE.envelope())
    assert draft.type_id == "fhir.Observation" and draft.envelope is not None
    (odd,) = drafts_from_json({"header": [], "body": {}, "sig": ""})
    assert odd.type_id == "envelope"


# -- refusals ----------------------------------------------------------------------------

STRANGER = Device("hd-ffffffffff")
Tamper = Callable[[dict[str, Any]], Any]


def _v1(_: dict[str, Any]) -> Any:
    return DEVICE.envelope(version=1)


def _other_pilot(_: dict[str, Any]) -> Any:
    return DEVICE.envelope(pilot="hospital-b")


def _unknown(_: dict[str, Any]) -> Any:
    return STRANGER.envelope()


def _other_key(_: dict[str, Any]) -> Any:
    # Signed, consistently, with a key that is not the one the relay knows for the device.
    return Device(DEVICE.source).envelope()


def _signed_by_other(e: dict[str, Any]) -> Any:
    # The device's key id in the header, somebody else's signature.
    forged = Device(DEVICE.source).envelope()
    e["sig"] = forged["sig"]
    return e


def _header_changed(e: dict[str, Any]) -> Any:
    e["header"]["seq"] += 1
    return e


def _payload_changed(e: dict[str, Any]) -> Any:
    e["body"]["payload"]["valueQuantity"]["value"] = 180
    return e


def _person_changed(e: dict[str, Any]) -> Any:
    e["body"]["person"]["subject"] = "b" * 64
    return e


def _person_dropped(e: dict[str, Any]) -> Any:
    del e["body"]["person"]
    return e


def _relayed_again(_: dict[str, Any]) -> Any:
    # The device is itself a relay of another one: its envelope carries body.origin.
    inner = _prepared(STRANGER.envelope(), relay=relay_of(STRANGER, source=DEVICE.source))
    outer = Signer(PILOT, DEVICE.source, DEVICE.key).seal(inner, seq=1)
    return json.loads(outer.wire)


def _missing_sig(e: dict[str, Any]) -> Any:
    e["sig"] = "not a signature"
    return e


def _unknown_type(_: dict[str, Any]) -> Any:
    return DEVICE.envelope(air(), type="city.spaceport", subject=None, consent=None)


def _invalid_payload(_: dict[str, Any]) -> Any:
    bad = reading()
    del bad["status"]
    return DEVICE.envelope(bad)


def _city_with_person(_: dict[str, Any]) -> Any:
    return DEVICE.envelope(air(), type="city.air-quality")


def _someone_else_in_payload(_: dict[str, Any]) -> Any:
    return DEVICE.envelope(reading("c" * 64))


def _patient_without_person(_: dict[str, Any]) -> Any:
    return DEVICE.envelope(subject=None, consent=None)


REFUSALS: list[tuple[str, Tamper, str, int]] = [
    ("v1", _v1, "unsupported_version", 422),
    ("wrong pilot", _other_pilot, "wrong_pilot", 422),
    ("unknown device", _unknown, "unknown_device", 403),
    ("key of another", _other_key, "wrong_device_key", 403),
    ("signature of another", _signed_by_other, "bad_signature", 403),
    ("header changed", _header_changed, "bad_signature", 403),
    ("payload changed", _payload_changed, "commitment_mismatch", 422),
    ("person changed", _person_changed, "commitment_mismatch", 422),
    ("person dropped", _person_dropped, "invalid_envelope", 400),
    ("not a signature", _missing_sig, "invalid_envelope", 400),
    ("relayed already", _relayed_again, "already_relayed", 422),
    ("type not the relay's", _unknown_type, "unknown_type", 422),
    ("invalid payload", _invalid_payload, "invalid_fhir", 422),
    ("city reading with a person", _city_with_person, "subject_not_allowed", 422),
    ("payload about someone else", _someone_else_in_payload, "subject_mismatch", 422),
    ("patient but no person", _patient_without_person, "subject_mismatch", 422),
]


@pytest.mark.parametrize(
    ("tamper", "reason", "status"),
    [r[1:] for r in REFUSALS],
    ids=[r[0] for r in REFUSALS],
)
def test_each_bad_envelope_is_refused_with_its_reason(
    tamper: Tamper, reason: str, status: int
) -> None:
    value = tamper(copy.deepcopy(DEVICE.envelope()))
    with pytest.raises(InvalidInput) as err:
        _prepared(value)
    assert (err.value.reason, err.value.status) == (reason, status), err.value.detail


def test_an_agent_that_relays_nothing_refuses_envelopes() -> None:
    with pytest.raises(InvalidInput) as err:
        _prepared(DEVICE.envelope(), relay=None)
    assert (err.value.reason, err.value.status) == ("relay_disabled", 403)


def test_types_the_relay_does_not_declare_are_refused() -> None:
    registry = TypeRegistry(allowed=["city.air-quality"])
    with pytest.raises(InvalidInput) as err:
        _prepared(DEVICE.envelope(), registry=registry)
    assert err.value.reason == "unknown_type"


def test_a_relay_does_not_list_itself_as_a_device() -> None:
    with pytest.raises(ConfigError):
        Relay(PILOT, DEVICE.source, {DEVICE.source: DEVICE.key.public_key()})


# -- what a good envelope gives ------------------------------------------------------------


def test_a_good_envelope_opens_to_the_device_reading() -> None:
    value = DEVICE.envelope()
    reading_ = open_envelope(value, RELAY)
    device = parse_record(json.dumps(value).encode())
    assert (reading_.subject, reading_.consent) == (SUBJECT, CONSENT)
    assert reading_.payload == device.body.payload
    assert reading_.observed_at == device.header.observed_at
    assert reading_.relayed.record_id == device.header.id
    assert reading_.relayed.device == DEVICE.source
    assert reading_.relayed.origin.header == device.header
    assert reading_.relayed.origin.sig == device.sig


def test_a_reading_not_about_a_person_is_relayed_too() -> None:
    value = DEVICE.envelope(air(), type="city.air-quality", subject=None, consent=None)
    prepared = _prepared(value)
    assert (prepared.subject, prepared.consent, prepared.relayed.person_salt) == (None, None, None)


def test_the_outer_record_is_the_same_reading_under_the_relays_name() -> None:
    value = DEVICE.envelope()
    device = parse_record(json.dumps(value).encode())
    relay_key = generate_key()
    sealed = Signer(PILOT, RELAY_SOURCE, relay_key).seal(_prepared(value), seq=41)
    outer = parse_record(sealed.wire)
    h, d = outer.header, device.header
    # Same reading: the same id and both commitments (payload and person) as the device's.
    assert (h.id, h.commitment, h.person, h.observed_at, h.type, h.pilot) == (
        d.id,
        d.commitment,
        d.person,
        d.observed_at,
        d.type,
        d.pilot,
    )
    # The relay's own name, counter and key on the log.
    assert (h.source, h.seq, h.key) == (
        RELAY_SOURCE,
        41,
        Signer(PILOT, RELAY_SOURCE, relay_key).key_id,
    )
    assert outer.body.payload == device.body.payload and outer.body.salt == device.body.salt
    assert outer.body.person == device.body.person
    assert outer.body.origin is not None
    assert outer.body.origin.header == d and outer.body.origin.sig == device.sig
    check_commitment(outer)
    check_origin(outer)
    check_signature(h.canonical(), outer.sig, relay_key.public_key())
    # An auditor holding the body checks the device's own signature from it alone.
    check_signature(
        outer.body.origin.header.canonical(), outer.body.origin.sig, DEVICE.key.public_key()
    )
    assert sealed.leaf_hash == leaf_hash(h.canonical())
    # The device's name is in the erasable body only, never in the public leaf.
    assert DEVICE.source not in h.canonical().decode()


def test_resealing_a_relayed_record_keeps_its_person_and_origin() -> None:
    value = DEVICE.envelope()
    first = Signer(PILOT, RELAY_SOURCE, generate_key()).seal(_prepared(value), seq=3)
    again = Signer(PILOT, RELAY_SOURCE, generate_key()).reseal(first.wire)
    assert again is not None
    before, after = parse_record(first.wire), parse_record(again.wire)
    assert after.body == before.body
    assert after.header.model_dump(exclude={"key"}) == before.header.model_dump(exclude={"key"})
    check_origin(after)
