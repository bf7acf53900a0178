"""The witness's HTTP interface (c2sp.org/tlog-witness, "HTTP Interface"), one prefix for
submission and monitoring:

- ``POST /add-checkpoint``: 200 with the cosignature line(s) as text; 400, 403, 404, 409
  (the latest cosigned size as ``text/x.tlog.size``) or 422 with a one-line reason.
- ``GET /<lowercase hex SHA-256 of the origin>/checkpoint``: the latest cosigned checkpoint
  with the log's verified signatures and the witness's cosignature ("Monitor Retrieval
  Mechanism"); 404 before the first.
- ``GET /healthz``: 200 while the state file answers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from .errors import Rejection, SizeConflict, WitnessStorageError
from .request import MAX_BODY_BYTES
from .service import Witness

log = logging.getLogger("swiftchain.witness")

WITNESS: web.AppKey[Witness] = web.AppKey("witness", Witness)

TEXT = "text/plain"
SIZE_TYPE = "text/x.tlog.size"

routes = web.RouteTableDef()


def _text(status: int, text: str, content_type: str = TEXT) -> web.Response:
    response = web.Response(status=status, body=text.encode("utf-8"), content_type=content_type)
    if content_type == TEXT:
        response.charset = "utf-8"
    return response


@routes.post("/add-checkpoint")
async def add_checkpoint(request: web.Request) -> web.Response:
    body = await request.read()
    witness = request.app[WITNESS]
    loop = asyncio.get_running_loop()
    try:
        # Signature checks and a synchronous-FULL commit: off the event loop on purpose.
        lines = await loop.run_in_executor(None, witness.add_checkpoint, body)
    except SizeConflict as exc:
        return _text(409, f"{exc.known_size}\n", SIZE_TYPE)
    except Rejection as exc:
        log.info("add-checkpoint refused (%d): %s", exc.status, exc.detail)
        return _text(exc.status, exc.detail + "\n")
    except WitnessStorageError as exc:
        log.error("add-checkpoint: %s", exc)
        return _text(503, "the witness cannot record checkpoints now; try again later\n")
    return _text(200, lines)


@routes.get(r"/{origin_hash:[0-9a-f]{64}}/checkpoint")
async def latest_checkpoint(request: web.Request) -> web.Response:
    witness = request.app[WITNESS]
    loop = asyncio.get_running_loop()
    note = await loop.run_in_executor(
        None, witness.store.checkpoint_by_hash, request.match_info["origin_hash"]
    )
    if note is None:
        return _text(404, "this witness has cosigned no checkpoint of that log\n")
    return _text(200, note)


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    witness = request.app[WITNESS]
    try:
        await asyncio.get_running_loop().run_in_executor(None, witness.store.ping)
    except WitnessStorageError as exc:
        return web.json_response({"status": "failing", "detail": str(exc)}, status=503)
    return web.json_response(
        {"status": "ok", "name": witness.signer.name, "vkey": witness.verifier.encode()}
    )


def create_app(witness: Witness, *, close_on_cleanup: bool = True) -> web.Application:
    # Slightly over the largest valid body, so an oversize one is read as such (413).
    app = web.Application(client_max_size=MAX_BODY_BYTES + 1)
    app[WITNESS] = witness
    app.add_routes(routes)
    if close_on_cleanup:

        async def closing(app: web.Application) -> AsyncIterator[None]:
            yield
            app[WITNESS].close()

        app.cleanup_ctx.append(closing)
    return app
