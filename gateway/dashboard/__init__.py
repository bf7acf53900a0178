"""The hub's dashboard: a control-room page, a JSON snapshot and a live SSE stream of the
network's state (``setup_dashboard(app)`` wires it into an application)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from ..appkeys import HUB
from .monitor import DashboardMonitor
from .routes import DASHBOARD, routes

log = logging.getLogger("swiftchain.hub.dashboard")

__all__ = ["DASHBOARD", "DashboardMonitor", "routes", "setup_dashboard"]


def setup_dashboard(app: web.Application) -> None:
    """Add the routes and the monitor (after the hub's own cleanup contexts, so it starts
    once the ledger is open and stops before it closes)."""
    app[DASHBOARD] = DashboardMonitor(app[HUB])
    app.add_routes(routes)
    app.cleanup_ctx.append(_monitor)
    app.on_shutdown.append(_end_streams)


async def _monitor(app: web.Application) -> AsyncIterator[None]:
    monitor = app[DASHBOARD]
    monitor.open()
    try:
        try:
            await monitor.tick()
        except Exception:
            log.exception("first dashboard tick failed; retrying every second")
        task = asyncio.create_task(monitor.run(), name="dashboard")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    finally:
        monitor.close()


async def _end_streams(app: web.Application) -> None:
    app[DASHBOARD].end_streams()
