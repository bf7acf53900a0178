"""``swiftchain witness serve`` as a process: the HTTP server until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

from aiohttp import web

from runtime.process import run_until_signalled

from .app import create_app
from .service import Witness

log = logging.getLogger("swiftchain.witness")


async def serve(directory: Path, host: str, port: int) -> None:
    """Serve the witness in ``directory`` on ``host``:``port`` until cancelled. Prints one
    line once it listens (with the bound port, so ``--port 0`` can be used)."""
    witness = Witness.open(directory)
    runner = web.AppRunner(create_app(witness), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = runner.addresses[0][1] if runner.addresses else port
        print(
            f"witness {witness.signer.name} listening on http://{host}:{bound}"
            f" (vkey {witness.verifier.encode()})",
            flush=True,
        )
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def run_witness(directory: Path, host: str, port: int, *, log_level: str = "INFO") -> None:
    logging.basicConfig(
        level=getattr(logging, log_level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    run_until_signalled(serve(directory, host, port), use_uvloop=True)
