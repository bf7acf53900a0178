"""Running a hub as a process: logging, uvloop, the HTTP server, and the drain on
SIGTERM or Ctrl-C (aiohttp turns both into an orderly cleanup of the contexts in
``app.py``)."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from .app import create_app
from .settings import HubSettings

log = logging.getLogger("swiftchain.hub")


def install_uvloop() -> bool:
    try:
        import uvloop
    except ImportError:
        return False
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return True


def run_hub(settings: HubSettings, *, log_level: str = "INFO") -> None:
    """Serve until SIGTERM/SIGINT; then stop ingest, commit and receipt what is in flight."""
    logging.basicConfig(
        level=getattr(logging, log_level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if settings.use_uvloop and install_uvloop():
        log.info("using uvloop")
    web.run_app(
        create_app(settings),
        host=settings.http_host,
        port=settings.http_port,
        print=lambda text: log.info("%s", text.strip()),
        access_log=None,
        shutdown_timeout=settings.drain_timeout_s,
    )
    log.info("hub stopped cleanly")
