"""The mirror as an aiohttp application: the follower in the background and the hub's public
ledger API served read-only from the copy (same paths, same JSON shapes as
``gateway/api/ledger.py``, so an auditor's client works against either), with ``/healthz``,
``/readyz`` (503 with the reason on a fork) and ``/metrics``.

``/api/v1/ledger/checkpoint`` is the mirror checkpoint: the hub's signed note with the
mirror's cosignature added (c2sp.org/tlog-mirror: "The checkpoint served ... MUST include a
cosignature from the mirror"); ``/api/v1/mirror`` says what the mirror holds and whether it
saw a fork, with the evidence.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from ledger.errors import LedgerError, RangeError
from ledger.publicapi import ErrorBody, consistency_answer, entries_page, inclusion_answer
from ledger.store import LedgerReader

from .config import LEDGER_FILE, VKEY_FILE, MirrorCosigner, load_config
from .errors import MirrorConfigError
from .follow import Follower
from .hubapi import HubClient
from .metrics import CONTENT_TYPE_LATEST, MirrorMetrics
from .store import MirrorStore

log = logging.getLogger("swiftchain.mirror")

#: Largest integer a query parameter may hold (as the hub).
MAX_INT = 2**53 - 1
#: Bounds on the poll interval and the backoff after failures, in seconds.
MIN_POLL_S, MAX_POLL_S = 0.05, 3600.0


@dataclass
class MirrorSettings:
    directory: Path
    poll_s: float = 2.0
    max_backoff_s: float = 60.0

    def __post_init__(self) -> None:
        if not MIN_POLL_S <= self.poll_s <= MAX_POLL_S:
            raise MirrorConfigError(f"the poll interval is {MIN_POLL_S}..{MAX_POLL_S} seconds")
        if not self.poll_s <= self.max_backoff_s <= MAX_POLL_S:
            raise MirrorConfigError("the longest backoff is between the poll interval and 1 h")


@dataclass
class Mirror:
    """What the handlers read: the follower's state and a reader of the copy of its own."""

    follower: Follower
    reader: LedgerReader
    metrics: MirrorMetrics
    cosigner_vkey: str


MIRROR = web.AppKey("mirror", Mirror)
routes = web.RouteTableDef()


class _BadParameter(Exception):
    pass


def _error(status: int, code: str, detail: str) -> web.Response:
    return web.json_response(ErrorBody(error=code, detail=detail).model_dump(), status=status)


def _int(request: web.Request, name: str, default: int | None = None) -> int:
    text = request.query.get(name)
    if text is None or text == "":
        if default is None:
            raise _BadParameter(f"query parameter {name!r} is required")
        return default
    if not text.isascii() or not text.isdigit() or len(text) > 16:
        raise _BadParameter(f"{name} must be a non-negative integer, not {text[:32]!r}")
    value = int(text)
    if value > MAX_INT:
        raise _BadParameter(f"{name} is too large")
    return value


@web.middleware
async def errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """Errors leave as ``{"error", "detail"}`` JSON, as the hub's do; never a trace."""
    try:
        return await handler(request)  # type: ignore[no-any-return]
    except _BadParameter as exc:
        return _error(400, "bad_parameter", str(exc))
    except LedgerError as exc:
        return _error(400, "bad_parameter", str(exc))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _error(exc.status, exc.reason.lower().replace(" ", "_"), exc.text or exc.reason)
    except Exception:
        log.exception("unexpected error serving %s", request.path)
        return _error(500, "internal", "internal error; see the mirror's log")


def _held(request: web.Request) -> tuple[Mirror, int]:
    """The mirror and the size it serves: the entries it holds."""
    mirror = request.app[MIRROR]
    return mirror, mirror.reader.size()


@routes.get("/api/v1/ledger/checkpoint")
async def checkpoint(request: web.Request) -> web.Response:
    """The mirror checkpoint: the hub's signed note and the mirror's cosignature."""
    note = request.app[MIRROR].follower.store.cosigned()
    if note is None:
        return _error(503, "not_ready", "no checkpoint verified yet")
    return web.Response(text=note, content_type="text/plain")


@routes.get("/api/v1/ledger/key")
async def key(request: web.Request) -> web.Response:
    """The hub's verifier key the mirror pinned (the log's, not the mirror's)."""
    verifier = request.app[MIRROR].follower.log_key.encode()
    return web.Response(text=verifier + "\n", content_type="text/plain")


@routes.get("/api/v1/ledger/entries")
async def entries(request: web.Request) -> web.Response:
    mirror, size = _held(request)
    start, end = _int(request, "start", 0), request.query.get("end")
    try:
        page = entries_page(
            mirror.reader, size, start, None if end is None else _int(request, "end")
        )
    except RangeError as exc:
        raise _BadParameter(str(exc)) from None
    return web.json_response(text=page.model_dump_json())


@routes.get("/api/v1/ledger/proof/inclusion")
async def inclusion(request: web.Request) -> web.Response:
    mirror, current = _held(request)
    index, size = _int(request, "index"), _int(request, "size")
    try:
        body = inclusion_answer(mirror.reader, current, index, size)
    except RangeError as exc:
        raise _BadParameter(str(exc)) from None
    return web.json_response(text=body.model_dump_json())


@routes.get("/api/v1/ledger/proof/consistency")
async def consistency(request: web.Request) -> web.Response:
    mirror, current = _held(request)
    first, second = _int(request, "first"), _int(request, "second")
    try:
        body = consistency_answer(mirror.reader, current, first, second)
    except RangeError as exc:
        raise _BadParameter(str(exc)) from None
    return web.json_response(text=body.model_dump_json())


def status_of(mirror: Mirror) -> dict[str, Any]:
    f = mirror.follower
    verified = f.store.verified()
    return {
        "origin": f.log_key.name,
        "suite": f.suite.name,
        "hub": f.hub.url,
        "cosigner": mirror.cosigner_vkey,
        "stored": f.store.stored,
        "verified": verified.head.size if verified else 0,
        "hub_checkpoint_size": f.hub_size,
        "last_error": f.last_error,
        "fork": f.fork,
    }


@routes.get("/api/v1/mirror")
async def mirror_status(request: web.Request) -> web.Response:
    """What the mirror holds, the hub's latest size, its last error, any fork's evidence."""
    return web.json_response(status_of(request.app[MIRROR]))


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    """Ready while it serves a verified copy and has seen no fork."""
    mirror = request.app[MIRROR]
    f = mirror.follower
    if f.fork is not None:
        return _error(503, "fork", str(f.fork.get("reason")))
    if f.crashed is not None:
        return _error(503, "stopped", f"the follower stopped: {f.crashed}")
    verified = f.store.verified()
    if verified is None:
        return _error(503, "not_ready", "no checkpoint of the hub verified yet")
    body: dict[str, Any] = {
        "status": "ready",
        "log_size": f.store.stored,
        "checkpoint_size": verified.head.size,
    }
    return web.json_response(body)


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    resp = web.Response(body=request.app[MIRROR].metrics.exposition())
    resp.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return resp


def create_app(settings: MirrorSettings) -> web.Application:
    app = web.Application(middlewares=[errors])
    app.add_routes(routes)

    async def follow(app: web.Application) -> AsyncIterator[None]:
        config = load_config(settings.directory)
        log_key = config.verifier()
        cosigner = MirrorCosigner.load(settings.directory, config.name)
        store = MirrorStore(settings.directory / LEDGER_FILE, log_key)
        reader = LedgerReader(settings.directory / LEDGER_FILE)
        session = aiohttp.ClientSession()
        metrics = MirrorMetrics()
        try:
            follower = Follower(
                store,
                HubClient(session, config.hub),
                log_key,
                cosigner,
                metrics,
                poll_s=settings.poll_s,
                max_backoff_s=settings.max_backoff_s,
            )
            vkey = (settings.directory / VKEY_FILE).read_text(encoding="utf-8").strip()
            app[MIRROR] = Mirror(follower, reader, metrics, vkey)
            task = asyncio.create_task(follower.run(), name="mirror-follow")
            try:
                yield
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        finally:
            await session.close()
            reader.close()
            store.close()

    app.cleanup_ctx.append(follow)
    return app
