"""``swiftchain mirror run`` as a process: logging, the HTTP server, a clean stop on SIGTERM
(a kill -9 is survived too: every page and checkpoint is committed before it counts)."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from runtime.process import run_until_signalled

from .app import MirrorSettings, create_app

log = logging.getLogger("swiftchain.mirror")


async def serve(settings: MirrorSettings, host: str, port: int) -> None:
    runner = web.AppRunner(create_app(settings), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        log.info("mirror of %s serving on http://%s:%d", settings.directory, host, port)
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def run_mirror(settings: MirrorSettings, host: str, port: int, *, log_level: str = "INFO") -> None:
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    run_until_signalled(serve(settings, host, port), use_uvloop=False)
