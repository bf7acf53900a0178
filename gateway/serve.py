"""Serving a hub: logging, the HTTP server, and the drain on SIGTERM or Ctrl-C (aiohttp
turns both into an orderly cleanup of the contexts in ``app.py``). The event loop is the
process layer's choice (``runtime.process``), made before this runs."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Awaitable, Callable

from aiohttp import web

from .app import create_app, http_shutdown_timeout
from .settings import HubSettings

log = logging.getLogger("swiftchain.hub")

#: After the drain's budget, how long the stop may still take before the process gives up
#: on it (every step is bounded; this is the guarantee that SIGTERM always ends the hub).
WATCHDOG_GRACE_S = 5.0


def run_hub(settings: HubSettings, *, log_level: str = "INFO") -> int:
    """Serve until SIGTERM/SIGINT; then stop ingest, commit and receipt what is in flight.
    With front ends (``settings.front_ends``), as a sequencer process and N front-end
    processes (``gateway.cluster.supervisor``); the exit status."""
    logging.basicConfig(
        level=getattr(logging, log_level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    policy = type(asyncio.get_event_loop_policy())
    log.info("event loop: %s", policy.__module__.split(".")[0])
    if settings.front_ends > 0:
        from .cluster.supervisor import supervise

        return asyncio.run(supervise(settings, log_level))
    _serve(create_app(settings), settings, reuse_port=False)
    log.info("hub stopped cleanly")
    return 0


def run_front(settings: HubSettings, index: int, secret: str) -> None:
    """One front end of a hub with front ends (its port shared with the others)."""
    _serve(create_app(settings, front=(index, secret)), settings, reuse_port=True)
    log.info("front end %d stopped cleanly", index)


def _serve(app: web.Application, settings: HubSettings, *, reuse_port: bool) -> None:
    app.on_shutdown.append(_watchdog(settings.drain_timeout_s + WATCHDOG_GRACE_S))
    web.run_app(
        app,
        host=settings.http_host,
        port=settings.http_port,
        print=lambda text: log.info("%s", text.strip()),
        access_log=None,
        shutdown_timeout=http_shutdown_timeout(settings),
        reuse_port=reuse_port or None,
    )


def _watchdog(seconds: float) -> Callable[[web.Application], Awaitable[None]]:
    """An ``on_shutdown`` hook: if the process is still stopping ``seconds`` later, exit."""

    async def arm(app: web.Application) -> None:
        timer = threading.Timer(seconds, _give_up, args=(seconds,))
        timer.daemon = True
        timer.start()

    return arm


def _give_up(seconds: float) -> None:
    log.error(
        "the hub did not stop within %.1f s of the signal; exiting now"
        " (records without a receipt are resent by their agents)",
        seconds,
    )
    logging.shutdown()
    os._exit(1)
