"""The demo's child processes (its witnesses and its mirror): a `swiftchain` verb started
with the demo's own interpreter, logging to a file, dying with the demo however it ends
(``stopping.die_with_parent``), waited for until it serves ``/healthz``, and stopped on exit
(SIGTERM, then SIGKILL past a bound)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp

from ..errors import SwiftchainError
from .stopping import die_with_parent

#: Bounds on a child starting (a busy machine is slow to import Python) and stopping.
START_S = 30.0
STOP_S = 10.0


class ChildUnavailable(SwiftchainError):
    """A child did not start serving; the message carries the end of its log."""


@asynccontextmanager
async def swiftchain_child(
    what: str, args: list[str], log_file: Path, health_url: str, *, wait: bool = True
) -> AsyncIterator[asyncio.subprocess.Process]:
    """``swiftchain <args>``, serving at ``health_url`` (``/healthz``) once entered (or, with
    ``wait`` false, once :func:`wait_healthy` says so: children started together can be
    waited for together); stopped on exit."""
    log = log_file.open("ab")
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-c", "from swiftchain.cli import main; main()", *args),
        stdout=log,
        stderr=subprocess.STDOUT,
        preexec_fn=die_with_parent(),
    )
    try:
        if wait:
            await wait_healthy(what, proc, log_file, health_url)
        yield proc
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), STOP_S)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        log.close()


async def wait_healthy(
    what: str, proc: asyncio.subprocess.Process, log_file: Path, url: str
) -> None:
    """Until the child answers ``url`` with 200; ChildUnavailable if it exits or is slow."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + START_S
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
        while loop.time() < deadline:
            if proc.returncode is not None:
                tail = (await asyncio.to_thread(log_file.read_text, errors="replace"))[-2000:]
                raise ChildUnavailable(f"{what} exited with status {proc.returncode}: {tail}")
            try:
                async with http.get(url) as resp:
                    if resp.status == 200:
                        return
            except (aiohttp.ClientError, OSError):
                pass
            await asyncio.sleep(0.05)
    raise ChildUnavailable(f"{what} is not serving after {START_S:g} s")
