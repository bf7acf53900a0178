"""Sealing prepared records: salted commitment, header, Ed25519 signature, wire bytes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ledger.envelope import MAX_RECORD_BYTES, parse_record, seal
from ledger.errors import InvalidEnvelope
from ledger.hashing import leaf_hash
from ledger.keys import Ed25519PrivateKey, b64url_decode, key_id, load_private_key

from .drafts import Prepared
from .errors import InvalidInput


@dataclass(frozen=True)
class Sealed:
    """A signed record as the outbox keeps it."""

    seq: int
    id: str
    type_id: str
    leaf_hash: bytes
    wire: bytes


class Signer:
    """The source's signing key and identity; seals records with given seq numbers."""

    def __init__(self, pilot: str, source: str, signing_key: Ed25519PrivateKey) -> None:
        self.pilot = pilot
        self.source = source
        self._key = signing_key
        self.key_id = key_id(signing_key.public_key())

    @classmethod
    def from_key_file(cls, pilot: str, source: str, path: Path) -> Signer:
        return cls(pilot, source, load_private_key(path))

    def seal(self, record: Prepared, seq: int) -> Sealed:
        """Seal one record; InvalidInput if its fields cannot make a valid envelope.

        A relayed reading keeps its device's id, salt and person salt (so both commitments
        are the device's) and carries the device's signed header in ``body.origin``."""
        relayed = record.relayed
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
            seq, signed.header.id, record.type_id, leaf_hash(signed.header.canonical()), wire
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
        return Sealed(h.seq, h.id, h.type, leaf_hash(signed.header.canonical()), signed.to_wire())
