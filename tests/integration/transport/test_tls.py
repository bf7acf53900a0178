"""TLS on a Mosquitto that has no plain listener: the shared link verifies the broker with
a CA file and presents a client certificate; the hub and the agent both get through."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from edge.settings import load_settings
from ledger.envelope import utc_now
from ledger.keys import load_private_key
from tests.support.broker import Mosquitto
from tests.support.edge import drained, running_agent, wait_until, write_edge_config
from tests.support.hub import MqttPeer, thread_hub
from tests.support.records import PILOT, SOURCE, TYPE, make
from tests.support.tls import Pki, make_pki, mqtts_url
from transport.backoff import Backoff
from transport.mqtt import (
    Client,
    ClientOptions,
    Endpoint,
    TlsFiles,
    publish_nowait,
    stay_connected,
    tls_context,
)

QUICK = Backoff(initial=0.05, maximum=0.2)


async def connects(
    broker: Mosquitto, files: TlsFiles, give_up_after: int = 2
) -> tuple[bool, list[str]]:
    """Whether a client with ``files`` gets a message through ``broker``, and the errors it
    met (it gives up after ``give_up_after`` of them)."""
    errors: list[str] = []
    options = ClientOptions(Endpoint.parse(mqtts_url(broker)), "tls-client", tls=tls_context(files))

    async def session(client: Client) -> None:
        await client.subscribe("tls/echo", qos=1)
        assert publish_nowait(client, "tls/echo", b"over tls")
        async for message in client.messages:
            assert message.payload == b"over tls"
            return

    def lost(error: Exception, retry_in: float, attempt: int) -> None:
        errors.append(str(error))

    runner = asyncio.create_task(
        stay_connected(options, session, backoff=QUICK, on_lost=lost, guard_interval=0.05)
    )
    try:
        # A bound on a hang, not a speed check: under TLS 1.3 a refused client certificate
        # surfaces only when the CONNACK wait runs out, seconds per attempt on a busy machine.
        await wait_until(lambda: runner.done() or len(errors) >= give_up_after, 90)
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
    return runner.done() and not runner.cancelled() and runner.exception() is None, errors


async def test_the_broker_is_verified_with_the_ca_file(tls_broker: Mosquitto, pki: Pki) -> None:
    ok, errors = await connects(tls_broker, TlsFiles(ca_file=pki.ca))
    assert ok and errors == []


async def test_a_broker_the_ca_does_not_vouch_for_is_refused(
    tmp_path: Path, tls_broker: Mosquitto
) -> None:
    stranger = make_pki(tmp_path / "other-pki", ca_name="someone else's CA")
    ok, errors = await connects(tls_broker, TlsFiles(ca_file=stranger.ca))
    assert not ok and errors and all("certificate verify failed" in e for e in errors)


async def test_a_broker_requiring_certificates_takes_ours_and_refuses_none(
    mtls_broker: Mosquitto, pki: Pki
) -> None:
    ok, errors = await connects(
        mtls_broker, TlsFiles(pki.ca, cert_file=pki.client_cert, key_file=pki.client_key)
    )
    assert ok and errors == []
    ok, errors = await connects(mtls_broker, TlsFiles(ca_file=pki.ca), give_up_after=1)
    assert not ok and errors


def hub_tls(pki: Pki, *, client_certificate: bool) -> dict[str, str]:
    settings = {"mqtt_tls_ca_file": str(pki.ca)}
    if client_certificate:
        settings |= {
            "mqtt_tls_cert_file": str(pki.client_cert),
            "mqtt_tls_key_file": str(pki.client_key),
        }
    return settings


async def test_the_hub_takes_records_from_a_tls_only_broker(
    tmp_path: Path, tls_broker: Mosquitto, pki: Pki
) -> None:
    url = mqtts_url(tls_broker)
    with thread_hub(tmp_path / "hub", url, **hub_tls(pki, client_certificate=False)) as hub:
        key_path, _ = hub.register_source(PILOT, SOURCE, [TYPE])
        key = load_private_key(key_path)
        async with MqttPeer(url, tls=pki.client_context(with_certificate=False)) as peer:
            receipt = await peer.send(make(key, 1))
    assert receipt["status"] == "accepted"


async def test_hub_agent_and_sensors_all_over_tls_with_client_certificates(
    tmp_path: Path, mtls_broker: Mosquitto, pki: Pki
) -> None:
    """The broker requires a client certificate: the hub, the agent's link and its sensor
    source each present one; a sensor reading ends up on the ledger with a checked receipt."""
    url = mqtts_url(mtls_broker)
    with thread_hub(tmp_path / "hub", url, **hub_tls(pki, client_certificate=True)) as hub:
        key_path, _ = hub.register_source("demo-zone", "car-parks", ["city.parking"])
        config = write_edge_config(
            tmp_path / "edge",
            pilot="demo-zone",
            source="car-parks",
            key_file=key_path,
            broker_url=url,
            hub_url=hub.http_url,
            hub_key=hub.log_key,
            sensors={
                "enabled": True,
                "topics": [{"topic": "sensors/parking/+", "type": "city.parking"}],
            },
        )
        with config.open("a") as toml:
            toml.write(
                f'\n[broker.tls]\nca_file = "{pki.ca}"\n'
                f'cert_file = "{pki.client_cert}"\nkey_file = "{pki.client_key}"\n'
            )
        async with running_agent(load_settings(config)) as agent:
            await wait_until(lambda: agent.sensors is not None and agent.sensors.connected.is_set())
            async with MqttPeer(url, tls=pki.client_context()) as device:
                reading = {
                    "facility": "p-9",
                    "observed_at": utc_now(),
                    "capacity": 10,
                    "occupied": 4,
                }
                await device.publish("sensors/parking/p-9", json.dumps(reading).encode())
            await wait_until(lambda: agent.intake.stored_total == 1, 20)
            await drained(agent, 30)
            assert agent.settler is not None and agent.settler.counts["deliver"] == 1
        entries = hub.get_json("/api/v1/ledger/entries?start=0&end=100")["entries"]
    assert sum(e["kind"] == "record" for e in entries) == 1
