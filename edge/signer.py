"""Sealing prepared records: salted commitment, header, signature, wire bytes.

The agent's crypto suite is the suite of its signing key (:func:`ledger.suite.suite_of`):
SHA-256 commitments and leaf hashes with an Ed25519 signature, or SM3 (GM/T 0004) with an
SM2 signature (GM/T 0003.2). A signer binds the suite's hash and signature once, so no
record asks for it again.

Records about nobody that no device sealed before (city sensors, all of a smart-city pilot)
are sealed on a fast path of this module's own: the header's shape is fixed and every value
in it is either the agent's own (id, pilot, source, key, commitment: valid by construction,
pilot, source and key checked once) or checked here (seq, type, ``observed_at``), so the
header's RFC 8785 form and the wire bytes are written out directly, and signed through
libsodium (Ed25519) or the SM2 key's own ``sign`` (gmalglib). Measured on the 2-core
machines, Ed25519: ~56 µs a record through ``ledger.envelope.seal`` (pydantic models, the
rfc8785 library, cryptography's Ed25519) against ~25 µs here, of which ~15 µs is the
signature. Every other record, and any value the fast path does not take, goes through
``ledger.envelope.seal``; tests/unit/edge/test_signer.py checks that both give the same
bytes (SM2 signatures are randomised: the same bytes but the signature, which verifies).
"""

from __future__ import annotations

import json
import os
from base64 import urlsafe_b64encode
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nacl.bindings
from cryptography.hazmat.primitives import serialization
from pydantic import TypeAdapter, ValidationError

from ledger.canonical import canonical_json
from ledger.envelope import (
    ENVELOPE_VERSION,
    MAX_RECORD_BYTES,
    SALT_BYTES,
    KeyId,
    Slug,
    TypeId,
    UtcTimestamp,
    parse_record,
    seal,
    uuid7,
)
from ledger.errors import InvalidEnvelope
from ledger.hashing import LEAF_PREFIX
from ledger.keys import (
    Ed25519PrivateKey,
    PrivateKey,
    b64url_decode,
    key_id,
    load_private_key,
)
from ledger.suite import Suite, suite_of

from .drafts import Prepared
from .errors import InvalidInput

_SLUG: TypeAdapter[str] = TypeAdapter(Slug)
_KEY_ID: TypeAdapter[str] = TypeAdapter(KeyId)
_TYPE_ID: TypeAdapter[str] = TypeAdapter(TypeId)
_TIME: TypeAdapter[str] = TypeAdapter(UtcTimestamp)
_MAX_SEQ = 2**53 - 1
#: The wire's JSON: ``SignedRecord.to_wire`` writes it with these options.
_WIRE_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class Sealed:
    """A signed record as the outbox keeps it."""

    seq: int
    id: str
    type_id: str
    leaf_hash: bytes
    wire: bytes


class Signer:
    """The source's signing key and identity; seals records with given seq numbers, in the
    key's suite (``suite``)."""

    def __init__(self, pilot: str, source: str, signing_key: PrivateKey) -> None:
        self.pilot = pilot
        self.source = source
        self._key = signing_key
        #: The agent's crypto suite: its key's. Its hub's log must be of the same one.
        self.suite: Suite = suite_of(signing_key)
        #: RFC 9162 2.1.1 leaf hash in the suite's tree: HASH(0x00 || JCS(header)).
        self._leaf_hash = self.suite.tree.leaf
        self.key_id = key_id(signing_key.public_key())
        self._fast: _FastSeal | None = _FastSeal.of(pilot, source, signing_key, self.key_id)

    @classmethod
    def from_key_file(cls, pilot: str, source: str, path: Path) -> Signer:
        return cls(pilot, source, load_private_key(path))

    def seal(self, record: Prepared, seq: int) -> Sealed:
        """Seal one record; InvalidInput if its fields cannot make a valid envelope.

        A relayed reading keeps its device's id, salt and person salt (so both commitments
        are the device's) and carries the device's signed header in ``body.origin``."""
        relayed = record.relayed
        fast_path = self._fast
        if fast_path is not None and relayed is None and record.subject is record.consent is None:
            fast = fast_path.seal(record, seq)
            if fast is not None:
                return fast
        try:
            signed = seal(
                pilot=self.pilot,
                source=self.source,
                seq=seq,
                type=record.type_id,
                payload=record.payload,
                signing_key=self._key,
                subject=record.subject,
                consent=record.consent,
                observed_at=record.observed_at,
                record_id=relayed.record_id if relayed else None,
                salt=relayed.salt if relayed else None,
                person_salt=relayed.person_salt if relayed else None,
                origin=relayed.origin if relayed else None,
            )
        except InvalidEnvelope as exc:
            raise InvalidInput(exc.reason, exc.detail) from None
        wire = signed.to_wire()
        if len(wire) > MAX_RECORD_BYTES:
            raise InvalidInput(
                "oversize",
                f"the sealed record is {len(wire)} bytes, over the {MAX_RECORD_BYTES}-byte limit",
                status=413,
            )
        return Sealed(
            seq, signed.header.id, record.type_id, self._leaf_hash(signed.header.canonical()), wire
        )

    def reseal(self, wire: bytes) -> Sealed | None:
        """The record ``wire`` holds, signed again with this key: the same id, seq, salts,
        body (person opening and origin included) and ``observed_at``, so the same
        commitments; only ``key`` and the signature change (a v1 record stays v1). None if
        this key signed it already, or if it is not a record of this source (a source
        renamed in the settings keeps its old records).

        This is how a backlog outlives a key: the hub judges a key when it receives a
        record, and a key rotated out a while ago vouches for nothing it receives now.
        """
        try:
            record = parse_record(wire)
        except InvalidEnvelope:
            return None
        h = record.header
        if h.key == self.key_id or (h.pilot, h.source) != (self.pilot, self.source):
            return None
        person = record.body.person
        try:
            signed = seal(
                pilot=h.pilot,
                source=h.source,
                seq=h.seq,
                type=h.type,
                payload=record.body.payload,
                signing_key=self._key,
                subject=record.subject,
                consent=record.consent,
                observed_at=h.observed_at,
                record_id=h.id,
                salt=b64url_decode(record.body.salt),
                person_salt=b64url_decode(person.salt) if person is not None else None,
                origin=record.body.origin,
                version=h.v,
            )
        except InvalidEnvelope:
            return None
        leaf = self._leaf_hash(signed.header.canonical())
        return Sealed(h.seq, h.id, h.type, leaf, signed.to_wire())


class _FastSeal:
    """The fast path for records about nobody (see the module's docstring)."""

    def __init__(self, pilot: str, source: str, signing_key: PrivateKey, kid: str) -> None:
        #: The suite's hash (SHA-256 or SM3), for the commitment and the leaf hash.
        self._digest: Callable[[bytes], bytes] = suite_of(signing_key).tree.digest
        self._sign = _signature(signing_key)
        # RFC 8785 sorts the members by name: commitment, id, key, observed_at, person,
        # pilot, seq, source, type, v. Every value is ASCII that JSON need not escape.
        self._jcs = (
            '{"commitment":"%s","id":"%s","key":"' + kid + '","observed_at":"%s",'
            '"person":null,"pilot":"' + pilot + '","seq":%d,"source":"' + source + '",'
            '"type":"%s","v":' + str(ENVELOPE_VERSION) + "}"
        )
        # SignedRecord.to_wire: the members in the models' order, body without nulls.
        self._wire_header = (
            '{"header":{"v":' + str(ENVELOPE_VERSION) + ',"id":"%s","pilot":"' + pilot + '",'
            '"source":"' + source + '","seq":%d,"type":"%s","person":null,'
            '"observed_at":"%s","commitment":"%s","key":"' + kid + '"},"body":{"payload":'
        )
        #: Type ids and observation times already found valid (most records repeat them).
        self._types: set[str] = set()
        self._last_time = ""

    @classmethod
    def of(cls, pilot: str, source: str, signing_key: PrivateKey, kid: str) -> _FastSeal | None:
        """The fast path for this identity; None if a part of it would not make a valid
        header (then every record goes the general way, which says what is wrong)."""
        try:
            _SLUG.validate_python(pilot, strict=True)
            _SLUG.validate_python(source, strict=True)
            _KEY_ID.validate_python(kid, strict=True)
        except ValidationError:
            return None
        return cls(pilot, source, signing_key, kid)

    def _valid(self, record: Prepared, seq: int) -> bool:
        if type(seq) is not int or not 1 <= seq <= _MAX_SEQ:
            return False
        type_id, observed = record.type_id, record.observed_at
        try:
            if type_id not in self._types:
                _TYPE_ID.validate_python(type_id, strict=True)
                self._types.add(type_id)
            if observed != self._last_time:
                # ASCII too: the header's JCS is written without escaping anything.
                if type(observed) is not str or not observed.isascii():
                    return False
                _TIME.validate_python(observed, strict=True)
                self._last_time = observed
        except ValidationError:
            return False
        return type(record.payload) is dict

    def seal(
        self,
        record: Prepared,
        seq: int,
        *,
        salt: bytes | None = None,
        record_id: str | None = None,
    ) -> Sealed | None:
        """The sealed record; None to leave it to ``ledger.envelope.seal`` (a value this
        path does not check, or one that is invalid: the general way says why). ``salt``
        and ``record_id`` are fresh unless given (tests compare the two ways with them)."""
        if not self._valid(record, seq):
            return None
        try:
            payload_jcs = canonical_json(record.payload)
            payload_wire = _WIRE_JSON.encode(record.payload)
        except (InvalidEnvelope, ValueError, TypeError, RecursionError):
            return None
        salt = os.urandom(SALT_BYTES) if salt is None else salt
        digest = self._digest
        commitment = digest(salt + payload_jcs).hex()
        record_id = uuid7() if record_id is None else record_id
        observed, type_id = record.observed_at, record.type_id
        header = (self._jcs % (commitment, record_id, observed, seq, type_id)).encode()
        signature = self._sign(header)
        wire = "".join(
            (
                self._wire_header % (record_id, seq, type_id, observed, commitment),
                payload_wire,
                ',"salt":"',
                _b64url(salt),
                '"},"sig":"',
                _b64url(signature),
                '"}',
            )
        ).encode()
        if len(wire) > MAX_RECORD_BYTES:
            raise InvalidInput(
                "oversize",
                f"the sealed record is {len(wire)} bytes, over the {MAX_RECORD_BYTES}-byte limit",
                status=413,
            )
        return Sealed(seq, record_id, type_id, digest(LEAF_PREFIX + header), wire)


def _signature(signing_key: PrivateKey) -> Callable[[bytes], bytes]:
    """The 64-byte signature of a message with ``signing_key``: Ed25519 through libsodium
    (its secret key: the seed, then the public key), SM2's r || s through gmalglib."""
    if not isinstance(signing_key, Ed25519PrivateKey):
        return signing_key.sign
    seed = signing_key.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    _, secret = nacl.bindings.crypto_sign_seed_keypair(seed)
    crypto_sign = nacl.bindings.crypto_sign

    def sign(message: bytes) -> bytes:
        return crypto_sign(message, secret)[:64]

    return sign


def _b64url(raw: bytes) -> str:
    return urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
