"""Leaf formats of the log's entry kinds other than ``record`` (docs/wire.md, "Log entries").

A record's leaf is JCS(header) exactly; every other kind's leaf is JCS of one of these
models, which carry a ``kind`` field, so the kind of any leaf is known from its bytes alone.

Each model holds the whole fact (who, when, about whom). The ``consent``, ``access`` and
``erasure`` kinds name people, so the hub writes them sealed (:meth:`_Entry.sealed`, wire v2):
the leaf keeps the fields in ``PUBLIC`` and ``"v": 2``, and a ``person`` commitment to the
rest, whose opening the store keeps off the log (:mod:`ledger.sealed`). Logs written before
hold v1 leaves (every field in the leaf); :meth:`_Entry.from_leaf` reads both.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .canonical import canonical_json
from .envelope import FhirId, HexDigest, KeyId, Pseudonym, Slug, TypeId, UtcTimestamp
from .errors import InvalidEnvelope
from .sealed import PERSON, Opening, opened, seal
from .suite import DEFAULT_SUITE, Suite

#: The leaf version of sealed entries (the record envelope's v2 is the same step).
SEALED_VERSION = 2

EntryKind = Literal["record", "consent", "access", "registry", "erasure", "client"]
ENTRY_KINDS: tuple[str, ...] = ("record", "consent", "access", "registry", "erasure", "client")

Text = Annotated[str, Field(max_length=512)]


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: The fields a sealed (v2) leaf keeps in the open; () for a kind that names no person.
    PUBLIC: ClassVar[tuple[str, ...]] = ()

    def leaf(self) -> bytes:
        """The v1 leaf: every field in the open. What a kind that names nobody writes, and
        what logs written before sealing hold for the others (use :meth:`sealed` for them)."""
        return canonical_json(self.model_dump(exclude_none=True))

    def sealed(
        self, *, salt: bytes | None = None, suite: Suite = DEFAULT_SUITE
    ) -> tuple[bytes, Opening | None]:
        """The leaf to append and the opening to keep off the log (None for a kind that
        names nobody, whose leaf is :meth:`leaf`), committed in the log's ``suite``."""
        if not self.PUBLIC:
            return self.leaf(), None
        fields = self.model_dump(exclude_none=True)
        public = {k: fields.pop(k) for k in self.PUBLIC if k in fields}
        opening = seal(fields, salt=salt)
        leaf = {**public, "v": SEALED_VERSION, PERSON: opening.commitment(suite)}
        return canonical_json(leaf), opening

    @classmethod
    def from_leaf(
        cls,
        leaf: bytes | dict[str, Any],
        opening: Opening | None = None,
        suite: Suite = DEFAULT_SUITE,
    ) -> Self:
        """The fact a leaf (v1, or v2 with its opening, committed in ``suite``) records;
        InvalidEnvelope if the leaf is not one of this kind or a v2 leaf's opening is not
        held."""
        value = json.loads(leaf) if isinstance(leaf, bytes) else dict(leaf)
        if not isinstance(value, dict):
            raise InvalidEnvelope("invalid_entry", "a leaf is a JSON object")
        sealed = PERSON in value
        view = opened(value, opening, suite)
        view.pop("v", None)
        try:
            return cls.model_validate(view)
        except ValidationError as exc:
            held = "" if not sealed or opening is not None else " (its opening is not held)"
            raise InvalidEnvelope("invalid_entry", f"not a {cls.__name__}{held}: {exc}") from None


class RegistryEntry(_Entry):
    """A change to who may publish: organisations, sources, keys, rotations, revocations."""

    kind: Literal["registry"] = "registry"
    action: Literal["org.add", "org.update", "source.add", "source.revoke", "key.add", "key.revoke"]
    at: UtcTimestamp
    actor: Text
    org: Slug | None = None
    pilot: Slug | None = None
    source: Slug | None = None
    key_id: KeyId | None = None
    #: Unpadded base64url of the raw public key: 32 bytes (Ed25519, 43 characters) or the
    #: 65-byte SM2 point 0x04 || x || y (87 characters), the log's suite's (ledger.suite).
    public_key: (
        Annotated[str, Field(pattern=r"^(?:[A-Za-z0-9_-]{43}|[A-Za-z0-9_-]{87})$")] | None
    ) = None
    valid_from: UtcTimestamp | None = None
    valid_until: UtcTimestamp | None = None
    detail: dict[str, Any] | None = None


class ConsentEntry(_Entry):
    """A consent grant, update or withdrawal: the hash of the FHIR Consent and the decision."""

    PUBLIC = ("kind", "action", "at", "actor", "pilot", "erase", "custodian")

    kind: Literal["consent"] = "consent"
    action: Literal["grant", "update", "withdraw"]
    at: UtcTimestamp
    actor: Text
    pilot: Slug
    consent: FhirId
    subject: Pseudonym
    status: Text
    resource_hash: HexDigest
    erase: bool = False
    #: The organisation the Consent belongs to (the one that recorded it). Absent on
    #: entries written before custodians were recorded; their leaves are unchanged.
    custodian: Slug | None = None


class AccessEntry(_Entry):
    """One access decision, allowed or denied, written before any data leaves the hub."""

    PUBLIC = (
        *("kind", "at", "client", "org", "pilot", "purpose", "type", "decision"),
        *("break_glass", "count"),
    )

    kind: Literal["access"] = "access"
    at: UtcTimestamp
    client: Text
    org: Slug | None
    pilot: Slug | None
    purpose: Text | None
    type: TypeId | None
    subject: Pseudonym | None
    decision: Literal["allow", "deny"]
    reason: Text
    break_glass: bool = False
    request: Text | None = None
    count: int | None = None


class ErasureEntry(_Entry):
    """A record's body was deleted: which, why and by whom. Its header and leaf remain."""

    PUBLIC = ("kind", "at", "actor", "reason")

    kind: Literal["erasure"] = "erasure"
    at: UtcTimestamp
    actor: Text
    index: Annotated[int, Field(ge=0)]
    record: Annotated[str, Field(max_length=64)]
    reason: Literal["consent-withdrawn", "retention", "erasure-request"]


class ClientEntry(_Entry):
    """A hospital client cut off (``client.revoke``): which registration of which client,
    by whom, when and why, and the RFC 7638 thumbprints of the keys it held. From the next
    request on, the tokens of that registration are refused and its keys get no new ones."""

    kind: Literal["client"] = "client"
    action: Literal["client.revoke"]
    at: UtcTimestamp
    actor: Text
    client: Annotated[str, Field(pattern=r"^[A-Za-z0-9._:-]{1,128}$")]
    org: Slug
    pilot: Slug
    #: The version of the registration revoked (a registration made later is not).
    registration: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
    keys: Annotated[
        tuple[Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{43}$")], ...],
        Field(min_length=1, max_length=10),
    ]
    reason: Annotated[str, Field(min_length=1, max_length=512)]
