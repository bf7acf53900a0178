"""Wire models of the HTTP API: they validate requests, serialise responses and document
both in ``/api/v1/openapi.json``."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from ledger.envelope import KeyId, Slug, TypeId, UtcTimestamp

PublicKeyB64 = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{43}$")]
Reason = Annotated[str, Field(max_length=256)]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ErrorBody(_Wire):
    error: str
    detail: str


class LedgerEntry(_Wire):
    index: int
    kind: str
    leaf: str
    """The exact leaf bytes, standard base64: recompute SHA-256(0x00 || leaf) yourself."""
    leaf_hash: str
    sig: str | None


class EntriesPage(_Wire):
    entries: list[LedgerEntry]
    size: int
    """Entries committed to the log when the page was read."""


class InclusionProof(_Wire):
    index: int
    size: int
    leaf_hash: str
    proof: list[str]


class ConsistencyProof(_Wire):
    first: int
    second: int
    proof: list[str]


class Health(_Wire):
    status: str
    detail: str | None = None
    log_size: int | None = None
    checkpoint_size: int | None = None


class OrgList(_Wire):
    orgs: list[dict[str, Any]]


class SourceList(_Wire):
    sources: list[dict[str, Any]]


class KeyList(_Wire):
    keys: list[dict[str, Any]]


class OrgAdd(_Wire):
    org: Slug
    name: Annotated[str, Field(max_length=200)] | None = None


class SourceAdd(_Wire):
    pilot: Slug
    source: Slug
    org: Slug
    types: Annotated[list[TypeId], Field(min_length=1, max_length=100)]
    public_key: PublicKeyB64
    valid_from: UtcTimestamp | None = None
    valid_until: UtcTimestamp | None = None


class SourceRevoke(_Wire):
    pilot: Slug
    source: Slug
    reason: Reason | None = None


class KeyRotate(_Wire):
    pilot: Slug
    source: Slug
    public_key: PublicKeyB64
    valid_from: UtcTimestamp | None = None
    valid_until: UtcTimestamp | None = None


class KeyRevoke(_Wire):
    key_id: KeyId
    at: UtcTimestamp | None = None
    reason: Reason | None = None


class CommittedEntry(_Wire):
    index: int
    leaf_hash: str
    entry: dict[str, Any]


class RegistryChange(_Wire):
    entries: list[CommittedEntry]


class DeadLetterList(_Wire):
    dead_letters: list[dict[str, Any]]
