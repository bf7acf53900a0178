"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from aiohttp import web

from ..appkeys import hub_of
from ..metrics import CONTENT_TYPE_LATEST
from .models import Health

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    """The process is up and serving HTTP."""
    return web.json_response(Health(status="ok").model_dump(exclude_none=True))


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    """Ready to ingest: ledger open, last commit good, broker connected, not draining."""
    hub = hub_of(request)
    why = hub.not_ready_because()
    if why is not None:
        return web.json_response({"error": "not_ready", "detail": why}, status=503)
    head = hub.ledger.checkpoints.latest
    size = hub.ledger.size()
    body = Health(status="ready", log_size=size, checkpoint_size=head.size if head else None)
    answer = body.model_dump(exclude_none=True)
    witnesses = hub.witness_status
    if witnesses is not None:
        # Ready to ingest either way; whether the alliance's quorum vouches for the log,
        # and why not, is said here (agents that require it wait for it).
        answer["witnesses"] = witnesses.status(size)
    return web.json_response(answer)


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    resp = web.Response(body=hub_of(request).metrics.exposition())
    resp.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return resp
