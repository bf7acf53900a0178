"""The demo's mirror: a third member organisation keeps its own verified copy of the log
(`swiftchain mirror run`, a child process on a free loopback port that dies with the demo),
following the hub over its public API alone; and the story step that checks it holds the
whole log, proves what the hub proves and cosigns what it holds (docs/alliance.md,
"Mirrors")."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from ledger.cosignature import CosignatureError, CosignerVerifier, verify_cosignatures
from mirror.config import VKEY_FILE, init_mirror

from .broker import free_port
from .children import swiftchain_child
from .story import StoryStep

#: The member organisation that runs the demo's mirror (pilots/definitions/*.yaml).
OPERATOR = "harbour-university-hospital"
NAME = f"mirror.{OPERATOR}.example/m1"
POLL_S = 0.2
#: How long the story waits for the mirror to hold the whole log.
CATCH_UP_S = 30.0


@dataclass(frozen=True)
class DemoMirror:
    directory: Path
    port: int
    vkey: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def description(self) -> str:
        return f"{NAME} (run by {OPERATOR}) at {self.url}, following the hub's public API"


@asynccontextmanager
async def demo_mirror(workdir: Path, hub_url: str, log_vkey: str) -> AsyncIterator[DemoMirror]:
    """The mirror made (``mirror init`` with the hub's pinned key) and following; stopped on
    exit."""
    directory = workdir / "mirror"
    await asyncio.to_thread(init_mirror, directory, hub_url, log_vkey, NAME)
    vkey = (directory / VKEY_FILE).read_text(encoding="utf-8").strip()
    mirror = DemoMirror(directory, free_port(), vkey)
    args = ["mirror", "run", "--dir", str(directory), "--port", str(mirror.port)]
    async with swiftchain_child(
        "the mirror",
        [*args, "--poll-s", str(POLL_S), "--log-level", "WARNING"],
        directory / "mirror.log",
        mirror.url + "/healthz",
    ):
        yield mirror


async def _json(http: aiohttp.ClientSession, url: str) -> tuple[int, object]:
    async with http.get(url) as resp:
        return resp.status, await resp.json(content_type=None)


async def mirror_step(http: aiohttp.ClientSession, mirror: DemoMirror, hub_url: str) -> StoryStep:
    """The mirror holds the hub's whole log (up to its size when the step began), serves
    the same inclusion proof as the hub for an entry in the middle, and cosigns it."""
    _, page = await _json(http, hub_url + "/api/v1/ledger/entries?start=0&end=0")
    size = int(page["size"]) if isinstance(page, dict) else 0
    held, ready = 0, None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + CATCH_UP_S
    while loop.time() < deadline:
        status, ready = await _json(http, mirror.url + "/readyz")
        held = int(ready.get("checkpoint_size") or 0) if isinstance(ready, dict) else 0
        if status == 200 and held >= size:
            break
        await asyncio.sleep(POLL_S)
    title = (
        f"A mirror run by {OPERATOR} keeps its own verified copy of the log over the public"
        " API, proves what the hub proves, and cosigns what it holds."
    )
    expected = f"holds {size:,} entries, same inclusion proof, its cosignature verifies"
    if held < size:
        return StoryStep(title, expected, f"holds {held:,} of {size:,} ({ready})", False)
    index = size // 2
    query = f"/api/v1/ledger/proof/inclusion?index={index}&size={held}"
    _, ours = await _json(http, mirror.url + query)
    _, theirs = await _json(http, hub_url + query)
    async with http.get(mirror.url + "/api/v1/ledger/checkpoint") as resp:
        note = await resp.text()
    try:
        cosigned = bool(verify_cosignatures(note, [CosignerVerifier.parse(mirror.vkey)]))
    except CosignatureError:
        cosigned = False
    same = ours == theirs
    observed = (
        f"holds {held:,} entries; inclusion proof of entry {index:,}"
        f" {'the same as' if same else 'NOT the same as'} the hub's;"
        f" cosignature {'verifies' if cosigned else 'MISSING'}"
    )
    return StoryStep(title, expected, observed, same and cosigned)
