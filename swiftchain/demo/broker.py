"""The demo's MQTT broker: its own Mosquitto on a free loopback port when the binary is
installed (one account per source with an ACL, generated as `swiftchain broker-config` does),
otherwise an embedded amqtt broker (MQTT 3.1.1, no shared subscriptions, anonymous on
loopback: the receipts still do the delivery work)."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from gateway.registry.mosquitto import (
    accounts_for,
    derive_password,
    new_secret,
    render_acl,
    render_config,
    render_password_file,
    source_username,
)

from ..errors import SwiftchainError
from .stopping import die_with_parent

BrokerKind = Literal["auto", "mosquitto", "embedded"]
HUB_USER = "hub"


class BrokerUnavailable(SwiftchainError):
    """The chosen broker cannot run here; the message says what to install or choose."""


@dataclass(frozen=True)
class DemoBroker:
    kind: Literal["mosquitto", "embedded"]
    url: str
    #: The agents' MQTT version and the hub's, as their settings spell them.
    edge_protocol: Literal["3.1.1", "5"]
    hub_protocol: Literal["v5", "v311"]
    shared_subscription: bool
    hub_username: str | None = None
    hub_password: str | None = None
    credentials: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)

    @property
    def description(self) -> str:
        if self.kind == "mosquitto":
            return f"Mosquitto at {self.url} (one account and ACL per source)"
        return f"embedded amqtt broker at {self.url} (MQTT 3.1.1)"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def mosquitto_binary() -> str | None:
    return shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if os.access("/usr/sbin/mosquitto", os.X_OK) else None
    )


def choose(kind: BrokerKind) -> Literal["mosquitto", "embedded"]:
    if kind == "auto":
        return "mosquitto" if mosquitto_binary() else "embedded"
    if kind == "mosquitto" and mosquitto_binary() is None:
        raise BrokerUnavailable(
            "no `mosquitto` binary on PATH; install it (apt install mosquitto) "
            "or use --broker embedded"
        )
    return kind


@asynccontextmanager
async def demo_broker(
    kind: BrokerKind, workdir: Path, sources: Iterable[tuple[str, str]]
) -> AsyncIterator[DemoBroker]:
    """A running broker for the demo, stopped when the block ends."""
    if choose(kind) == "mosquitto":
        async with _mosquitto(workdir / "mosquitto", sources) as broker:
            yield broker
    else:
        async with _embedded() as broker:
            yield broker


async def _wait_for_port(
    port: int, within_s: float, proc: asyncio.subprocess.Process | None
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while loop.time() < deadline:
        if proc is not None and proc.returncode is not None:
            raise BrokerUnavailable(f"mosquitto exited with status {proc.returncode}")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        await writer.wait_closed()
        return
    raise BrokerUnavailable(f"no broker listening on 127.0.0.1:{port} after {within_s:g} s")


def _write(path: Path, text: str, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as out:
        out.write(text)


def write_mosquitto_files(
    directory: Path, port: int, sources: Iterable[tuple[str, str]]
) -> tuple[Path, dict[str, str], dict[tuple[str, str], tuple[str, str]]]:
    """mosquitto.conf, passwd and acl for the hub and every source: (config, hub login,
    per-source logins). Passwords derive from a fresh secret, as `broker-config` derives them."""
    directory.mkdir(parents=True, exist_ok=True)
    chosen = sorted(set(sources))
    secret = new_secret()
    accounts = accounts_for(chosen, secret, HUB_USER)
    _write(directory / "passwd", render_password_file(accounts), 0o600)
    _write(directory / "acl", render_acl(accounts), 0o644)
    conf = render_config(
        port=port,
        bind="127.0.0.1",
        password_file=str(directory / "passwd"),
        acl_file=str(directory / "acl"),
        persistence_dir=str(directory),
    )
    # As root, Mosquitto would drop to the `mosquitto` user, who cannot read our folder.
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        conf += "user root\n"
    _write(directory / "mosquitto.conf", conf, 0o644)
    hub = {"username": HUB_USER, "password": derive_password(secret, HUB_USER)}
    logins = {}
    for pilot, source in chosen:
        name = source_username(pilot, source)
        logins[(pilot, source)] = (name, derive_password(secret, name))
    return directory / "mosquitto.conf", hub, logins


@asynccontextmanager
async def _mosquitto(
    directory: Path, sources: Iterable[tuple[str, str]]
) -> AsyncIterator[DemoBroker]:
    binary = mosquitto_binary()
    assert binary is not None
    port = free_port()
    conf, hub, logins = write_mosquitto_files(directory, port, sources)
    log = (directory / "mosquitto.log").open("ab")
    proc = await asyncio.create_subprocess_exec(
        binary,
        "-c",
        str(conf),
        stdout=log,
        stderr=subprocess.STDOUT,
        preexec_fn=die_with_parent(),
    )
    try:
        await _wait_for_port(port, 10.0, proc)
        yield DemoBroker(
            kind="mosquitto",
            url=f"mqtt://127.0.0.1:{port}",
            edge_protocol="5",
            hub_protocol="v5",
            shared_subscription=True,
            hub_username=hub["username"],
            hub_password=hub["password"],
            credentials=logins,
        )
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        log.close()


@asynccontextmanager
async def _embedded() -> AsyncIterator[DemoBroker]:
    try:
        from amqtt.broker import Broker  # type: ignore[import-untyped]
    except ImportError:
        raise BrokerUnavailable(
            "the embedded broker needs amqtt (pip install amqtt), or install mosquitto"
        ) from None
    # amqtt logs every connection at INFO; the demo's own summary says what matters.
    logging.getLogger("amqtt").setLevel(logging.WARNING)
    port = free_port()
    config = {
        "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }
    broker = Broker(config)
    await broker.start()
    try:
        await _wait_for_port(port, 10.0, None)
        yield DemoBroker(
            kind="embedded",
            url=f"mqtt://127.0.0.1:{port}",
            edge_protocol="3.1.1",
            hub_protocol="v311",
            shared_subscription=False,
        )
    finally:
        await broker.shutdown()
