"""The client against a "broker" on loopback that breaks the MQTT specification: every
malformed packet ends the connection with a ProtocolError naming what was wrong, without
reading more than the packet's header, and the reconnect loop connects again. A packet
that arrives a byte at a time is whole all the same. Section numbers: MQTT 3.1.1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from tests.support.edge import wait_until
from transport.backoff import Backoff
from transport.mqtt import (
    Client,
    ClientOptions,
    ConnectRefused,
    Endpoint,
    ProtocolError,
    new_client,
    stay_connected,
)

ACCEPTED = b"\x20\x02\x00\x00"  # CONNACK, connection accepted (section 3.2)


class HostileBroker:
    """Answers CONNECT with ``connack``, then writes ``then`` (``chunk`` bytes at a time),
    and keeps what the client sends."""

    def __init__(self, then: bytes, *, connack: bytes = ACCEPTED, chunk: int = 0) -> None:
        self.then, self.connack, self.chunk = then, connack, chunk
        self.connections = 0
        self.from_client = bytearray()
        self.port = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await reader.readexactly(1)  # CONNECT's first byte, then its remaining length
            length, shift = 0, 0
            while True:
                byte = (await reader.readexactly(1))[0]
                length |= (byte & 0x7F) << shift
                shift += 7
                if byte < 0x80:
                    break
            await reader.readexactly(length)
            writer.write(self.connack)
            step = self.chunk or len(self.then) or 1
            for at in range(0, len(self.then), step):
                writer.write(self.then[at : at + step])
                await writer.drain()
            while data := await reader.read(65536):
                self.from_client += data
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    @asynccontextmanager
    async def running(self) -> AsyncIterator[ClientOptions]:
        server = await asyncio.start_server(self.serve, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        try:
            yield ClientOptions(
                Endpoint("127.0.0.1", self.port, False), "hostile", max_packet_bytes=1024
            )
        finally:
            server.close()


async def first_message_error(broker: HostileBroker) -> ProtocolError:
    async with broker.running() as options, new_client(options) as client:
        with pytest.raises(ProtocolError) as caught:
            async for _ in client.messages:
                pass
    return caught.value


@pytest.mark.parametrize(
    ("packet", "error"),
    [
        # Section 2.2.3: a fifth byte of Remaining Length.
        ("30ffffffff7f", "remaining length over four bytes"),
        # Over the client's limit (1024 here): refused on its header, the body never read.
        ("30808040", "1048576-byte packet is over"),
        # MQTT-3.3.1-4: QoS 3.
        ("36050001610001", "QoS 3"),
        # QoS 2, which a broker grants only to a QoS 2 subscription (MQTT-3.8.4-6).
        ("34050001610001", "QoS 2"),
        # The topic name claims 9 bytes of a 3-byte packet.
        ("3003000961", "shorter than its topic name"),
        # Section 2.3.1: QoS 1 needs a non-zero packet identifier (MQTT-2.3.1-1).
        ("32050001610000", "packet identifier 0"),
        # MQTT-1.5.3-1: a topic name that is not UTF-8.
        ("30040002c328", "not UTF-8"),
        # MQTT-4.7.3-1: a topic name of no characters.
        ("30020000", "empty topic name"),
        # Section 2.2.2: PUBACK's reserved flags are 0000.
        ("42020001", "reserved flags"),
        # CONNECT goes from a client to a broker, never back.
        ("1000", "never sends this client"),
        # QoS 2's second step, for a QoS 2 publish this client never made.
        ("62020001", "never sends this client"),
        # A second CONNACK (MQTT-3.2.0-1: the first packet only).
        ("20020000", "never sends this client"),
        # Section 3.13: PINGRESP has no body.
        ("d00100", "PINGRESP with a body"),
    ],
)
async def test_a_malformed_packet_is_a_protocol_error(packet: str, error: str) -> None:
    broker = HostileBroker(bytes.fromhex(packet))
    assert error in str(await first_message_error(broker))


async def test_a_publish_before_the_connack_is_a_protocol_error() -> None:
    broker = HostileBroker(b"", connack=bytes.fromhex("3003000161"))
    async with broker.running() as options:
        with pytest.raises(ProtocolError, match="before the CONNACK"):
            async with new_client(options):
                pass


async def test_a_refused_connection_says_why() -> None:
    broker = HostileBroker(b"", connack=b"\x20\x02\x00\x04")
    async with broker.running() as options:
        with pytest.raises(ConnectRefused, match="bad user name or password"):
            async with new_client(options):
                pass


async def test_a_packet_that_comes_a_byte_at_a_time_is_whole() -> None:
    """Two QoS 1 PUBLISH packets (the second with a two-byte remaining length), one byte per
    write: both arrive intact, and each gets its PUBACK (section 4.3.2)."""
    big = b"x" * 300
    packets = bytes.fromhex("32090003612f620001") + b"hi"
    packets += b"\x32" + bytes.fromhex("b102") + b"\x00\x01c" + b"\x00\x02" + big  # 305
    broker = HostileBroker(packets, chunk=1)
    async with broker.running() as options, new_client(options) as client:
        got = []
        async for message in client.messages:
            got.append((message.topic, message.payload, message.qos, message.mid))
            if len(got) == 2:
                break
        await wait_until(
            lambda: bytes.fromhex("40020001") + bytes.fromhex("40020002") in broker.from_client, 10
        )
    assert got == [("a/b", b"hi", 1, 1), ("c", big, 1, 2)]


async def test_after_a_malformed_packet_the_loop_connects_again() -> None:
    broker = HostileBroker(bytes.fromhex("36050001610001"))
    errors: list[Exception] = []

    async def session(client: Client) -> None:
        async for _ in client.messages:
            pass

    async with broker.running() as options:
        runner = asyncio.create_task(
            stay_connected(
                options,
                session,
                backoff=Backoff(initial=0.01, maximum=0.05),
                on_lost=lambda error, _delay, _attempt: errors.append(error),
                guard_interval=0.05,
            )
        )
        try:
            await wait_until(lambda: broker.connections >= 3, 10)
        finally:
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
    assert errors and all(isinstance(e, ProtocolError) and "QoS 3" in str(e) for e in errors)
