"""Relaying personal devices' readings (docs/own-edge.md, "Relaying personal devices").

A patient's home gateway is a source that stands for one person: under its own source id on
the public log it would link all of that person's records. So it does not publish: it seals
its reading as a v2 envelope with its own key (its own source id, seq, id and salts) and
hands it to its hospital's agent, the *relay*, which knows its devices' public keys from its
own settings (they are not on the hub's registry). The relay checks the envelope here and
publishes an outer record under its own source, seq and key, with the same id, payload, salt,
person opening and ``observed_at`` (so the payload and person commitments are the device's)
and ``body.origin`` = the device's signed header, erasable with the body.

Pure decisions only: :func:`open_envelope` takes the JSON value and the relay's settings and
returns the reading, or raises InvalidInput with the reason the device is told.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from ledger.envelope import (
    Origin,
    RecordHeaderV2,
    SignedRecord,
    check_commitment,
    check_signature,
    describe_validation_error,
)
from ledger.errors import InvalidEnvelope, SignatureError
from ledger.keys import PublicKey, b64url_decode, key_id
from ledger.suite import DEFAULT_SUITE, Suite, suite_of

from .errors import ConfigError, InvalidInput

#: The members of a sealed envelope, and nothing else: how a source tells one from a record
#: it is to seal itself.
ENVELOPE_KEYS = frozenset({"header", "body", "sig"})


@dataclass(frozen=True)
class Relay:
    """What a relay agent knows: its pilot, its own source id, its devices' keys and its
    crypto suite (its own signing key's, the log's): every device key is of that suite, since
    the outer record keeps the device's commitments, made in the device's suite's hash."""

    pilot: str
    source: str
    #: Device source id -> its public key (Ed25519 or SM2: the relay's suite).
    devices: Mapping[str, PublicKey]
    suite: Suite = DEFAULT_SUITE
    #: Device source id -> the key id its envelopes name (computed once).
    key_ids: Mapping[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.source in self.devices:
            raise ConfigError(f"{self.source!r} is this agent's own source, not one of its devices")
        for device, key in self.devices.items():
            if not self.suite.owns(key):
                raise ConfigError(
                    f"device {device}'s key is an {suite_of(key).key_kind} key; this relay"
                    f" signs in {self.suite.name}, and relays only devices of its suite"
                )
        object.__setattr__(self, "key_ids", {d: key_id(k) for d, k in self.devices.items()})


@dataclass(frozen=True)
class Relayed:
    """What the outer record takes over from the device's envelope, beside the reading."""

    record_id: str
    salt: bytes
    person_salt: bytes | None
    origin: Origin
    #: HASH(JCS(device header)), the relay's suite's hash (SHA-256 or SM3): the same device
    #: record is relayed once; another one under the same id is a conflict.
    origin_hash: bytes

    @property
    def device(self) -> str:
        return self.origin.header.source


@dataclass(frozen=True)
class DeviceReading:
    """A device's reading, checked: what the relay seals again under its own key."""

    type_id: str
    payload: dict[str, Any]
    subject: str | None
    consent: str | None
    observed_at: str
    relayed: Relayed


def is_envelope(value: Any) -> bool:
    """Whether a JSON value has the shape of a sealed envelope (``{"header","body","sig"}``)."""
    return isinstance(value, dict) and set(value) == ENVELOPE_KEYS


def open_envelope(value: Any, relay: Relay | None) -> DeviceReading:
    """The reading a device sealed, once the envelope is one this relay takes: well formed,
    v2, of this pilot, from a device it knows, under that device's key and signature, body
    matching its commitments, not relayed already. InvalidInput (with the reason) if not.

    What is left to the caller: that the type is the relay's and the payload valid for it
    (:func:`edge.drafts.prepare`), and that the same record was not stored already (the
    intake, by :attr:`Relayed.origin_hash`)."""
    if relay is None:
        raise InvalidInput(
            "relay_disabled", "this agent relays no devices ([relay] devices is empty)", status=403
        )
    try:
        record = SignedRecord.model_validate(value)
    except ValidationError as exc:
        raise InvalidInput("invalid_envelope", describe_validation_error(exc), status=400) from None
    header = record.header
    if not isinstance(header, RecordHeaderV2):
        raise InvalidInput("unsupported_version", "a device seals wire v2 envelopes (header.v = 2)")
    if header.pilot != relay.pilot:
        raise InvalidInput(
            "wrong_pilot",
            f"the envelope is of pilot {header.pilot!r}, this relay's is {relay.pilot!r}",
        )
    expected = relay.key_ids.get(header.source)
    if expected is None:
        raise InvalidInput(
            "unknown_device", f"{header.source!r} is not a device of this relay", status=403
        )
    if header.key != expected:
        raise InvalidInput(
            "wrong_device_key",
            f"header.key {header.key!r} is not the key of device {header.source!r}",
            status=403,
        )
    try:
        check_signature(header.canonical(), record.sig, relay.devices[header.source])
    except SignatureError:
        raise InvalidInput(
            "bad_signature", f"the signature is not device {header.source!r}'s", status=403
        ) from None
    try:
        check_commitment(record, relay.suite)
    except InvalidEnvelope as exc:
        raise InvalidInput(exc.reason, exc.detail) from None
    if record.body.origin is not None:
        raise InvalidInput("already_relayed", "a relayed record is not relayed again")
    person = record.body.person
    relayed = Relayed(
        record_id=header.id,
        salt=b64url_decode(record.body.salt),
        person_salt=b64url_decode(person.salt) if person is not None else None,
        origin=Origin(header=header, sig=record.sig),
        origin_hash=relay.suite.digest(header.canonical()),
    )
    return DeviceReading(
        type_id=header.type,
        payload=record.body.payload,
        subject=record.subject,
        consent=record.consent,
        observed_at=header.observed_at,
        relayed=relayed,
    )
