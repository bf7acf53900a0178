"""Checking one incoming record: pure functions, each returning the record or raising
``Rejected`` with the machine-readable reason that goes into the ``rejected`` receipt.

Order (cheap before expensive): size and JSON, the strict envelope model, topic,
``observed_at`` against the hub's clock, pilot, source, key and its validity, data type,
the payload's subject, consent hook; then, in a thread pool, the signature and the
commitment. Duplicate ids and reused sequence numbers are decided by the sequencer, the one
place that sees every record about to be committed.

Signatures and commitments are the log's crypto suite's (:mod:`ledger.suite`): Ed25519 and
SHA-256, or SM2 and SM3 on an ``sm2-sm3`` log, whose registry holds SM2 keys only (a record
signed with a key of the other suite names a key the hub does not know: ``unknown_key``).

Time comes from the hub, never from the record: the intake reads its clock when a message
arrives and passes that ``received_at`` in; ``validity.py`` holds the rules it is judged by.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from pydantic import ValidationError

from ledger.canonical import canonical_json
from ledger.envelope import (
    RecordHeader,
    RecordHeaderV2,
    SignedRecord,
    check_origin,
    check_signature,
    describe_validation_error,
    parse_json,
)
from ledger.errors import InvalidEnvelope, SignatureError
from ledger.keys import FastVerifier, b64url_decode
from ledger.suite import Suite

from ..errors import HubError
from ..registry.state import Registry, parse_time
from .validity import DEFAULT_TIME_RULES, KeyPeriod, TimeRules, future_refusal, key_refusal

TOPIC_PREFIX: Final = "swiftchain/v1/"

#: Every reason a ``rejected`` receipt can carry.
REASONS: Final = (
    "oversize",
    "malformed_json",
    "too_deep",
    "invalid_envelope",
    "topic_mismatch",
    "unknown_pilot",
    "unknown_source",
    "source_revoked",
    "unknown_key",
    "key_not_valid",
    "observed_in_future",
    "bad_signature",
    "commitment_mismatch",
    "type_not_allowed",
    "seq_reused",
    "consent_required",
    "consent_not_active",
    "subject_mismatch",
    "source_not_permitted",
    "subject_in_header",
    "origin_mismatch",
)
#: FHIR R4B elements that point at the patient a resource is about. The edge rewrites each
#: to ``Patient/<pseudonym>`` (or an identifier of the pilot's pseudonym system).
PATIENT_ELEMENTS: Final = ("subject", "patient", "beneficiary")


class Rejected(HubError):
    """A record the hub refuses, with the reason code and, when known, its id."""

    def __init__(self, reason: str, detail: str, record_id: str | None = None) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.record_id = record_id


@dataclass(frozen=True)
class Candidate:
    """A record that passed the cheap checks, waiting for its signature check."""

    record: SignedRecord
    verifier: FastVerifier
    receipts_topic: str
    #: The log's crypto suite, whose hash the record's commitments are in.
    suite: Suite


@dataclass(frozen=True)
class Verified:
    """A record whose signature and commitment hold; ``leaf`` is JCS(header)."""

    record: SignedRecord
    leaf: bytes
    payload: bytes
    receipts_topic: str


ConsentCheck = Callable[[SignedRecord, str], None]
"""Hook for consent checks, given the record and the organisation operating its source:
raise Rejected('consent_required' | 'consent_not_active' | 'source_not_permitted', ...)."""


def no_consent_check(record: SignedRecord, source_org: str) -> None:
    return None


def check_sealed(record: SignedRecord) -> None:
    """Nothing new names a person on the log: a v1 record (whose header is public) only
    while it is about nobody; a relayed v2 record's origin is the same reading."""
    h = record.header
    if isinstance(h, RecordHeader) and (h.subject is not None or h.consent is not None):
        raise Rejected(
            "subject_in_header",
            "a wire v1 record names its subject in the public header; send wire v2, whose"
            " header holds only the person commitment (docs/wire.md)",
            h.id,
        )
    try:
        check_origin(record)
    except InvalidEnvelope as exc:
        raise Rejected(exc.reason, exc.detail, h.id) from None


def topic_parts(topic: str) -> tuple[str, str] | None:
    """``swiftchain/v1/{pilot}/{source}/records`` -> (pilot, source)."""
    parts = topic.split("/")
    if len(parts) != 5 or parts[0] != "swiftchain" or parts[1] != "v1" or parts[4] != "records":
        return None
    return parts[2], parts[3]


def receipts_topic(pilot: str, source: str) -> str:
    return f"{TOPIC_PREFIX}{pilot}/{source}/receipts"


def _claimed_id(value: Any) -> str | None:
    """The record id a malformed envelope claims, so the sender can match the rejection."""
    if isinstance(value, dict) and isinstance(header := value.get("header"), dict):
        rid = header.get("id")
        if isinstance(rid, str) and 0 < len(rid) <= 64:
            return rid
    return None


def parse_message(raw: bytes, *, max_bytes: int) -> SignedRecord:
    """Size, strict JSON, envelope model. Raises Rejected."""
    try:
        value = parse_json(raw, max_bytes=max_bytes)
    except InvalidEnvelope as exc:
        raise Rejected(exc.reason, exc.detail) from None
    record_id = _claimed_id(value)
    if not isinstance(value, dict):
        raise Rejected("invalid_envelope", "a record is a JSON object")
    header = value.get("header")
    if isinstance(header, dict) and header.get("subject") is not None:
        if header.get("consent") is None:
            raise Rejected(
                "consent_required",
                "a record about a subject must name the consent that covers it",
                record_id,
            )
    try:
        return SignedRecord.model_validate(value)
    except ValidationError as exc:
        raise Rejected("invalid_envelope", describe_validation_error(exc), record_id) from None


def check_topic(record: SignedRecord, topic: str) -> None:
    parts = topic_parts(topic)
    h = record.header
    if parts is None or parts != (h.pilot, h.source):
        raise Rejected(
            "topic_mismatch",
            f"record of {h.pilot}/{h.source} arrived on topic {topic!r}",
            h.id,
        )


def check_observed_at(record: SignedRecord, received_at: datetime, rules: TimeRules) -> None:
    h = record.header
    refusal = future_refusal(
        parse_time(h.observed_at), received_at=received_at, max_clock_skew=rules.max_clock_skew
    )
    if refusal is not None:
        raise Rejected("observed_in_future", refusal, h.id)


def check_registry(
    record: SignedRecord, registry: Registry, received_at: datetime, rules: TimeRules
) -> FastVerifier:
    """Pilot, source, key, key validity at ``received_at``, data type. Returns the key."""
    h = record.header
    if not registry.knows_pilot(h.pilot):
        raise Rejected("unknown_pilot", f"this hub serves no pilot {h.pilot!r}", h.id)
    source = registry.sources.get((h.pilot, h.source))
    if source is None:
        raise Rejected("unknown_source", f"source {h.pilot}/{h.source} is not registered", h.id)
    if not source.active:
        raise Rejected(
            "source_revoked",
            f"source {h.pilot}/{h.source} was revoked at {source.revoked_at}",
            h.id,
        )
    key = registry.keys.get(h.key)
    if key is None or (key.pilot, key.source) != (h.pilot, h.source):
        raise Rejected(
            "unknown_key",
            f"key {h.key!r} is not a key of {h.pilot}/{h.source} (this log's keys are"
            f" {registry.suite.key_kind} keys, suite {registry.suite.name})",
            h.id,
        )
    refusal = key_refusal(
        KeyPeriod.of(key),
        observed_at=parse_time(h.observed_at),
        received_at=received_at,
        late_window=rules.late_delivery_window(h.pilot),
    )
    if refusal is not None:
        raise Rejected("key_not_valid", refusal, h.id)
    if h.type not in source.types:
        raise Rejected(
            "type_not_allowed", f"source {h.pilot}/{h.source} may not publish {h.type!r}", h.id
        )
    return key.verifier


def check_subject(record: SignedRecord) -> None:
    """A record about a subject carries a payload about that same subject.

    The header's ``subject`` is what consent, search and erasure go by; a FHIR payload
    naming another patient would be filed under the wrong person. Every patient element
    the resource has (``subject``, ``patient``, ``beneficiary``; a Patient's own ``id``)
    must name ``Patient/<header subject>``, and at least one must be there.
    """
    h, subject = record.header, record.subject
    if subject is None:
        return
    payload = record.body.payload
    if "resourceType" not in payload and not h.type.startswith("fhir."):
        return  # a pilot's own model: its subject is the record's alone
    named = _payload_patients(payload, h.pilot)
    if not named or named != {subject}:
        found = ", ".join(sorted(f"Patient/{p}" for p in named if p)) or "no patient"
        raise Rejected(
            "subject_mismatch",
            f"the record's subject is Patient/{subject}, the payload names {found}",
            h.id,
        )


def _payload_patients(resource: dict[str, Any], pilot: str) -> set[str]:
    """The pseudonyms the resource's patient elements name ("" for one that names no
    patient by a form we know)."""
    system = f"urn:swiftchain:{pilot}:pseudonym"
    if resource.get("resourceType") == "Patient":
        # A Patient is about itself: its id, else its identifiers in the pseudonym system.
        own = resource.get("id")
        if isinstance(own, str):
            return {own}
        identifiers = resource.get("identifier")
        listed = identifiers if isinstance(identifiers, list) else []
        return {
            str(i.get("value")) for i in listed if isinstance(i, dict) and i.get("system") == system
        }
    named: set[str] = set()
    for element in PATIENT_ELEMENTS:
        ref = resource.get(element)
        if ref is None:
            continue
        if not isinstance(ref, dict):
            named.add("")
            continue
        reference, ident = ref.get("reference"), ref.get("identifier")
        if isinstance(reference, str):
            patient = reference.startswith("Patient/")
            named.add(reference.removeprefix("Patient/") if patient else "")
        elif isinstance(ident, dict) and ident.get("system") == system:
            # FHIR R4B Reference.identifier: a logical reference by the pseudonym.
            value = ident.get("value")
            named.add(value if isinstance(value, str) else "")
        else:
            named.add("")
    return named


def precheck(
    topic: str,
    raw: bytes,
    registry: Registry,
    *,
    max_bytes: int,
    received_at: datetime,
    rules: TimeRules = DEFAULT_TIME_RULES,
    consent_check: ConsentCheck = no_consent_check,
) -> Candidate:
    """Every check that needs no signature work, at the hub's ``received_at``. Raises
    Rejected."""
    record = parse_message(raw, max_bytes=max_bytes)
    check_topic(record, topic)
    check_observed_at(record, received_at, rules)
    check_sealed(record)
    origin = record.body.origin
    if origin is not None and (origin.header.pilot, origin.header.source) in registry.sources:
        # A device is relayed so that its name is on no public list; a registered one is.
        raise Rejected(
            "origin_mismatch",
            f"the relayed device {origin.header.source!r} is a registered source: it publishes"
            " itself, or is relayed unregistered",
            record.header.id,
        )
    verifier = check_registry(record, registry, received_at, rules)
    check_subject(record)
    h = record.header
    consent_check(record, registry.sources[(h.pilot, h.source)].org)
    return Candidate(record, verifier, receipts_topic(h.pilot, h.source), registry.suite)


def verify(candidate: Candidate) -> Verified:
    """Signature over JCS(header), then the body's commitments, in the log's suite.
    Raises Rejected.

    Runs in a worker thread: Ed25519 (libsodium) releases the GIL; SM2 (gmalglib, whose
    C calls hold it) does not, so on an ``sm2-sm3`` log the threads take turns.
    """
    record = candidate.record
    rid = record.header.id
    try:
        leaf = record.header.canonical()
        check_signature(leaf, record.sig, candidate.verifier)
    except SignatureError as exc:
        raise Rejected("bad_signature", str(exc), rid) from None
    except InvalidEnvelope as exc:
        raise Rejected("invalid_envelope", exc.detail, rid) from None
    try:
        # JCS(payload) once: it is both the commitment's input and the stored body.
        payload = canonical_json(record.body.payload)
    except InvalidEnvelope as exc:
        raise Rejected("invalid_envelope", exc.detail, rid) from None
    salt = b64url_decode(record.body.salt)
    suite = candidate.suite
    # docs/wire.md: commitment = hex HASH(salt || JCS(payload)), HASH the log's suite's.
    if suite.hexdigest(salt + payload) != record.header.commitment:
        raise Rejected("commitment_mismatch", "payload and salt do not match commitment", rid)
    header = record.header
    if isinstance(header, RecordHeaderV2) and header.person is not None:
        opening = record.opening()
        if opening is None or not opening.opens(header.person, suite):
            raise Rejected(
                "commitment_mismatch", "body.person does not open the person commitment", rid
            )
    return Verified(record, leaf, payload, candidate.receipts_topic)


def verify_chunk(candidates: list[Candidate]) -> list[Verified | Rejected]:
    """Verify a chunk in one thread-pool task (one hand-off per chunk, not per record)."""
    out: list[Verified | Rejected] = []
    for c in candidates:
        try:
            out.append(verify(c))
        except Rejected as exc:
            out.append(exc)
    return out
