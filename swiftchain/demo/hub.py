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
from ledger.keys import write_key_pair

from .broker import DemoBroker


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


def hub_settings(workdir: Path, port: int, broker: DemoBroker, admin_token: str) -> HubSettings:
    directory = workdir / "hub"
    directory.mkdir(parents=True, exist_ok=True)
    key = directory / "hub.key"
    if not key.exists():
        write_key_pair(key)
    return load_settings(
        None,
        origin="demo.swiftchain.local/ledger",
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
    )


@asynccontextmanager
async def demo_hub(workdir: Path, port: int, broker: DemoBroker) -> AsyncIterator[DemoHub]:
    """A hub that checks consent at ingest, as `swiftchain hub` does; drained on exit."""
    admin_token = secrets.token_urlsafe(24)
    settings = hub_settings(workdir, port, broker, admin_token)
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
