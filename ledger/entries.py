"""Leaf formats of the log's entry kinds other than ``record`` (docs/wire.md, "Log entries").

A record's leaf is JCS(header) exactly; every other kind's leaf is JCS of one of these
models, which carry a ``kind`` field, so the kind of any leaf is known from its bytes alone.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .canonical import canonical_json
from .envelope import FhirId, HexDigest, KeyId, Pseudonym, Slug, TypeId, UtcTimestamp

EntryKind = Literal["record", "consent", "access", "registry", "erasure", "client"]
ENTRY_KINDS: tuple[str, ...] = ("record", "consent", "access", "registry", "erasure", "client")

Text = Annotated[str, Field(max_length=512)]


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def leaf(self) -> bytes:
        return canonical_json(self.model_dump(exclude_none=True))


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
    public_key: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{43}$")] | None = None
    valid_from: UtcTimestamp | None = None
    valid_until: UtcTimestamp | None = None
    detail: dict[str, Any] | None = None


class ConsentEntry(_Entry):
    """A consent grant, update or withdrawal: the hash of the FHIR Consent and the decision."""

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
