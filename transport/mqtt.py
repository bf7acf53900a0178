"""The MQTT link code the hub and the agent share, over this package's own client
(``transport.client``; why it is not aiomqtt/paho or gmqtt: ``bench/mqtt_clients.py``).

- :func:`new_client` from :class:`ClientOptions`; :func:`stay_connected`, the reconnect
  loop: full-jitter backoff between attempts and the Python 3.11 lost-cancellation guard,
  so a stopped hub or agent really stops;
- TLS from files (:func:`tls_context`: a CA, a client certificate) and ``mqtts://`` URLs
  (:class:`Endpoint`);
- :func:`publish_nowait`: a QoS 1 message sent without awaiting its PUBACK;
- :class:`OrderedAcks`: manual PUBACKs, each sent once its message is safe, and strictly
  in the order the PUBLISH packets arrived (MQTT-4.6.0-2);
- :func:`topic_matches`: a topic name against a filter's wildcards.

The hub and the agent import MQTT from here only.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .backoff import Backoff
from .client import MAX_PACKET_BYTES, Client, ConnectRefused, Message, SubscribeRefused
from .packets import MqttError, ProtocolError

__all__ = [
    "Client",
    "ClientOptions",
    "ConnectRefused",
    "DropConnection",
    "Endpoint",
    "Message",
    "MqttError",
    "OrderedAcks",
    "ProtocolError",
    "SubscribeRefused",
    "TlsFiles",
    "broker_url",
    "new_client",
    "ordered_acks",
    "publish_nowait",
    "stay_connected",
    "tls_context",
    "topic_matches",
    "unacknowledged",
]

#: URL scheme -> (default port, TLS). ``tcp://`` is paho's spelling of ``mqtt://``.
SCHEMES = {"mqtt": (1883, False), "tcp": (1883, False), "mqtts": (8883, True)}

#: How often a connected task checks that it (or its session) was not cancelled on the quiet.
GUARD_INTERVAL = 0.5


class BrokerUrlError(ValueError):
    """A broker URL that is not ``mqtt://host[:port]`` or ``mqtts://host[:port]``."""


class TlsError(Exception):
    """The TLS files (CA, client certificate, key) cannot be used."""


class DropConnection(Exception):
    """Raised by a session to end its connection and connect again after the backoff.

    With a persistent session the broker then delivers again every QoS 1 message it has
    not had a PUBACK for (MQTT 3.1.1 section 4.4), which is how a message that could not be
    stored gets a second chance without being lost.
    """


# -- where and how to connect -------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    tls: bool
    """The URL asks for TLS (``mqtts://``)."""

    @classmethod
    def parse(cls, url: str) -> Endpoint:
        parts = urlsplit(url)
        scheme = SCHEMES.get(parts.scheme)
        try:
            port = parts.port
        except ValueError:
            scheme = None
        if scheme is None or not parts.hostname:
            raise BrokerUrlError("a broker URL reads mqtt://host:port or mqtts://host:port")
        default_port, tls = scheme
        return cls(parts.hostname, port or default_port, tls)


def broker_url(value: str) -> str:
    """``value`` if it is a broker URL; a BrokerUrlError (a ValueError, which settings models
    report with the field's name) saying what one reads like otherwise."""
    Endpoint.parse(value)
    return value


@dataclass(frozen=True)
class TlsFiles:
    ca_file: Path | None = None
    """PEM CA certificates the broker's certificate must chain to; the system's without."""
    cert_file: Path | None = None
    """The client's own PEM certificate, for brokers that require one."""
    key_file: Path | None = None
    """The certificate's private key, unless it is in ``cert_file``."""
    insecure: bool = False
    """Skip the check that the certificate names the broker's host (never in production)."""


def tls_context(files: TlsFiles) -> ssl.SSLContext:
    """A client context that verifies the broker, and presents a certificate if given.

    Built once per link, not per connection: reading the files blocks.
    """
    if files.key_file is not None and files.cert_file is None:
        raise TlsError("a TLS key_file needs its cert_file")
    cafile = str(files.ca_file) if files.ca_file is not None else None
    try:
        context = ssl.create_default_context(cafile=cafile)
    except OSError as exc:  # ssl.SSLError is an OSError
        raise TlsError(f"cannot use the CA file {files.ca_file}: {_reason(exc)}") from None
    if files.cert_file is not None:
        keyfile = str(files.key_file) if files.key_file is not None else None
        try:
            context.load_cert_chain(str(files.cert_file), keyfile)
        except OSError as exc:
            what = f"{files.cert_file}" + (f" with key {files.key_file}" if keyfile else "")
            raise TlsError(f"cannot use the client certificate {what}: {_reason(exc)}") from None
    if files.insecure:
        context.check_hostname = False
    return context


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


@dataclass(frozen=True)
class ClientOptions:
    """One client's connection. Every client here keeps its session on the broker (3.1.1:
    clean session off, section 3.1.2.4; 5: clean start off with a session expiry, sections
    3.1.2.4 and 3.1.2.11.2), so QoS 1 messages for it wait while it is away."""

    endpoint: Endpoint
    client_id: str
    tls: ssl.SSLContext | None = None
    username: str | None = None
    password: str | None = None
    mqtt5: bool = False
    session_expiry_s: int = 7 * 24 * 3600
    keepalive: int = 30
    timeout: float = 10.0
    max_inflight: int = 0
    """QoS 1 publishes sent unacknowledged at once (more wait in the client); 0 for as many
    as the broker takes (5.0: its Receive Maximum)."""
    manual_acks: bool = False
    """PUBACK incoming messages only through :func:`ordered_acks`."""
    max_packet_bytes: int = MAX_PACKET_BYTES
    """A larger packet from the broker ends the connection (5.0: the broker is told, and
    drops such messages instead, 5.0 3.1.2.11.4)."""


def new_client(options: ClientOptions) -> Client:
    """An unconnected client (connect with ``async with``)."""
    return Client(
        options.endpoint.host,
        options.endpoint.port,
        options.client_id,
        tls=options.tls,
        username=options.username,
        password=options.password,
        mqtt5=options.mqtt5,
        session_expiry_s=options.session_expiry_s,
        keepalive=options.keepalive,
        timeout=options.timeout,
        max_inflight=options.max_inflight,
        manual_acks=options.manual_acks,
        max_packet_bytes=options.max_packet_bytes,
    )


def topic_matches(topic: str, topic_filter: str) -> bool:
    """Whether ``topic`` matches ``topic_filter`` (section 4.7: ``+`` one level, ``#`` the
    rest, the parent level included; a wildcard first level never matches a ``$`` topic)."""
    if topic.startswith("$") and topic_filter[:1] in ("+", "#"):
        return False  # MQTT-4.7.2-1
    levels = topic.split("/")
    wanted = topic_filter.split("/")
    for index, level in enumerate(wanted):
        if level == "#":
            return True
        if index >= len(levels) or (level != "+" and level != levels[index]):
            return False
    return len(levels) == len(wanted)


# -- publishing and acknowledging ---------------------------------------------------------


def publish_nowait(client: Client, topic: str, payload: bytes, qos: int = 1) -> bool:
    """Send one message without awaiting its PUBACK; False if not connected.

    Where an application-level receipt, not the PUBACK, settles a message, awaiting each
    PUBACK only slows the sender. A broken connection shows up in the message loop, which
    then reconnects.
    """
    return client.publish_nowait(topic, payload, qos)


def unacknowledged(client: Client) -> int:
    """QoS 1 messages sent (or waiting for room) that the broker has not acknowledged yet."""
    return client.unacknowledged


@dataclass(eq=False)
class Ticket:
    """One received message's place in the acknowledgement order."""

    mid: int
    qos: int
    done: bool = False


class OrderedAcks:
    """PUBACKs sent in the order the messages arrived, each once its message is done with.

    MQTT 3.1.1 section 4.6 (MQTT-4.6.0-2) has a client send PUBACKs "in the order in which
    the corresponding PUBLISH Packets were received", while the messages themselves may be
    stored in any order. Call :meth:`received` as each message arrives and :meth:`done`
    once it is stored: every PUBACK from the oldest outstanding one up to the first message
    not yet done is then sent. A message never done holds back every later PUBACK; after a
    reconnect the broker delivers all of them again.

    One per connection: packet identifiers belong to the connection that carried them.
    """

    def __init__(self, send: Callable[[int, int], object]) -> None:
        self._send = send
        self._waiting: deque[Ticket] = deque()

    def received(self, mid: int, qos: int) -> Ticket:
        ticket = Ticket(mid, qos)
        if qos > 0:  # QoS 0 has no acknowledgement
            self._waiting.append(ticket)
        else:
            ticket.done = True
        return ticket

    def done(self, ticket: Ticket) -> None:
        ticket.done = True
        waiting = self._waiting
        while waiting and waiting[0].done:
            first = waiting.popleft()
            self._send(first.mid, first.qos)

    def __len__(self) -> int:
        """Messages received and not acknowledged yet."""
        return len(self._waiting)


def ordered_acks(client: Client) -> OrderedAcks:
    """Ordered PUBACKs for a client made with ``manual_acks=True``."""
    return OrderedAcks(client.ack)


# -- staying connected --------------------------------------------------------------------

Session = Callable[[Client], Coroutine[Any, Any, None]]
OnLost = Callable[[Exception, float, int], None]
"""Told (error, seconds until the next attempt, attempts since the last connection)."""


async def stay_connected(
    options: ClientOptions,
    session: Session,
    *,
    backoff: Backoff,
    on_lost: OnLost,
    guard_interval: float = GUARD_INTERVAL,
) -> None:
    """Connect, run ``session(client)`` while connected, and after broker trouble (an
    ``MqttError``) or a :class:`DropConnection` wait a full-jitter delay and connect again.

    Runs until cancelled, or until ``session`` returns. A connection that was made starts
    the delays again from ``backoff.initial``, unless the session itself dropped it: then
    they keep growing, so a message that cannot be stored is not retried in a hot loop.
    """
    attempt = 0
    while True:
        connected = False
        error: Exception
        try:
            async with new_client(options) as client:
                connected = True
                await _guarded(asyncio.create_task(session(client)), guard_interval)
            return
        except* (MqttError, DropConnection) as group:
            error = _first_leaf(group)
        stop_if_cancelled()
        if connected and not isinstance(error, DropConnection):
            attempt = 0
        delay = backoff.delay(attempt)
        attempt += 1
        on_lost(error, delay, attempt)
        await asyncio.sleep(delay)


def _first_leaf(group: BaseExceptionGroup[Exception]) -> Exception:
    """The first exception in a (possibly nested) group: TaskGroups nest their errors."""
    first: BaseException = group
    while isinstance(first, BaseExceptionGroup):
        first = first.exceptions[0]
    assert isinstance(first, Exception)
    return first


#: Cancellations sent to a session task that lost the previous ones, before giving up.
CANCEL_TRIES = 20


async def _guarded(work: asyncio.Task[None], interval: float) -> None:
    """Await ``work`` (and raise what it raised) without losing a cancellation on the way.

    This task checks now and then that it was not cancelled on the quiet, and when it
    stops, it cancels ``work`` until that really stops: the session may lose a cancellation
    too (see :func:`stop_if_cancelled`), and a TaskGroup would wait for it forever.
    """
    try:
        while not work.done():
            await asyncio.wait({work}, timeout=interval)
            stop_if_cancelled()
    finally:
        for _ in range(CANCEL_TRIES):
            if work.done():
                break
            work.cancel()
            await asyncio.wait({work}, timeout=interval)
        if work.done() and not work.cancelled():
            work.exception()  # retrieved: raised below, or outdone by our cancellation
    work.result()


def stop_if_cancelled() -> None:
    """Raise CancelledError if this task was cancelled, even if the cancellation got lost.

    On Python 3.11 ``asyncio.wait_for`` swallows a cancellation that arrives just as its
    inner future completes (CPython gh-86296), and a session's own code may catch one.
    Either way the task is still marked as cancelling; without this check a reconnect
    loop would carry on and its owner would never stop.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
