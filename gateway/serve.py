"""Serving a hub: logging, the HTTP server, and the drain on SIGTERM or Ctrl-C (aiohttp
turns both into an orderly cleanup of the contexts in ``app.py``). The event loop is the
process layer's choice (``runtime.process``), made before this runs."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from .app import create_app
from .settings import HubSettings

log = logging.getLogger("swiftchain.hub")


def run_hub(settings: HubSettings, *, log_level: str = "INFO") -> None:
    """Serve until SIGTERM/SIGINT; then stop ingest, commit and receipt what is in flight."""
    logging.basicConfig(
        level=getattr(logging, log_level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    policy = type(asyncio.get_event_loop_policy())
    log.info("event loop: %s", policy.__module__.split(".")[0])
    web.run_app(
        create_app(settings),
        host=settings.http_host,
        port=settings.http_port,
        print=lambda text: log.info("%s", text.strip()),
        access_log=None,
        shutdown_timeout=settings.drain_timeout_s,
    )
    log.info("hub stopped cleanly")
