"""The public ledger API's JSON shapes (docs/http.md, "The public ledger"): what a hub serves
at ``/api/v1/ledger/...`` and a member's mirror serves again, so that an auditor's client
works against either; and the error body both answer a bad request with."""

from __future__ import annotations

import base64

from pydantic import BaseModel, ConfigDict

from .errors import RangeError
from .store import MAX_ENTRIES_PAGE, LedgerReader


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


# -- the answers, from any reader of the log (the hub's, or a mirror's copy) ----------------------
#: Entries returned when ``end`` is not given.
DEFAULT_PAGE = 100


def entries_page(reader: LedgerReader, size: int, start: int, end: int | None) -> EntriesPage:
    """Entries ``[start, end)`` of a log of ``size`` (``end`` None: a default page), with
    their exact leaf bytes; RangeError for a range outside it or over the page limit."""
    end = min(start + DEFAULT_PAGE, size) if end is None else end
    if start > size:
        raise RangeError(f"start {start} is past the end of the log ({size})")
    if end < start:
        raise RangeError("end must not be less than start")
    if end - start > MAX_ENTRIES_PAGE:
        raise RangeError(f"at most {MAX_ENTRIES_PAGE} entries per request")
    return EntriesPage(
        entries=[
            LedgerEntry(
                index=e.index,
                kind=e.kind,
                leaf=base64.b64encode(e.leaf).decode("ascii"),
                leaf_hash=bytes(e.leaf_hash).hex(),
                sig=e.sig,
            )
            for e in reader.entries(start, min(end, size))
        ],
        size=size,
    )


def inclusion_answer(reader: LedgerReader, current: int, index: int, size: int) -> InclusionProof:
    """RFC 9162 2.1.3 proof of entry ``index`` in the tree of ``size``, from a log of
    ``current`` entries; RangeError outside it."""
    if size > current:
        raise RangeError(f"size {size} is larger than the log ({current})")
    if not 0 <= index < size:
        raise RangeError(f"index {index} is not inside a tree of size {size}")
    return InclusionProof(
        index=index,
        size=size,
        leaf_hash=bytes(reader.entry(index).leaf_hash).hex(),
        proof=[h.hex() for h in reader.inclusion_proof(index, size)],
    )


def consistency_answer(
    reader: LedgerReader, current: int, first: int, second: int
) -> ConsistencyProof:
    """RFC 9162 2.1.4 proof between the trees of ``first`` and ``second``, from a log of
    ``current`` entries; RangeError outside it."""
    if second > current:
        raise RangeError(f"second {second} is larger than the log ({current})")
    if not 0 < first <= second:
        raise RangeError("need 0 < first <= second")
    proof = reader.consistency_proof(first, second)
    return ConsistencyProof(first=first, second=second, proof=[h.hex() for h in proof])
