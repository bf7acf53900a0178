"""The record envelope, wire formats v1 and v2 (docs/wire.md, "The record envelope").

``header`` is what is signed and what the ledger commits to; ``body`` carries the payload and
its salt and may later be erased. ``sig`` is the source key's signature over JCS(header),
base64url: Ed25519, or SM2 on an ``sm2-sm3`` log (:mod:`ledger.suite`), whose commitments
are SM3 where these docs say SHA-256.

v2 (what agents write) names no person in the header: where v1 had ``subject`` and
``consent``, v2 has ``person``, a salted commitment to both (:mod:`ledger.sealed`), whose
opening travels in ``body.person`` and is kept off the log with the payload. A v2 body may
also carry ``origin``: the signed header of the personal device (a patient's home gateway)
whose reading a relay agent brought onto the log under its own key, so that the device's
name, key and counter are erasable with the body and never on the public log.
"""

from __future__ import annotations

import json
import os
import re
import time
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    model_validator,
)

from .canonical import canonical_json
from .errors import InvalidEnvelope, SignatureError
from .keys import (
    FastVerifier,
    PrivateKey,
    PublicKey,
    b64url_decode,
    b64url_encode,
    key_id,
    sign,
    verify,
)
from .sealed import Opening
from .sealed import seal as seal_fields
from .suite import DEFAULT_SUITE, Suite, suite_of

ENVELOPE_VERSION = 2
#: Versions a hub accepts and ``ledger verify`` reads (v1: written before personal fields
#: were sealed; still valid on the log, never written again).
ENVELOPE_VERSIONS = (1, 2)
#: Largest wire message a hub or agent accepts (the hub's ``max_record_bytes`` defaults to it).
MAX_RECORD_BYTES = 256 * 1024
#: Deepest JSON nesting accepted, so hostile input cannot exhaust the parser's stack.
MAX_JSON_DEPTH = 32
SALT_BYTES = 16

_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_ULID = r"[0-9A-HJKMNP-TV-Z]{26}"
_RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z$")


def _utc_timestamp(value: str) -> str:
    if not _RFC3339_UTC.match(value):
        raise ValueError("must be an RFC 3339 UTC time such as 2026-05-01T08:30:00Z")
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"not a real time: {exc}") from None
    return value


def _not_bool(value: Any) -> Any:
    # Literal[1] compares by equality, so True (== 1) would pass and sign as "v":true.
    if isinstance(value, bool):
        raise ValueError("must be an integer version, not a boolean")
    return value


def _salt(value: str) -> str:
    try:
        raw = b64url_decode(value)
    except ValueError as exc:
        raise ValueError(str(exc)) from None
    if len(raw) != SALT_BYTES or b64url_encode(raw) != value:
        raise ValueError(f"must be {SALT_BYTES} bytes in unpadded base64url")
    return value


Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")]
TypeId = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9._-]{0,63}$")]
RecordId = Annotated[str, Field(pattern=rf"^(?:{_UUID}|{_ULID})$")]
Pseudonym = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{8,128}$")]
FhirId = Annotated[str, Field(pattern=r"^[A-Za-z0-9\-.]{1,64}$")]
KeyId = Annotated[str, Field(pattern=r"^[A-Za-z0-9._:-]{1,64}$")]
UtcTimestamp = Annotated[str, AfterValidator(_utc_timestamp)]
HexDigest = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
Salt = Annotated[str, AfterValidator(_salt)]
Signature = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{86}$")]


class RecordHeader(BaseModel):
    """What the source signs and the ledger commits to (the leaf is JCS of this)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    v: Annotated[Literal[1], BeforeValidator(_not_bool)]
    id: RecordId
    pilot: Slug
    source: Slug
    seq: Annotated[int, Field(ge=1, le=2**53 - 1)]
    type: TypeId
    subject: Pseudonym | None
    consent: FhirId | None
    observed_at: UtcTimestamp
    commitment: HexDigest
    key: KeyId

    @model_validator(mode="after")
    def _consent_covers_subject(self) -> RecordHeader:
        if self.subject is not None and self.consent is None:
            raise ValueError("a record about a subject must name the consent that covers it")
        return self

    def canonical(self) -> bytes:
        """JCS(header): the ledger leaf and the bytes the source signs."""
        return header_jcs(self)


def header_jcs(header: Header) -> bytes:
    """JCS of a validated header, without the general-purpose canonicaliser.

    Measured on the 2-core machines: ``rfc8785.dumps(header.model_dump())`` costs ~87 us a
    header and runs on every record twice (the edge signs it, the hub verifies it), holding
    the GIL. A validated header has only ASCII keys, strings matching ASCII-only patterns,
    integers below 2**53 and nulls - no floats, no escapes beyond what both produce - and for
    such values RFC 8785 section 3.2 gives exactly the bytes of ``json.dumps`` with sorted
    keys and no whitespace. tests/unit/ledger/test_header_jcs.py checks the two agree.
    """
    return json.dumps(
        {name: getattr(header, name) for name in _HEADER_FIELDS[header.v]},
        sort_keys=True,
        separators=(",", ":"),
    ).encode()


class RecordHeaderV2(BaseModel):
    """The v2 header: no person in it. ``person`` is hex SHA-256(salt ‖ JCS({"consent",
    "subject"})) when the record is about a person, else null; the opening is in the body."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    v: Annotated[Literal[2], BeforeValidator(_not_bool)]
    id: RecordId
    pilot: Slug
    source: Slug
    seq: Annotated[int, Field(ge=1, le=2**53 - 1)]
    type: TypeId
    person: HexDigest | None
    observed_at: UtcTimestamp
    commitment: HexDigest
    key: KeyId

    def canonical(self) -> bytes:
        """JCS(header): the ledger leaf and the bytes the source signs."""
        return header_jcs(self)


Header = RecordHeader | RecordHeaderV2

_HEADER_FIELDS = {1: tuple(RecordHeader.model_fields), 2: tuple(RecordHeaderV2.model_fields)}


class PersonOpening(BaseModel):
    """``body.person``: who a v2 record is about, and the salt of its ``person`` commitment."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    subject: Pseudonym
    consent: FhirId
    salt: Salt

    def opening(self) -> Opening:
        return Opening(self.salt, {"consent": self.consent, "subject": self.subject})


class Origin(BaseModel):
    """``body.origin``: the personal device's own signed v2 header, for a relayed record."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    header: RecordHeaderV2
    sig: Signature


class RecordBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    payload: dict[str, Any]
    salt: Salt
    person: PersonOpening | None = None
    origin: Origin | None = None


def _header_version(value: Any) -> str | None:
    raw = value.get("v") if isinstance(value, dict) else getattr(value, "v", None)
    return "2" if raw == 2 and not isinstance(raw, bool) else "1"


class SignedRecord(BaseModel):
    """One wire message: ``{"header": ..., "body": ..., "sig": ...}``."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    header: Annotated[
        Annotated[RecordHeader, Tag("1")] | Annotated[RecordHeaderV2, Tag("2")],
        Discriminator(_header_version),
    ]
    body: RecordBody
    sig: Signature

    @model_validator(mode="after")
    def _body_fits_version(self) -> SignedRecord:
        header, body = self.header, self.body
        if isinstance(header, RecordHeader):
            if body.person is not None or body.origin is not None:
                raise ValueError("a v1 record carries its subject in the header, not the body")
        elif (header.person is None) != (body.person is None):
            raise ValueError(
                "body.person opens header.person: both present (a record about a person)"
                " or both absent"
            )
        return self

    @property
    def subject(self) -> str | None:
        """The pseudonym of the person the record is about (v1 header, v2 body)."""
        if isinstance(self.header, RecordHeader):
            return self.header.subject
        return self.body.person.subject if self.body.person is not None else None

    @property
    def consent(self) -> str | None:
        """The id of the Consent covering the record (v1 header, v2 body)."""
        if isinstance(self.header, RecordHeader):
            return self.header.consent
        return self.body.person.consent if self.body.person is not None else None

    def opening(self) -> Opening | None:
        """The opening the store keeps off the log (v2 records about a person)."""
        person = self.body.person
        return person.opening() if person is not None else None

    def to_wire(self) -> bytes:
        value = self.model_dump()
        # A v1 header spells its nulls out; a body leaves out what it does not carry.
        value["body"] = {k: v for k, v in value["body"].items() if v is not None}
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def commitment(salt: bytes, payload: Any, suite: Suite = DEFAULT_SUITE) -> str:
    """hex HASH(salt || JCS(payload)), HASH the log's suite's (SHA-256, SM3)."""
    return suite.hexdigest(salt + canonical_json(payload))


def uuid7() -> str:
    """A UUIDv7 (RFC 9562): 48-bit Unix milliseconds, version and variant bits, random."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    rand_a, rand_b = (rand >> 62) & 0xFFF, rand & (2**62 - 1)
    value = (ms & (2**48 - 1)) << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def seal(
    *,
    pilot: str,
    source: str,
    seq: int,
    type: str,
    payload: dict[str, Any],
    signing_key: PrivateKey,
    subject: str | None = None,
    consent: str | None = None,
    observed_at: str | None = None,
    record_id: str | None = None,
    salt: bytes | None = None,
    person_salt: bytes | None = None,
    origin: Origin | None = None,
    version: int = ENVELOPE_VERSION,
) -> SignedRecord:
    """Build, commit to and sign one record (v2 unless ``version=1``, which only tests of
    old ledgers write), in the suite of ``signing_key``: SHA-256 commitments and an Ed25519
    signature, or SM3 and SM2. Raises InvalidEnvelope for bad fields."""
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    if not isinstance(salt, bytes) or len(salt) != SALT_BYTES:
        raise InvalidEnvelope("invalid_envelope", f"salt: must be {SALT_BYTES} bytes")
    if not isinstance(signing_key, PrivateKey):
        raise InvalidEnvelope(
            "invalid_envelope", "signing_key: must be an Ed25519 or SM2 private key"
        )
    suite = suite_of(signing_key)
    fields: dict[str, Any] = {
        "v": version,
        "id": record_id or uuid7(),
        "pilot": pilot,
        "source": source,
        "seq": seq,
        "type": type,
        "observed_at": observed_at or utc_now(),
        "commitment": commitment(salt, payload, suite),
        "key": key_id(signing_key.public_key()),
    }
    body: dict[str, Any] = {"payload": payload, "salt": b64url_encode(salt)}
    header: Header
    if version == 1:
        header = _validate(RecordHeader, {**fields, "subject": subject, "consent": consent})
    elif version == 2:
        person = None
        if subject is not None or consent is not None:
            if subject is None or consent is None:
                raise InvalidEnvelope(
                    "invalid_envelope", "a record about a subject must name its consent"
                )
            person = _validate(
                PersonOpening,
                {"subject": subject, "consent": consent, **_opening_salt(person_salt)},
            )
            body["person"] = person
        header = _validate(
            RecordHeaderV2,
            {**fields, "person": person.opening().commitment(suite) if person else None},
        )
        if origin is not None:
            body["origin"] = origin
    else:
        raise InvalidEnvelope("invalid_envelope", f"v: no envelope version {version!r}")
    record_body = _validate(RecordBody, body)
    sig = b64url_encode(sign(signing_key, header.canonical()))
    record = SignedRecord.model_construct(header=header, body=record_body, sig=sig)
    if origin is not None:
        check_origin(record)
    return record


def _opening_salt(salt: bytes | None) -> dict[str, str]:
    return {"salt": seal_fields({}, salt=salt).salt}


def _validate(model: type[Any], data: Any) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidEnvelope("invalid_envelope", describe_validation_error(exc)) from None


def describe_validation_error(exc: ValidationError) -> str:
    """A short, human-readable summary: field path and message of the first few errors."""
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err["loc"]) or "(message)"
        parts.append(f"{where}: {err['msg']}")
    more = exc.error_count() - len(parts)
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"duplicate key {k!r}")
        out[k] = v
    return out


def _depth(value: Any, limit: int, check_text: bool = False) -> None:
    """Bound the nesting; with ``check_text``, also refuse strings that are not Unicode
    scalar values (a ``\\ud800`` escape decodes to a lone surrogate, which no UTF-8 encoder,
    JCS included, accepts)."""
    stack = [(value, 1)]
    while stack:
        v, d = stack.pop()
        if d > limit:
            raise InvalidEnvelope("too_deep", f"JSON nests deeper than {limit} levels")
        if isinstance(v, dict):
            stack.extend((x, d + 1) for x in v.values())
            if check_text:
                stack.extend((k, d) for k in v)
        elif isinstance(v, list):
            stack.extend((x, d + 1) for x in v)
        elif check_text and isinstance(v, str):
            try:
                v.encode()
            except UnicodeEncodeError:
                raise InvalidEnvelope("malformed_json", "lone surrogate in a string") from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


#: ``json.loads`` with hooks builds a decoder per call (~1.5 µs of a ~5 µs small message,
#: measured on the 2-core machines); one made once does the same.
_STRICT_JSON = json.JSONDecoder(
    object_pairs_hook=_reject_duplicate_keys, parse_constant=_reject_constant
)


def parse_json(raw: bytes, *, max_bytes: int = MAX_RECORD_BYTES) -> Any:
    """Strict JSON: bounded size and depth, UTF-8, no duplicate keys, no NaN/Infinity."""
    if not isinstance(raw, bytes | bytearray):
        raise InvalidEnvelope("malformed_json", f"a message is bytes, not {type(raw).__name__}")
    if len(raw) > max_bytes:
        raise InvalidEnvelope("oversize", f"{len(raw)} bytes is over the {max_bytes}-byte limit")
    # Cheap pre-check on bracket depth before the recursive parser sees the input.
    brackets = raw.count(b"[") + raw.count(b"{")
    if brackets > MAX_JSON_DEPTH and _bracket_depth(raw) > MAX_JSON_DEPTH:
        raise InvalidEnvelope("too_deep", f"JSON nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        text = raw.decode("utf-8")
        if text.startswith("\ufeff"):  # as json.loads says it
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
        value = _STRICT_JSON.decode(text)
    except UnicodeDecodeError as exc:
        raise InvalidEnvelope("malformed_json", f"not UTF-8: {exc.reason}") from None
    except (ValueError, RecursionError) as exc:
        raise InvalidEnvelope("malformed_json", str(exc)) from None
    # Only escapes can produce lone surrogates (raw UTF-8 cannot), and no value lies deeper
    # than one level below its brackets: without either, the walk has nothing to find.
    surrogates = b"\\ud" in raw.lower()
    if surrogates or brackets >= MAX_JSON_DEPTH:
        _depth(value, MAX_JSON_DEPTH, check_text=surrogates)
    return value


def _bracket_depth(raw: bytes) -> int:
    depth = best = 0
    in_string = escaped = False
    for b in raw:
        if in_string:
            if escaped:
                escaped = False
            elif b == 0x5C:
                escaped = True
            elif b == 0x22:
                in_string = False
        elif b == 0x22:
            in_string = True
        elif b in (0x5B, 0x7B):
            depth += 1
            best = max(best, depth)
        elif b in (0x5D, 0x7D):
            depth -= 1
    return best


def parse_record(raw: bytes, *, max_bytes: int = MAX_RECORD_BYTES) -> SignedRecord:
    """Parse one wire message into a SignedRecord, or raise InvalidEnvelope with a reason."""
    value = parse_json(raw, max_bytes=max_bytes)
    if not isinstance(value, dict):
        raise InvalidEnvelope("invalid_envelope", "a record is a JSON object")
    record: SignedRecord = _validate(SignedRecord, value)
    return record


def check_commitment(record: SignedRecord, suite: Suite = DEFAULT_SUITE) -> None:
    """Raise InvalidEnvelope('commitment_mismatch') unless the body matches the header: the
    payload its ``commitment`` and, in v2, the person opening its ``person`` (in the log's
    ``suite``'s hash)."""
    if not isinstance(record, SignedRecord):
        raise InvalidEnvelope("invalid_envelope", "only a SignedRecord has a commitment")
    salt = b64url_decode(record.body.salt)
    if commitment(salt, record.body.payload, suite) != record.header.commitment:
        raise InvalidEnvelope("commitment_mismatch", "payload and salt do not match commitment")
    header = record.header
    if isinstance(header, RecordHeaderV2) and header.person is not None:
        opening = record.opening()
        if opening is None or not opening.opens(header.person, suite):
            raise InvalidEnvelope(
                "commitment_mismatch", "body.person does not open the header's person commitment"
            )


#: The members a relayed record and its device's own header must share.
_ORIGIN_SHARED = ("pilot", "type", "observed_at", "commitment", "person")


def check_origin(record: SignedRecord) -> None:
    """Raise InvalidEnvelope('origin_mismatch') unless a relayed record's ``body.origin`` is
    the same reading: same pilot, type, observation time, payload commitment and person
    commitment, from a source other than the relay. (The device's signature is the relay's
    to check: it knows its devices' keys; the body keeps it for an auditor.)"""
    origin = record.body.origin
    if origin is None:
        return
    header = record.header
    if not isinstance(header, RecordHeaderV2):
        raise InvalidEnvelope("origin_mismatch", "only a v2 record is relayed")
    for name in _ORIGIN_SHARED:
        if getattr(origin.header, name) != getattr(header, name):
            raise InvalidEnvelope(
                "origin_mismatch", f"body.origin.header.{name} is not the record's {name}"
            )
    if origin.header.source == header.source:
        raise InvalidEnvelope("origin_mismatch", "a source does not relay its own records")


def check_signature(header_bytes: bytes, sig: str, public_key: PublicKey | FastVerifier) -> None:
    """Raise SignatureError unless ``sig`` is the key's signature of the header (Ed25519,
    or SM2's r || s: 64 bytes either way).

    Bulk callers (the hub's ingest) pass a FastVerifier, made once per key."""
    try:
        raw = b64url_decode(sig)
    except ValueError as exc:
        raise SignatureError(f"signature is not base64url: {exc}") from None
    if len(raw) != 64:
        raise SignatureError("a signature has 64 bytes")
    if isinstance(public_key, FastVerifier):
        public_key.verify(raw, header_bytes)
    else:
        verify(public_key, raw, header_bytes)
