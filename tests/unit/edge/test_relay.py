"""The relay's decisions on a device's sealed envelope, and the outer record it seals: a table
of every refusal with its reason and status, then what the relay keeps of a good one; in each
crypto suite (device and relay keys Ed25519 or SM2, commitments SHA-256 or SM3)."""

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
from ledger.errors import InvalidEnvelope
from ledger.keys import generate_key
from ledger.suite import ED25519_SHA256, SM2_SM3, SUITES, Suite, suite_of
from tests.support.devices import CONSENT, PILOT, RELAY_SOURCE, SUBJECT, Device, reading, relay_of
from tests.support.drafts import air

#: A device, a stranger (a device the relay does not know) and the relay, per suite.
DEVICES = {name: Device.of(s) for name, s in SUITES.items()}
STRANGERS = {name: Device.of(s, "hd-ffffffffff") for name, s in SUITES.items()}
RELAYS = {name: relay_of(DEVICES[name]) for name in SUITES}
DEVICE = DEVICES[ED25519_SHA256.name]
RELAY = RELAYS[ED25519_SHA256.name]


def _other(suite: Suite) -> Suite:
    return SM2_SM3 if suite is ED25519_SHA256 else ED25519_SHA256


@pytest.fixture
def device(suite: Suite) -> Device:
    return DEVICES[suite.name]


@pytest.fixture
def relay(suite: Suite) -> Relay:
    return RELAYS[suite.name]


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

Tamper = Callable[[Device, dict[str, Any]], Any]


def _stranger(d: Device) -> Device:
    return STRANGERS[next(n for n, dev in DEVICES.items() if dev is d)]


def _v1(d: Device, _: dict[str, Any]) -> Any:
    return d.envelope(version=1)


def _other_pilot(d: Device, _: dict[str, Any]) -> Any:
    return d.envelope(pilot="hospital-b")


def _unknown(d: Device, _: dict[str, Any]) -> Any:
    return _stranger(d).envelope()


def _other_key(d: Device, _: dict[str, Any]) -> Any:
    # Signed, consistently, with a key that is not the one the relay knows for the device.
    return Device(d.source, generate_key(suite_of(d.key))).envelope()


def _other_suites_key(d: Device, _: dict[str, Any]) -> Any:
    # Sealed consistently in the other suite (its commitments, key id and signature).
    return Device.of(_other(suite_of(d.key)), d.source).envelope()


def _signed_by_other(d: Device, e: dict[str, Any]) -> Any:
    # The device's key id in the header, somebody else's signature.
    forged = Device(d.source, generate_key(suite_of(d.key))).envelope()
    e["sig"] = forged["sig"]
    return e


def _header_changed(_: Device, e: dict[str, Any]) -> Any:
    e["header"]["seq"] += 1
    return e


def _payload_changed(_: Device, e: dict[str, Any]) -> Any:
    e["body"]["payload"]["valueQuantity"]["value"] = 180
    return e


def _person_changed(_: Device, e: dict[str, Any]) -> Any:
    e["body"]["person"]["subject"] = "b" * 64
    return e


def _person_dropped(_: Device, e: dict[str, Any]) -> Any:
    del e["body"]["person"]
    return e


def _relayed_again(d: Device, _: dict[str, Any]) -> Any:
    # The device is itself a relay of another one: its envelope carries body.origin.
    stranger = _stranger(d)
    inner = _prepared(stranger.envelope(), relay=relay_of(stranger, source=d.source))
    outer = Signer(PILOT, d.source, d.key).seal(inner, seq=1)
    return json.loads(outer.wire)


def _missing_sig(_: Device, e: dict[str, Any]) -> Any:
    e["sig"] = "not a signature"
    return e


def _unknown_type(d: Device, _: dict[str, Any]) -> Any:
    return d.envelope(air(), type="city.spaceport", subject=None, consent=None)


def _invalid_payload(d: Device, _: dict[str, Any]) -> Any:
    bad = reading()
    del bad["status"]
    return d.envelope(bad)


def _city_with_person(d: Device, _: dict[str, Any]) -> Any:
    return d.envelope(air(), type="city.air-quality")


def _someone_else_in_payload(d: Device, _: dict[str, Any]) -> Any:
    return d.envelope(reading("c" * 64))


def _patient_without_person(d: Device, _: dict[str, Any]) -> Any:
    return d.envelope(subject=None, consent=None)


REFUSALS: list[tuple[str, Tamper, str, int]] = [
    ("v1", _v1, "unsupported_version", 422),
    ("wrong pilot", _other_pilot, "wrong_pilot", 422),
    ("unknown device", _unknown, "unknown_device", 403),
    ("key of another", _other_key, "wrong_device_key", 403),
    ("key of the other suite", _other_suites_key, "wrong_device_key", 403),
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
    device: Device, relay: Relay, tamper: Tamper, reason: str, status: int
) -> None:
    value = tamper(device, copy.deepcopy(device.envelope()))
    with pytest.raises(InvalidInput) as err:
        _prepared(value, relay)
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


def test_a_relay_takes_only_devices_of_its_own_suite(device: Device, suite: Suite) -> None:
    """The outer record keeps the device's commitments: a device of another suite made
    them with the other hash, which the relay's log would refuse."""
    other = Device.of(_other(suite), "hd-0000000001")
    with pytest.raises(ConfigError, match=suite.name):
        relay_of(device, other, suite=suite)
    with pytest.raises(ConfigError, match=other.source):
        relay_of(other, suite=suite)
    assert relay_of(device, suite=suite).suite is suite


# -- what a good envelope gives ------------------------------------------------------------


def test_a_good_envelope_opens_to_the_device_reading(
    device: Device, relay: Relay, suite: Suite
) -> None:
    value = device.envelope()
    reading_ = open_envelope(value, relay)
    record = parse_record(json.dumps(value).encode())
    assert (reading_.subject, reading_.consent) == (SUBJECT, CONSENT)
    assert reading_.payload == record.body.payload
    assert reading_.observed_at == record.header.observed_at
    assert reading_.relayed.record_id == record.header.id
    assert reading_.relayed.device == device.source
    assert reading_.relayed.origin.header == record.header
    assert reading_.relayed.origin.sig == record.sig
    assert reading_.relayed.origin_hash == suite.digest(record.header.canonical())


def test_a_reading_not_about_a_person_is_relayed_too(device: Device, relay: Relay) -> None:
    value = device.envelope(air(), type="city.air-quality", subject=None, consent=None)
    prepared = _prepared(value, relay)
    assert (prepared.subject, prepared.consent, prepared.relayed.person_salt) == (None, None, None)


def test_the_outer_record_is_the_same_reading_under_the_relays_name(
    device: Device, relay: Relay, suite: Suite
) -> None:
    value = device.envelope()
    inner = parse_record(json.dumps(value).encode())
    relay_key = generate_key(suite)
    sealed = Signer(PILOT, RELAY_SOURCE, relay_key).seal(_prepared(value, relay), seq=41)
    outer = parse_record(sealed.wire)
    h, d = outer.header, inner.header
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
    assert outer.body.payload == inner.body.payload and outer.body.salt == inner.body.salt
    assert outer.body.person == inner.body.person
    assert outer.body.origin is not None
    assert outer.body.origin.header == d and outer.body.origin.sig == inner.sig
    check_commitment(outer, suite)
    with pytest.raises(InvalidEnvelope):
        check_commitment(outer, _other(suite))
    check_origin(outer)
    check_signature(h.canonical(), outer.sig, relay_key.public_key())
    # An auditor holding the body checks the device's own signature from it alone.
    check_signature(
        outer.body.origin.header.canonical(), outer.body.origin.sig, device.key.public_key()
    )
    assert sealed.leaf_hash == suite.tree.leaf(h.canonical())
    # The device's name is in the erasable body only, never in the public leaf.
    assert device.source not in h.canonical().decode()


def test_resealing_a_relayed_record_keeps_its_person_and_origin(
    device: Device, relay: Relay, suite: Suite
) -> None:
    value = device.envelope()
    first = Signer(PILOT, RELAY_SOURCE, generate_key(suite)).seal(_prepared(value, relay), seq=3)
    again = Signer(PILOT, RELAY_SOURCE, generate_key(suite)).reseal(first.wire)
    assert again is not None
    before, after = parse_record(first.wire), parse_record(again.wire)
    assert after.body == before.body
    assert after.header.model_dump(exclude={"key"}) == before.header.model_dump(exclude={"key"})
    check_origin(after)
    check_commitment(after, suite)
