"""Wire models of the HTTP API: they validate requests, serialise responses and document
both in ``/api/v1/openapi.json``."""

from __future__ import annotations

from typing import Any

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
