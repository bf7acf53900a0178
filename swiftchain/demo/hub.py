"""The demo's hub: in-process, on the demo's event loop, serving HTTP on 127.0.0.1."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from gateway.app import create_app, http_shutdown_timeout
from gateway.settings import HubSettings, load_settings
from ledger.checkpoint import NoteSigner
from ledger.keys import load_private_key, write_key_pair

from .broker import DemoBroker

ORIGIN = "demo.swiftchain.local/ledger"


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


def hub_key(workdir: Path) -> tuple[Path, str]:
    """The hub's signing key (made on first use) and its verifier key, which the witnesses
    are given (``swiftchain keys new --note-name`` prints the same)."""
    directory = workdir / "hub"
    directory.mkdir(parents=True, exist_ok=True)
    key = directory / "hub.key"
    if not key.exists():
        write_key_pair(key)
    return key, NoteSigner(ORIGIN, load_private_key(key)).verifier.encode()


def hub_settings(
    workdir: Path,
    port: int,
    broker: DemoBroker,
    admin_token: str,
    trust_policy: Path | None = None,
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
    )


@asynccontextmanager
async def demo_hub(
    workdir: Path, port: int, broker: DemoBroker, trust_policy: Path | None = None
) -> AsyncIterator[DemoHub]:
    """A hub that checks consent at ingest, as `swiftchain hub` does, and submits its
    checkpoints to the witnesses of ``trust_policy``; drained on exit."""
    admin_token = secrets.token_urlsafe(24)
    settings = hub_settings(workdir, port, broker, admin_token, trust_policy)
    runner = web.AppRunner(
        create_app(settings),
        access_log=None,
        shutdown_timeout=http_shutdown_timeout(settings),
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.http_host, settings.http_port)
        await site.start()
        yield DemoHub(f"http://127.0.0.1:{port}", admin_token, settings)
    finally:
        await runner.cleanup()
