"""The generated Mosquitto configuration on a real Mosquitto: accepted, and enforced."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import pytest

from gateway.registry.mosquitto import (
    hub_account,
    password_hash,
    render_acl,
    render_config,
    render_password_file,
    source_account,
)
from tests.support.broker import Mosquitto, free_port

PASSWORDS = {
    "hub": "hub-secret",
    "air-quality.aq-station-01": "s1",
    "air-quality.aq-station-02": "s2",
}


@pytest.fixture
def secured_broker(tmp_path: Path) -> Iterator[Mosquitto]:
    accounts = [
        hub_account("hub", password_hash(PASSWORDS["hub"], iterations=1000)),
        source_account("air-quality", "aq-station-01", password_hash("s1", iterations=1000)),
        source_account("air-quality", "aq-station-02", password_hash("s2", iterations=1000)),
    ]
    (tmp_path / "passwd").write_text(render_password_file(accounts))
    (tmp_path / "acl").write_text(render_acl(accounts))
    port = free_port()
    broker = Mosquitto(tmp_path, port=port)
    # The generated main config replaces the fixture's own: no anonymous access at all.
    config = render_config(
        port=port,
        bind="127.0.0.1",
        password_file=str(tmp_path / "passwd"),
        acl_file=str(tmp_path / "acl"),
        persistence_dir=str(tmp_path),
    )
    broker.config_text = config
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


def client(
    broker: Mosquitto, user: str, password: str | None = None, **kw: object
) -> aiomqtt.Client:
    return aiomqtt.Client(
        "127.0.0.1",
        broker.port,
        username=user,
        password=PASSWORDS.get(user) if password is None else password,
        **kw,  # type: ignore[arg-type]
    )


async def _receive(sub: aiomqtt.Client, seconds: float) -> list[str]:
    got: list[str] = []
    try:
        async with asyncio.timeout(seconds):
            async for m in sub.messages:
                got.append(f"{m.topic}:{m.payload!r}")
    except TimeoutError:
        pass
    return got


async def test_sources_publish_only_their_own_records(secured_broker: Mosquitto) -> None:
    async with client(secured_broker, "hub") as hub:
        await hub.subscribe("$share/hub/swiftchain/v1/+/+/records", qos=1)
        async with client(secured_broker, "air-quality.aq-station-01") as s1:
            await s1.publish("swiftchain/v1/air-quality/aq-station-01/records", b"own", qos=1)
            # Spoofing another source's topic: the broker accepts the PUBACK but drops it.
            await s1.publish("swiftchain/v1/air-quality/aq-station-02/records", b"spoof", qos=1)
            await s1.publish("swiftchain/v1/traffic/aq-station-01/records", b"other-pilot", qos=1)
        got = await _receive(hub, seconds=1.5)
    assert got == ["swiftchain/v1/air-quality/aq-station-01/records:b'own'"]


async def test_sources_read_only_their_own_receipts(secured_broker: Mosquitto) -> None:
    async with client(secured_broker, "air-quality.aq-station-02") as s2:
        await s2.subscribe("swiftchain/v1/air-quality/+/receipts", qos=1)
        async with client(secured_broker, "hub") as hub:
            await hub.publish("swiftchain/v1/air-quality/aq-station-01/receipts", b"r1", qos=1)
            await hub.publish("swiftchain/v1/air-quality/aq-station-02/receipts", b"r2", qos=1)
        got = await _receive(s2, seconds=1.5)
    assert got == ["swiftchain/v1/air-quality/aq-station-02/receipts:b'r2'"]


async def test_wrong_password_and_anonymous_are_refused(secured_broker: Mosquitto) -> None:
    with pytest.raises(aiomqtt.MqttError):
        async with client(secured_broker, "air-quality.aq-station-01", password="wrong"):
            pass
    with pytest.raises(aiomqtt.MqttError):
        async with aiomqtt.Client("127.0.0.1", secured_broker.port):
            pass
