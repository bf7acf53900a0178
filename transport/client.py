"""One MQTT connection as an asyncio Protocol: CONNECT, SUBSCRIBE, QoS 0/1 PUBLISH both
ways, PUBACKs (automatic or by hand), keep alive, over TCP or TLS, MQTT 3.1.1 or 5.0.

Hand-written for speed. ``bench/mqtt_clients.py`` (20,000 messages, a real Mosquitto,
``time.process_time`` of the client's process) measured the hub's traffic, receiving a QoS 1
record, its PUBACK and one QoS 1 receipt published without awaiting its PUBACK, at 96 us of
CPU per record with aiomqtt 2 over paho-mqtt 2 in MQTT 3.1.1 and 137 us in 5.0; gmqtt 0.8
at 15 us in 3.1.1 (in 5.0 it ran out of packet identifiers); this client at 7 us in either.
The agent's (QoS 1 publish, its receipt back): 75 / 119 / 16 / 8 us. What makes the
difference: incoming packets are parsed in one loop per read, with no property objects or
per-message callbacks; packets written in one loop iteration go out in one ``write``;
nothing per message but the Message itself.

A client is used for one connection, in ``async with``; ``transport.mqtt.stay_connected``
makes a new one for every attempt. Packets are in ``transport.packets``.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from dataclasses import dataclass
from typing import Any, cast

from . import packets
from .packets import (
    CONNACK,
    DISCONNECT,
    DISCONNECT_PACKET,
    FIXED_FLAGS,
    PINGREQ_PACKET,
    PINGRESP,
    PUBACK,
    SUBACK,
    UNSUBACK,
    MqttError,
    ProtocolError,
)

#: Packet identifiers are 1 to 65,535 (section 2.3.1); this many may be publishes in flight,
#: so some are always free for a SUBSCRIBE.
MAX_WINDOW = 65_000

#: Largest packet taken from a broker, unless the options say otherwise: records are at
#: most 256 KiB (``ledger.envelope.MAX_RECORD_BYTES``); a larger one is refused by the hub
#: with a receipt, not by ending the connection.
MAX_PACKET_BYTES = 16 * 1024 * 1024

_PUBACK = packets._PUBACK.pack
_MISSING: Any = object()


class ConnectRefused(MqttError):
    """The broker answered CONNECT with a refusal (section 3.2.2.3, 5.0 3.2.2.2)."""


class SubscribeRefused(MqttError):
    """The broker refused a subscription (section 3.9.3: return code 0x80)."""


@dataclass(slots=True, eq=False)
class Message:
    """One PUBLISH received (section 3.3)."""

    topic: str
    payload: bytes
    qos: int
    mid: int
    """Its packet identifier (0 at QoS 0): what its PUBACK names."""
    retain: bool = False


class Messages:
    """``async for message in client.messages``: every PUBLISH received, in order; after
    the connection is lost, those already received, then the MqttError that ended it."""

    __slots__ = ("_client",)

    def __init__(self, client: Client) -> None:
        self._client = client

    def __aiter__(self) -> Messages:
        return self

    async def __anext__(self) -> Message:
        client = self._client
        queue = client._queue
        while not queue:
            if client._error is not None:
                raise client._error
            waiter = asyncio.get_running_loop().create_future()
            client._waiter = waiter
            try:
                await waiter
            finally:
                client._waiter = None
        # Unbounded, as aiomqtt's: pausing the socket for a slow consumer would hold back
        # the PUBACKs that consumer may be waiting for.
        return queue.popleft()


class Client(asyncio.Protocol):
    """An unconnected client; ``async with client:`` connects (raising MqttError if it
    cannot) and disconnects."""

    def __init__(
        self,
        host: str,
        port: int,
        client_id: str,
        *,
        tls: ssl.SSLContext | None = None,
        username: str | None = None,
        password: str | None = None,
        mqtt5: bool = False,
        session_expiry_s: int = 0,
        keepalive: int = 30,
        timeout: float = 10.0,
        max_inflight: int = 0,
        manual_acks: bool = False,
        max_packet_bytes: int = MAX_PACKET_BYTES,
    ) -> None:
        self.host, self.port, self.tls = host, port, tls
        self.where = f"{host}:{port}"
        self.connect_packet = packets.Connect(
            client_id,
            keepalive,
            mqtt5=mqtt5,
            username=username,
            password=password,
            session_expiry_s=session_expiry_s,
            max_packet_bytes=max_packet_bytes,
        ).encode()
        self.mqtt5 = mqtt5
        self.keepalive = keepalive
        self.timeout = timeout
        self.manual_acks = manual_acks
        self.max_packet_bytes = max_packet_bytes
        self.window = min(max_inflight or MAX_WINDOW, MAX_WINDOW)
        self.session_present = False
        self.refused_publishes = 0
        """QoS 1 publishes the broker acknowledged with an error (5.0 3.4.2.1)."""
        self.messages = Messages(self)
        self._loop: asyncio.AbstractEventLoop  # set on connecting; nothing is sent before
        self._transport: asyncio.Transport | None = None
        self._connack: asyncio.Future[packets.Connack] | None = None
        self._closed: asyncio.Future[None] | None = None
        self._connected = False
        self._accepted = False
        self._error: MqttError | None = None
        self._buffer = bytearray()
        self._out: list[bytes] = []
        self._flush_scheduled = False
        self._queue: deque[Message] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._last_id = 0
        self._inflight: dict[int, asyncio.Future[None] | None] = {}
        self._queued: deque[tuple[str, bytes, asyncio.Future[None] | None]] = deque()
        self._subscribing: dict[int, asyncio.Future[tuple[list[int], str]]] = {}
        self._topics: dict[str, bytes] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._heard = False
        self._ping_outstanding = False

    # -- connecting and disconnecting ------------------------------------------------------

    async def __aenter__(self) -> Client:
        loop = self._loop = asyncio.get_running_loop()
        self._connack = loop.create_future()
        self._closed = loop.create_future()
        try:
            async with asyncio.timeout(self.timeout):
                await loop.create_connection(
                    lambda: self,
                    self.host,
                    self.port,
                    ssl=self.tls,
                    server_hostname=self.host if self.tls is not None else None,
                )
                connack = await self._connack
        except TimeoutError:
            self._abort()
            raise MqttError(f"no CONNACK from {self.where} within {self.timeout:g}s") from None
        except OSError as exc:
            self._abort()
            raise MqttError(f"cannot connect to {self.where}: {exc}") from None
        except BaseException:
            self._abort()
            raise
        if connack.code:
            self._abort()
            raise ConnectRefused(f"{self.where} refused the connection: {connack.refusal}")
        self.session_present = connack.session_present
        self.window = min(self.window, connack.receive_maximum)
        if connack.server_keepalive is not None:
            self.keepalive = connack.server_keepalive
        self._connected = True
        if self.keepalive:
            self._timer = loop.call_later(self.keepalive / 2, self._tick)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Send DISCONNECT (the session stays on the broker, 3.1.2.4) and close."""
        self._connected = False
        if self._timer is not None:
            self._timer.cancel()
        transport = self._transport
        if transport is None or self._closed is None:
            return
        if not transport.is_closing():
            self._flush()
            transport.write(DISCONNECT_PACKET)
            transport.close()
        try:
            await asyncio.wait({self._closed}, timeout=1.0)
        finally:
            if not self._closed.done():
                transport.abort()

    def _abort(self) -> None:
        self._connected = False
        if self._transport is not None:
            self._transport.abort()

    def _fail(self, error: MqttError) -> None:
        """End the connection because of ``error``, which everything waiting then raises."""
        if self._error is None:
            self._error = error
        self._abort()

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports have Transport's methods without being its subclasses.
        self._transport = cast(asyncio.Transport, transport)
        self._transport.write(self.connect_packet)

    def connection_lost(self, exc: Exception | None) -> None:
        self._connected = False
        if self._timer is not None:
            self._timer.cancel()
        if self._error is None:
            detail = f": {exc}" if exc is not None else ""
            self._error = MqttError(f"lost the connection to {self.where}{detail}")
        error = self._error
        if self._connack is not None and not self._connack.done():
            self._connack.set_exception(error)
        for future in (*self._inflight.values(), *(q[2] for q in self._queued)):
            if future is not None and not future.done():
                future.set_exception(error)
        for waiting in self._subscribing.values():
            if not waiting.done():
                waiting.set_exception(error)
        self._wake()
        if self._closed is not None and not self._closed.done():
            self._closed.set_result(None)

    def data_received(self, data: bytes) -> None:
        self._heard = True
        buffer = self._buffer
        chunk: bytes | bytearray = data
        if buffer:
            buffer += data
            chunk = buffer
        try:
            used = self._parse(chunk)
        except MqttError as exc:
            self._fail(exc)
            return
        if chunk is buffer:
            del buffer[:used]
        elif used < len(chunk):
            buffer += chunk[used:]
        if self._out and not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)
        if self._queue:
            self._wake()

    def _parse(self, data: bytes | bytearray) -> int:
        """Take every whole packet in ``data``; the length taken (the rest waits for more).

        PUBLISH, the packet that comes by the thousand, is decoded here, inline, rather
        than by a function in ``transport.packets``.
        """
        size, pos = len(data), 0
        queue, out, limit = self._queue, self._out, self.max_packet_bytes
        auto_ack, mqtt5 = not self.manual_acks, self.mqtt5
        while size - pos >= 2:
            first, byte = data[pos], data[pos + 1]
            # The Remaining Length (section 2.2.3): 7 bits a byte, at most four bytes.
            length, start = byte & 0x7F, pos + 2
            if byte & 0x80:
                shift = 7
                while True:
                    if start >= size:
                        return pos
                    byte = data[start]
                    start += 1
                    length |= (byte & 0x7F) << shift
                    if not byte & 0x80:
                        break
                    shift += 7
                    if shift > 21:
                        raise ProtocolError("a remaining length over four bytes (section 2.2.3)")
            if length > limit:
                raise ProtocolError(f"a {length}-byte packet is over this client's {limit}")
            end = start + length
            if end > size:
                return pos
            if first >> 4 != 3:
                self._packet(first >> 4, first & 0x0F, bytes(data[start:end]))
                pos = end
                continue
            # PUBLISH (section 3.3): topic name, packet identifier (QoS 1), 5.0 properties.
            if not self._accepted:
                raise ProtocolError("a PUBLISH before the CONNACK (MQTT-3.2.0-1)")
            qos = (first >> 1) & 3
            if length < 2:
                raise ProtocolError("a PUBLISH without a topic name (section 3.3.2.1)")
            topic_end = start + 2 + ((data[start] << 8) | data[start + 1])
            cursor = topic_end
            mid = 0
            if qos:
                if qos != 1:
                    # 3 is malformed (MQTT-3.3.1-4); 2 is more than this client ever asks
                    # for, and a broker grants no more than asked (MQTT-3.8.4-6).
                    raise ProtocolError(f"a PUBLISH at QoS {qos} (subscribed at 1 at most)")
                cursor += 2
                if cursor > end:
                    raise ProtocolError("a PUBLISH shorter than its topic name and identifier")
                mid = (data[cursor - 2] << 8) | data[cursor - 1]
                if not mid:
                    raise ProtocolError("a QoS 1 PUBLISH with packet identifier 0 (2.3.1)")
            elif cursor > end:
                raise ProtocolError("a PUBLISH shorter than its topic name")
            if mqtt5:
                skip, cursor = packets.read_varint(data, cursor, end)
                cursor += skip
                if cursor > end:
                    raise ProtocolError("a PUBLISH property list runs past the packet's end")
            try:
                topic = data[start + 2 : topic_end].decode()
            except UnicodeDecodeError:
                raise ProtocolError("a topic name that is not UTF-8 (MQTT-1.5.3-1)") from None
            if not topic:
                # 5.0 allows it only with a Topic Alias, which needs a Topic Alias Maximum
                # this client never sends (5.0 3.3.2.3.4).
                raise ProtocolError("a PUBLISH with an empty topic name (MQTT-4.7.3-1)")
            queue.append(Message(topic, bytes(data[cursor:end]), qos, mid, bool(first & 1)))
            if qos and auto_ack:
                out.append(_PUBACK(0x40, 2, mid))
            pos = end
        return pos

    def _packet(self, kind: int, flags: int, body: bytes) -> None:
        """Every packet type but PUBLISH."""
        if FIXED_FLAGS.get(kind, flags) != flags:
            raise ProtocolError(f"packet type {kind} with reserved flags {flags:04b} (2.2.2)")
        connack = self._connack
        if connack is not None and not connack.done():
            if kind != CONNACK:
                raise ProtocolError(f"packet type {kind} before the CONNACK (MQTT-3.2.0-1)")
            answer = packets.read_connack(body, mqtt5=self.mqtt5)
            # Messages queued for a persistent session may follow in the same read.
            self._accepted = answer.code == 0
            connack.set_result(answer)
        elif kind == PUBACK:
            self._acked(*packets.read_ack(body, mqtt5=self.mqtt5))
        elif kind == PINGRESP:
            if body:
                raise ProtocolError("a PINGRESP with a body (section 3.13)")
            self._ping_outstanding = False
        elif kind == SUBACK:
            packet_id, codes, said = packets.read_suback(body, mqtt5=self.mqtt5)
            waiting = self._subscribing.get(packet_id)
            if waiting is not None and not waiting.done():
                waiting.set_result((codes, said))
        elif kind == DISCONNECT and self.mqtt5:
            raise MqttError(f"{self.where} ended the connection: {packets.read_disconnect(body)}")
        elif kind == UNSUBACK:
            pass  # this client never unsubscribes: nothing waits for it
        else:
            # CONNECT, SUBSCRIBE, PINGREQ... go only to a broker; PUBREC, PUBREL, PUBCOMP are
            # QoS 2, which this client never uses; AUTH answers an authentication method
            # it never names (5.0 4.12).
            raise ProtocolError(f"packet type {kind}, which a broker never sends this client")

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- keep alive (section 3.1.2.10) -----------------------------------------------------

    def _tick(self) -> None:
        """Every half keep alive: a PINGREQ, unless one is unanswered; the connection is
        dead if one was and nothing at all came from the broker since the last tick."""
        if self._ping_outstanding and not self._heard:
            self._fail(MqttError(f"no answer from {self.where} for {self.keepalive}s"))
            return
        self._heard = False
        if not self._ping_outstanding:
            self._ping_outstanding = True
            self._write(PINGREQ_PACKET)
        self._timer = self._loop.call_later(self.keepalive / 2, self._tick)

    # -- sending ---------------------------------------------------------------------------

    def _write(self, packet: bytes) -> None:
        """Queue ``packet``; all those queued in one loop iteration go out in one write."""
        self._out.append(packet)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        out = self._out
        if not out:
            return
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.write(out[0] if len(out) == 1 else b"".join(out))
        out.clear()

    def _live(self) -> None:
        if not self._connected:
            raise self._error or MqttError(f"not connected to {self.where}")

    def _next_id(self) -> int:
        """An unused packet identifier (MQTT-2.3.1-2), 1 to 65,535."""
        packet_id, inflight, subscribing = self._last_id, self._inflight, self._subscribing
        while True:
            packet_id = packet_id + 1 if packet_id < 0xFFFF else 1
            if packet_id not in inflight and packet_id not in subscribing:
                self._last_id = packet_id
                return packet_id

    def _topic(self, topic: str) -> bytes:
        encoded = self._topics.get(topic)
        if encoded is None:
            if len(self._topics) >= 4096:
                self._topics.clear()
            encoded = self._topics[topic] = packets.utf8(topic)
        return encoded

    def _send_publish(self, topic: str, payload: bytes, done: asyncio.Future[None] | None) -> None:
        packet_id = self._next_id()
        self._inflight[packet_id] = done
        self._write(packets.publish(self._topic(topic), payload, 1, packet_id, mqtt5=self.mqtt5))

    def _acked(self, packet_id: int, code: int) -> None:
        done = self._inflight.pop(packet_id, _MISSING)
        if done is _MISSING:
            return  # not one of this connection's: a broker's duplicate, nothing waits
        if code >= 0x80:
            self.refused_publishes += 1
            if done is not None and not done.done():
                done.set_exception(MqttError(f"publish refused: {packets.reason(code)}"))
        elif done is not None and not done.done():
            done.set_result(None)
        queued = self._queued
        while queued and len(self._inflight) < self.window:
            self._send_publish(*queued.popleft())

    def publish_nowait(self, topic: str, payload: bytes, qos: int = 1) -> bool:
        """Send ``payload`` without awaiting its PUBACK; False if not connected. Over the
        in-flight window it waits in this client until PUBACKs make room."""
        if not self._connected:
            return False
        if not qos:
            self._write(packets.publish(self._topic(topic), payload, 0, 0, mqtt5=self.mqtt5))
        elif len(self._inflight) < self.window:
            self._send_publish(topic, payload, None)
        else:
            self._queued.append((topic, payload, None))
        return True

    async def publish(self, topic: str, payload: bytes | str, qos: int = 1) -> None:
        """Publish and, at QoS 1, await the PUBACK (MqttError if the broker refuses it)."""
        self._live()
        data = payload.encode() if isinstance(payload, str) else payload
        if not qos:
            self.publish_nowait(topic, data, 0)
            return
        done: asyncio.Future[None] = self._loop.create_future()
        if len(self._inflight) < self.window:
            self._send_publish(topic, data, done)
        else:
            self._queued.append((topic, data, done))
        try:
            async with asyncio.timeout(self.timeout):
                await done
        except TimeoutError:
            raise MqttError(f"no PUBACK from {self.where} within {self.timeout:g}s") from None

    async def subscribe(self, topic_filter: str, qos: int = 1) -> int:
        """Subscribe and await the SUBACK: the QoS granted; SubscribeRefused if refused."""
        self._live()
        packet_id = self._next_id()
        answer: asyncio.Future[tuple[list[int], str]] = self._loop.create_future()
        self._subscribing[packet_id] = answer
        self._write(packets.subscribe(packet_id, topic_filter, qos, mqtt5=self.mqtt5))
        try:
            async with asyncio.timeout(self.timeout):
                codes, said = await answer
        except TimeoutError:
            raise MqttError(f"no SUBACK for {topic_filter} within {self.timeout:g}s") from None
        finally:
            self._subscribing.pop(packet_id, None)
        if codes[0] >= 0x80:
            why = packets.reason(codes[0]) if self.mqtt5 else "return code 0x80"
            raise SubscribeRefused(
                f"{self.where} refused the subscription to {topic_filter}: {why}"
                + (f" ({said})" if said else "")
            )
        return codes[0]

    def ack(self, mid: int, qos: int) -> None:
        """PUBACK one message received with ``manual_acks`` (nothing at QoS 0, or once the
        connection is gone: its packet identifier meant nothing on another one)."""
        if qos == 1 and self._connected:
            self._write(_PUBACK(0x40, 2, mid))

    @property
    def unacknowledged(self) -> int:
        """QoS 1 publishes not acknowledged yet, those waiting for room included."""
        return len(self._inflight) + len(self._queued)
