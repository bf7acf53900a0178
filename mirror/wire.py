"""The public ledger API's JSON shapes, as the hub serves them (``gateway/api/models.py``):
the mirror reads the hub with them and serves its own copy with the same ones, so an
auditor's client works against either. A test holds the two to the same JSON Schema; the
mirror does not import the hub (parts meet on the wire)."""

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
