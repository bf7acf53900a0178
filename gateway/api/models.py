"""Wire models of the HTTP API: they validate requests, serialise responses and document
both in ``/api/v1/openapi.json``."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from ledger.publicapi import ConsistencyProof, EntriesPage, ErrorBody, InclusionProof, LedgerEntry

from ..registry.changes import KeyRevoke, KeyRotate, OrgAdd, SourceAdd, SourceRevoke

__all__ = [
    "ConsistencyProof",
    "EntriesPage",
    "ErrorBody",
    "InclusionProof",
    "KeyRevoke",
    "KeyRotate",
    "LedgerEntry",
    "OrgAdd",
    "SourceAdd",
    "SourceRevoke",
]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Health(_Wire):
    status: str
    detail: str | None = None
    log_size: int | None = None
    checkpoint_size: int | None = None


class LogInfo(_Wire):
    """``GET /api/v1/ledger``: what a verifier needs to know of the log before its bytes."""

    #: The checkpoint origin line and signed-note key name.
    origin: str
    #: The log's crypto suite (ledger/suite.py): its tree hash, commitments, key ids and
    #: signatures, fixed when the log was created.
    suite: Literal["ed25519-sha256", "sm2-sm3"]
    #: The signed-note verifier key, as ``/api/v1/ledger/key`` serves it.
    log_key: str
    #: Entries committed.
    size: int
    #: Entries the latest signed checkpoint covers (None before the first).
    checkpoint_size: int | None


class OrgList(_Wire):
    orgs: list[dict[str, Any]]


class SourceList(_Wire):
    sources: list[dict[str, Any]]


class KeyList(_Wire):
    keys: list[dict[str, Any]]


class CommittedEntry(_Wire):
    index: int
    leaf_hash: str
    entry: dict[str, Any]


class RegistryChange(_Wire):
    entries: list[CommittedEntry]


class DeadLetterList(_Wire):
    dead_letters: list[dict[str, Any]]
