"""The dashboard's HTTP surface: the page and its two files, a JSON snapshot, and a
Server-Sent Events stream of snapshots (one a second, each for a bounded time: the browser's
EventSource reconnects on its own).

Streams are bounded in all and per peer address, so that one client holding many sockets
cannot lock every browser out. Without credentials the snapshot and the stream carry counts
and the city's sensor data only; the access decisions' lines (each about one person's
records) go only to a request with ``Authorization: Bearer <admin token>``."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aiohttp import web

from ..api.params import require_admin
from ..appkeys import hub_of
from ..errors import ApiError, NotFound, NotReady
from .monitor import DashboardMonitor

routes = web.RouteTableDef()

DASHBOARD = web.AppKey("dashboard", DashboardMonitor)

STATIC = Path(__file__).with_name("static")
#: The only files served, with their types (no directory listing, no path from the request).
FILES = {
    "dashboard.css": "text/css",
    "dashboard.js": "text/javascript",
    "favicon.svg": "image/svg+xml",
}
#: The page talks only to the hub that served it: no CDN, no external font, no frame.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
        " connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
#: A stream ends after this long; the page's EventSource reconnects at once.
STREAM_MAX_S = 15 * 60


class TooManyStreams(ApiError):
    status = 503
    code = "too_many_streams"


class TooManyStreamsFromPeer(TooManyStreams):
    status = 429


def admit(
    open_streams: int,
    by_peer: Mapping[str, int],
    peer: str,
    *,
    max_streams: int,
    max_per_peer: int,
) -> None:
    """Whether one more stream may open for ``peer``; raise the refusal that says why."""
    if by_peer.get(peer, 0) >= max_per_peer:
        raise TooManyStreamsFromPeer(
            f"at most {max_per_peer} dashboard streams from one address at a time;"
            " close another tab first"
        )
    if open_streams >= max_streams:
        raise TooManyStreams(f"at most {max_streams} dashboard streams at a time")


def _operator(request: web.Request) -> bool:
    """Whether the request carries the admin token (a wrong one is a 401, not less data).
    Another scheme is no attempt at it: a proxy's Basic credentials pass through to here."""
    scheme, _, _ = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    token = hub_of(request).settings.admin_token
    require_admin(request, token.get_secret_value() if token else None)
    return True


def _monitor(request: web.Request) -> DashboardMonitor:
    return request.app[DASHBOARD]


def _file(name: str, content_type: str) -> web.Response:
    body = (STATIC / name).read_bytes()
    return web.Response(body=body, content_type=content_type, headers=SECURITY_HEADERS)


@routes.get("/")
async def root(request: web.Request) -> web.Response:
    raise web.HTTPFound("/dashboard")


@routes.get("/dashboard")
async def page(request: web.Request) -> web.Response:
    """The control-room page (HTML; its script and style from ``/dashboard/static/``)."""
    response = _file("index.html", "text/html")
    response.charset = "utf-8"
    return response


@routes.get("/dashboard/static/{name}")
async def static(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    content_type = FILES.get(name)
    if content_type is None:
        raise NotFound(f"no dashboard file {name[:64]!r}")
    return _file(name, content_type)


@routes.get("/api/v1/dashboard/summary")
async def summary(request: web.Request) -> web.Response:
    monitor = _monitor(request)
    snapshot: dict[str, Any] | None = (
        monitor.snapshot if _operator(request) else monitor.public_snapshot
    )
    if snapshot is None:
        raise NotReady("the dashboard has not read the ledger yet")
    return web.json_response(snapshot, headers={"Cache-Control": "no-cache"})


@routes.get("/api/v1/dashboard/stream")
async def stream(request: web.Request) -> web.StreamResponse:
    """``text/event-stream``: an ``event: summary`` with the snapshot every second."""
    monitor = _monitor(request)
    if monitor.stopping:
        raise NotReady("the hub is shutting down")
    operator = _operator(request)
    peer = request.remote or "unknown"
    admit(
        monitor.streams,
        monitor.streams_by_peer,
        peer,
        max_streams=monitor.max_streams,
        max_per_peer=monitor.max_streams_per_peer,
    )
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    monitor.streams += 1
    monitor.streams_by_peer[peer] = monitor.streams_by_peer.get(peer, 0) + 1
    try:
        await response.prepare(request)
        await response.write(b"retry: 2000\n\n")
        loop = asyncio.get_running_loop()
        ends = loop.time() + STREAM_MAX_S
        sent = -1
        while not monitor.stopping and loop.time() < ends:
            if monitor.version != sent:
                sent = monitor.version
                await response.write(monitor.event if operator else monitor.public_event)
            await monitor.next_tick()
    except ConnectionResetError:
        pass  # the page went away: nothing to clean up but the counts below
    finally:
        monitor.streams -= 1
        left = monitor.streams_by_peer.pop(peer, 1) - 1
        if left:
            monitor.streams_by_peer[peer] = left
    return response
