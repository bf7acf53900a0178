"""The public ledger: signed checkpoint, verifier key, entries with exact leaf bytes,
inclusion and consistency proofs (RFC 9162 2.1.3 and 2.1.4; hashes as hex), and an entry's
offline-verifiable proof (c2sp.org/tlog-proof@v1, text)."""

from __future__ import annotations

import base64

from aiohttp import web

from ledger.store import MAX_ENTRIES_PAGE
from ledger.tlogproof import MEDIA_TYPE, assemble_proof

from ..appkeys import hub_of
from ..errors import BadParameter, NotReady
from .models import ConsistencyProof, EntriesPage, InclusionProof, LedgerEntry
from .params import int_param

routes = web.RouteTableDef()

#: Entries returned when ``end`` is not given.
DEFAULT_PAGE = 100


def _latest_note(request: web.Request) -> tuple[int, str]:
    """(size, note) of the checkpoint this hub serves as its latest; 503 before the first.
    The checkpoint route and the tlog-proof route both answer with this one note."""
    hub = hub_of(request)
    witnessing = hub.witnessing
    if witnessing is not None and witnessing.published is not None:
        # With witnesses: the newest checkpoint submitted to them, with every cosignature
        # it got (a second or so behind the log).
        return witnessing.published_size, witnessing.published
    head = hub.ledger.checkpoints.latest
    if head is None:
        raise NotReady("no checkpoint signed yet")
    return head.size, head.note


@routes.get("/api/v1/ledger/checkpoint")
async def checkpoint(request: web.Request) -> web.Response:
    """The latest signed checkpoint (C2SP signed note)."""
    _, note = _latest_note(request)
    return web.Response(text=note, content_type="text/plain")


@routes.get("/api/v1/ledger/key")
async def key(request: web.Request) -> web.Response:
    """The hub's signed-note verifier key: ``<name>+<hash>+<base64 key>``."""
    verifier = hub_of(request).ledger.signer.verifier.encode()
    return web.Response(text=verifier + "\n", content_type="text/plain")


@routes.get("/api/v1/ledger/entries")
async def entries(request: web.Request) -> web.Response:
    reader = hub_of(request).ledger.reader
    size = reader.size()
    start = int_param(request, "start", 0)
    end = int_param(request, "end", min(start + DEFAULT_PAGE, size))
    if start > size:
        raise BadParameter(f"start {start} is past the end of the log ({size})")
    if end < start:
        raise BadParameter("end must not be less than start")
    if end - start > MAX_ENTRIES_PAGE:
        raise BadParameter(f"at most {MAX_ENTRIES_PAGE} entries per request")
    rows = reader.entries(start, min(end, size))
    page = EntriesPage(
        entries=[
            LedgerEntry(
                index=e.index,
                kind=e.kind,
                leaf=base64.b64encode(e.leaf).decode("ascii"),
                leaf_hash=bytes(e.leaf_hash).hex(),
                sig=e.sig,
            )
            for e in rows
        ],
        size=size,
    )
    return web.json_response(text=page.model_dump_json())


@routes.get("/api/v1/ledger/proof/inclusion")
async def inclusion(request: web.Request) -> web.Response:
    reader = hub_of(request).ledger.reader
    index = int_param(request, "index")
    size = int_param(request, "size")
    current = reader.size()
    if size > current:
        raise BadParameter(f"size {size} is larger than the log ({current})")
    if index >= size:
        raise BadParameter(f"index {index} is not inside a tree of size {size}")
    proof = reader.inclusion_proof(index, size)
    body = InclusionProof(
        index=index,
        size=size,
        leaf_hash=bytes(reader.entry(index).leaf_hash).hex(),
        proof=[h.hex() for h in proof],
    )
    return web.json_response(text=body.model_dump_json())


@routes.get("/api/v1/ledger/proof/consistency")
async def consistency(request: web.Request) -> web.Response:
    reader = hub_of(request).ledger.reader
    first = int_param(request, "first")
    second = int_param(request, "second")
    current = reader.size()
    if second > current:
        raise BadParameter(f"second {second} is larger than the log ({current})")
    if not 0 < first <= second:
        raise BadParameter("need 0 < first <= second")
    proof = reader.consistency_proof(first, second)
    body = ConsistencyProof(first=first, second=second, proof=[h.hex() for h in proof])
    return web.json_response(text=body.model_dump_json())


@routes.get("/api/v1/ledger/proof/tlog")
async def tlog_proof(request: web.Request) -> web.Response:
    """The c2sp.org/tlog-proof@v1 of entry ``index`` under the latest checkpoint: the leaf
    bytes (``extra``), the index, the inclusion hashes and the checkpoint as served."""
    index = int_param(request, "index")
    size, note = _latest_note(request)
    if index >= size:
        raise BadParameter(
            f"entry {index} is not under the latest checkpoint (size {size}); ask again after "
            "the next checkpoint"
        )
    reader = hub_of(request).ledger.reader
    proof = reader.inclusion_proof(index, size)
    text = assemble_proof(note, index, proof, bytes(reader.entry(index).leaf))
    return web.Response(text=text, content_type=MEDIA_TYPE)
