"""The public ledger: what the log is (origin, crypto suite, verifier key), signed
checkpoint, verifier key, entries with exact leaf bytes, inclusion and consistency proofs
(RFC 9162 2.1.3 and 2.1.4; hashes as hex, in the log's suite's tree hash), and an entry's
offline-verifiable proof (c2sp.org/tlog-proof@v1, text)."""

from __future__ import annotations

from aiohttp import web

from ledger.errors import RangeError
from ledger.publicapi import consistency_answer, entries_page, inclusion_answer
from ledger.tlogproof import MEDIA_TYPE, assemble_proof

from ..appkeys import hub_of
from ..errors import BadParameter, NotReady
from .models import LogInfo
from .params import int_param

routes = web.RouteTableDef()


def _latest_note(request: web.Request) -> tuple[int, str]:
    """(size, note) of the checkpoint this hub serves as its latest; 503 before the first.
    The checkpoint route and the tlog-proof route both answer with this one note."""
    hub = hub_of(request)
    witnessing = hub.witness_status
    if witnessing is not None and witnessing.published is not None:
        # With witnesses: the newest checkpoint submitted to them, with every cosignature
        # it got (a second or so behind the log).
        return witnessing.published_size, witnessing.published
    head = hub.ledger.checkpoints.latest
    if head is None:
        raise NotReady("no checkpoint signed yet")
    return head.size, head.note


@routes.get("/api/v1/ledger")
async def log_info(request: web.Request) -> web.Response:
    """The log's origin, crypto suite, verifier key and size (docs/http.md)."""
    ledger = hub_of(request).ledger
    head = ledger.checkpoints.latest
    info = LogInfo.model_validate(
        {
            "origin": ledger.verifier.name,
            "suite": ledger.suite.name,
            "log_key": ledger.verifier.encode(),
            "size": ledger.size(),
            "checkpoint_size": head.size if head is not None else None,
        }
    )
    return web.json_response(text=info.model_dump_json())


@routes.get("/api/v1/ledger/checkpoint")
async def checkpoint(request: web.Request) -> web.Response:
    """The latest signed checkpoint (C2SP signed note)."""
    _, note = _latest_note(request)
    return web.Response(text=note, content_type="text/plain")


@routes.get("/api/v1/ledger/key")
async def key(request: web.Request) -> web.Response:
    """The hub's signed-note verifier key: ``<name>+<hash>+<base64 key>``."""
    verifier = hub_of(request).ledger.verifier.encode()
    return web.Response(text=verifier + "\n", content_type="text/plain")


@routes.get("/api/v1/ledger/entries")
async def entries(request: web.Request) -> web.Response:
    reader = hub_of(request).ledger.reader
    start, end = int_param(request, "start", 0), request.query.get("end")
    try:
        page = entries_page(
            reader, reader.size(), start, None if end is None else int_param(request, "end")
        )
    except RangeError as exc:
        raise BadParameter(str(exc)) from None
    return web.json_response(text=page.model_dump_json())


@routes.get("/api/v1/ledger/proof/inclusion")
async def inclusion(request: web.Request) -> web.Response:
    reader = hub_of(request).ledger.reader
    index, size = int_param(request, "index"), int_param(request, "size")
    try:
        body = inclusion_answer(reader, reader.size(), index, size)
    except RangeError as exc:
        raise BadParameter(str(exc)) from None
    return web.json_response(text=body.model_dump_json())


@routes.get("/api/v1/ledger/proof/consistency")
async def consistency(request: web.Request) -> web.Response:
    reader = hub_of(request).ledger.reader
    first, second = int_param(request, "first"), int_param(request, "second")
    try:
        body = consistency_answer(reader, reader.size(), first, second)
    except RangeError as exc:
        raise BadParameter(str(exc)) from None
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
    text = assemble_proof(note, index, proof, bytes(reader.entry(index).leaf), reader.suite.tree)
    return web.Response(text=text, content_type=MEDIA_TYPE)
