"""The shared MQTT link's pure parts: broker URLs, TLS files, ordered PUBACKs, topic
filters, the guard against lost cancellations, and a client before it connects."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from transport.mqtt import (
    BrokerUrlError,
    ClientOptions,
    Endpoint,
    MqttError,
    OrderedAcks,
    TlsError,
    TlsFiles,
    new_client,
    ordered_acks,
    publish_nowait,
    stop_if_cancelled,
    tls_context,
    topic_matches,
    unacknowledged,
)


@pytest.mark.parametrize(
    ("url", "endpoint"),
    [
        ("mqtt://127.0.0.1", Endpoint("127.0.0.1", 1883, False)),
        ("tcp://broker.local:1999", Endpoint("broker.local", 1999, False)),
        ("mqtts://127.0.0.1", Endpoint("127.0.0.1", 8883, True)),
        ("mqtts://broker.local:18883", Endpoint("broker.local", 18883, True)),
    ],
)
def test_broker_urls(url: str, endpoint: Endpoint) -> None:
    assert Endpoint.parse(url) == endpoint


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1", "mqtt://", "127.0.0.1:1883", "mqtts://h:99999", "mqtt://h:x"]
)
def test_bad_broker_urls_say_what_a_url_looks_like(url: str) -> None:
    with pytest.raises(BrokerUrlError, match=r"mqtt://host:port or mqtts://host:port"):
        Endpoint.parse(url)


# -- TLS files (good ones are used against a real broker in tests/integration/transport) --


def test_a_missing_ca_file_is_a_tls_error(tmp_path: Path) -> None:
    with pytest.raises(TlsError, match=r"CA file .*nope\.pem"):
        tls_context(TlsFiles(ca_file=tmp_path / "nope.pem"))


def test_a_ca_file_without_certificates_is_a_tls_error(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("not a certificate\n")
    with pytest.raises(TlsError, match="CA file"):
        tls_context(TlsFiles(ca_file=tmp_path / "ca.pem"))


def test_a_key_without_its_certificate_is_a_tls_error(tmp_path: Path) -> None:
    with pytest.raises(TlsError, match="needs its cert_file"):
        tls_context(TlsFiles(key_file=tmp_path / "client.key"))


def test_a_missing_client_certificate_is_a_tls_error(tmp_path: Path) -> None:
    with pytest.raises(TlsError, match=r"client certificate .*client\.pem"):
        tls_context(TlsFiles(cert_file=tmp_path / "client.pem"))


def test_without_files_the_system_cas_verify_the_broker_and_its_name() -> None:
    import ssl

    context = tls_context(TlsFiles())
    assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname
    assert not tls_context(TlsFiles(insecure=True)).check_hostname


# -- PUBACKs in the order the messages arrived (MQTT-4.6.0-2) ------------------------------


def test_acks_wait_for_every_earlier_message() -> None:
    sent: list[tuple[int, int]] = []
    acks = OrderedAcks(lambda mid, qos: sent.append((mid, qos)))
    first, second, third = (acks.received(mid, 1) for mid in (7, 8, 9))
    acks.done(third)
    acks.done(second)
    assert sent == [] and len(acks) == 3
    acks.done(first)
    assert sent == [(7, 1), (8, 1), (9, 1)] and len(acks) == 0


def test_acks_go_out_as_soon_as_the_oldest_are_done() -> None:
    sent: list[int] = []
    acks = OrderedAcks(lambda mid, qos: sent.append(mid))
    tickets = [acks.received(mid, 1) for mid in range(1, 6)]
    for index in (0, 3, 1):
        acks.done(tickets[index])
    assert sent == [1, 2]
    acks.done(tickets[2])
    assert sent == [1, 2, 3, 4]
    acks.done(tickets[2])  # twice is once
    assert sent == [1, 2, 3, 4]


def test_a_message_never_done_holds_back_every_later_ack() -> None:
    sent: list[int] = []
    acks = OrderedAcks(lambda mid, qos: sent.append(mid))
    acks.received(1, 1)  # its store failed: never done
    for mid in (2, 3):
        acks.done(acks.received(mid, 1))
    assert sent == [] and len(acks) == 3


def test_qos_0_messages_have_no_ack_and_hold_nothing_back() -> None:
    sent: list[int] = []
    acks = OrderedAcks(lambda mid, qos: sent.append(mid))
    zero = acks.received(0, 0)
    one = acks.received(5, 1)
    acks.done(one)
    acks.done(zero)
    assert sent == [5]


# -- topic filters (MQTT 3.1.1 section 4.7) ----------------------------------------------


@pytest.mark.parametrize(
    ("topic", "topic_filter", "matches"),
    [
        ("sensors/parking/p-9", "sensors/parking/+", True),
        ("sensors/parking/p-9", "sensors/+/p-9", True),
        ("sensors/parking/p-9/extra", "sensors/parking/+", False),
        ("sensors/parking", "sensors/parking/+", False),
        ("sensors/parking/p-9", "sensors/#", True),
        ("sensors", "sensors/#", True),  # '#' takes the parent level too (4.7.1.2)
        ("sensors/parking/p-9", "#", True),
        ("sensors//p-9", "sensors/+/p-9", True),  # an empty level is a level
        ("sensors/parking/p-9", "sensors/parking/p-9", True),
        ("sensors/parking/p-9", "Sensors/parking/p-9", False),  # case matters (4.7.3)
        ("$SYS/broker/load", "#", False),  # MQTT-4.7.2-1
        ("$SYS/broker/load", "+/broker/load", False),
        ("$SYS/broker/load", "$SYS/#", True),
    ],
)
def test_topic_filters(topic: str, topic_filter: str, matches: bool) -> None:
    assert topic_matches(topic, topic_filter) is matches


# -- a client before (or without) a connection ---------------------------------------------


async def test_an_unconnected_client_refuses_to_publish_and_acks_nothing() -> None:
    client = new_client(ClientOptions(Endpoint("127.0.0.1", 9, False), "idle", manual_acks=True))
    assert publish_nowait(client, "t", b"x") is False
    assert unacknowledged(client) == 0
    acks = ordered_acks(client)
    acks.done(acks.received(1, 1))  # its ack goes nowhere, without an error
    with pytest.raises(MqttError, match="not connected"):
        await client.subscribe("t")


async def test_a_broker_that_is_not_there_is_an_mqtt_error() -> None:
    from tests.support.broker import free_port

    port = free_port()
    with pytest.raises(MqttError, match=f"cannot connect to 127.0.0.1:{port}"):
        async with new_client(ClientOptions(Endpoint("127.0.0.1", port, False), "nobody")):
            pass


# -- the guard against cancellations lost by Python 3.11's wait_for ------------------------


async def test_a_lost_cancellation_still_stops_the_task() -> None:
    reached: list[str] = []

    async def loses_its_cancellation() -> None:
        task = asyncio.current_task()
        assert task is not None
        task.cancel()
        try:
            await asyncio.sleep(0)
        except asyncio.CancelledError:
            pass  # what wait_for does when the cancellation meets a completing future
        reached.append("carried on")
        stop_if_cancelled()
        reached.append("never")

    task: asyncio.Task[Any] = asyncio.create_task(loses_its_cancellation())
    with pytest.raises(asyncio.CancelledError):
        await task
    assert reached == ["carried on"]


async def test_an_uncancelled_task_passes_the_guard() -> None:
    stop_if_cancelled()
