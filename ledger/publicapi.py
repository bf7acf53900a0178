"""The public ledger API's JSON shapes (docs/http.md, "The public ledger"): what a hub serves
at ``/api/v1/ledger/...`` and a member's mirror serves again, so that an auditor's client
works against either; and the error body both answer a bad request with."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


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
