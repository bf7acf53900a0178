"""The demo's hub, serving HTTP on 127.0.0.1: with front ends (``--workers``, one per core by
default) a sequencer process and front-end processes supervised from the demo's event loop,
as ``swiftchain hub`` runs them; with ``--workers 0`` in-process, on the demo's loop."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from aiohttp import web

from gateway.app import FRONT_HEADER, create_app, http_shutdown_timeout
from gateway.cluster.supervisor import supervise
from gateway.settings import HubSettings, load_settings
from ledger.checkpoint import NoteSigner
from ledger.keys import load_private_key, write_key_pair
from ledger.suite import DEFAULT_SUITE, Suite

from .broker import DemoBroker
from .children import ChildUnavailable

ORIGIN = "demo.swiftchain.local/ledger"
#: How long the hub's processes may take to start (import, ledger, broker).
READY_S = 60.0

log = logging.getLogger("swiftchain.demo")


@dataclass(frozen=True)
class DemoHub:
    url: str
    admin_token: str
    settings: HubSettings

    @property
    def db_path(self) -> Path:
        return self.settings.db_path

    @property
    def dashboard_url(self) -> str:
        return self.url + "/dashboard"


def hub_key(workdir: Path, suite: Suite = DEFAULT_SUITE) -> tuple[Path, str]:
    """The hub's signing key of ``suite`` (made on first use: it fixes the log's suite) and
    its verifier key, which the witnesses are given (``swiftchain keys new --note-name``
    prints the same)."""
    directory = workdir / "hub"
    directory.mkdir(parents=True, exist_ok=True)
    key = directory / "hub.key"
    if not key.exists():
        write_key_pair(key, suite=suite)
    return key, NoteSigner(ORIGIN, load_private_key(key)).verifier.encode()


def hub_settings(
    workdir: Path,
    port: int,
    broker: DemoBroker,
    admin_token: str,
    trust_policy: Path | None = None,
    workers: int | None = None,
) -> HubSettings:
    directory = workdir / "hub"
    key, _ = hub_key(workdir)
    return load_settings(
        None,
        origin=ORIGIN,
        db_path=directory / "ledger.db",
        signing_key=key,
        http_host="127.0.0.1",
        http_port=port,
        public_url=f"http://127.0.0.1:{port}",
        admin_token=admin_token,
        mqtt_url=broker.url,
        mqtt_username=broker.hub_username,
        mqtt_password=broker.hub_password,
        mqtt_protocol=broker.hub_protocol,
        mqtt_shared_subscription=broker.shared_subscription,
        mqtt_client_id=f"swiftchain-demo-hub-{secrets.token_hex(4)}",
        mqtt_reconnect_initial_s=0.1,
        mqtt_reconnect_max_s=2.0,
        batch_max_ms=2.0,
        drain_timeout_s=5.0,
        use_uvloop=False,
        trust_policy=trust_policy,
        # Rounds a fifth of a second apart: the story waits for the quorum at its end.
        witness_interval_s=0.2,
        witness_timeout_s=2.0,
        workers=workers,
    )


@asynccontextmanager
async def demo_hub(
    workdir: Path,
    port: int,
    broker: DemoBroker,
    trust_policy: Path | None = None,
    workers: int | None = None,
) -> AsyncIterator[DemoHub]:
    """A hub that checks consent at ingest, as `swiftchain hub` does, and submits its
    checkpoints to the witnesses of ``trust_policy``; drained on exit."""
    admin_token = secrets.token_urlsafe(24)
    settings = hub_settings(workdir, port, broker, admin_token, trust_policy, workers)
    hub = DemoHub(f"http://127.0.0.1:{port}", admin_token, settings)
    if settings.front_ends == 0:
        async with _in_process(settings):
            yield hub
        return
    stopping = asyncio.Event()
    output = workdir / "hub" / "hub.log"
    task = asyncio.create_task(supervise(settings, "INFO", stopping, output), name="hub")
    try:
        await _until_ready(hub, task, settings.front_ends)
        yield hub
    finally:
        stopping.set()
        status = await task
        if status:
            log.warning("the hub stopped with status %d", status)


@asynccontextmanager
async def _in_process(settings: HubSettings) -> AsyncIterator[None]:
    runner = web.AppRunner(
        create_app(settings),
        access_log=None,
        shutdown_timeout=http_shutdown_timeout(settings),
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.http_host, settings.http_port)
        await site.start()
        yield
    finally:
        await runner.cleanup()


async def _until_ready(hub: DemoHub, task: asyncio.Task[int], fronts: int) -> None:
    """Until every front end answers /readyz (each new connection may reach another)."""
    seen: set[str] = set()
    deadline = asyncio.get_running_loop().time() + READY_S
    async with aiohttp.ClientSession() as session:
        while len(seen) < fronts:
            if task.done():
                raise ChildUnavailable(f"the hub stopped with status {task.result()}")
            if asyncio.get_running_loop().time() > deadline:
                raise ChildUnavailable(f"the hub's front ends were not ready in {READY_S:.0f} s")
            try:
                async with session.get(
                    hub.url + "/readyz", headers={"Connection": "close"}
                ) as resp:
                    if resp.status == 200:
                        seen.add(resp.headers.get(FRONT_HEADER, ""))
                        continue
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
