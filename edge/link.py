"""The agent's MQTT link to the hub: publishes outbox records with a bounded in-flight
window, republishes those that get no receipt in time, and feeds receipts to the settler.

Records are read from the outbox in seq order, a page at a time, so memory stays flat
however deep the outbox is. A record is *in flight* from its publish until a receipt
settles it; at most ``window`` are. On any broker trouble the connection is dropped and
made again after an exponential, jittered delay, and every pending record is published
again from the start (the hub answers ``duplicate`` for those it already has).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from dataclasses import dataclass

import aiomqtt
from paho.mqtt.client import MQTT_CLEAN_START_FIRST_ONLY, MQTT_ERR_SUCCESS

from .backoff import backoff_delay, republish_after
from .logs import log
from .outbox import AsyncOutbox, Outbox, Pending
from .settings import BackoffSettings, BrokerSettings, PublishSettings

logger = logging.getLogger("edge.link")

PAGE = 500
#: How often in-flight records are checked against their receipt deadline.
TIMER_INTERVAL = 0.5


def mqtt_client(
    broker: BrokerSettings, client_id: str, *, persistent: bool, max_inflight: int = 0
) -> aiomqtt.Client:
    """An aiomqtt client for ``broker``; ``persistent`` keeps the session (and the messages
    queued for it) on the broker while the client is away. ``max_inflight`` 0 leaves the
    bound to the agent's own window (paho rescans its whole queue on every PUBACK when it
    keeps one itself)."""
    protocol = (
        aiomqtt.ProtocolVersion.V5 if broker.protocol == "5" else aiomqtt.ProtocolVersion.V311
    )
    properties = None
    if protocol is aiomqtt.ProtocolVersion.V5 and persistent:
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = 7 * 24 * 3600
    return aiomqtt.Client(
        broker.host,
        broker.port,
        username=broker.username,
        password=broker.password.get_secret_value() if broker.password else None,
        identifier=client_id,
        protocol=protocol,
        clean_session=None if protocol is aiomqtt.ProtocolVersion.V5 else not persistent,
        # paho refuses a clean-start flag on 3.1.1 unless it is the default.
        clean_start=False if properties is not None else MQTT_CLEAN_START_FIRST_ONLY,
        properties=properties,
        keepalive=broker.keepalive,
        timeout=broker.connect_timeout,
        max_inflight_messages=max_inflight,
        tls_context=tls_context(broker),
        tls_insecure=broker.tls.insecure if broker.tls else None,
    )


def tls_context(broker: BrokerSettings) -> ssl.SSLContext | None:
    if not broker.uses_tls:
        return None
    tls = broker.tls
    context = ssl.create_default_context(cafile=str(tls.ca_file) if tls and tls.ca_file else None)
    if tls and tls.cert_file:
        context.load_cert_chain(str(tls.cert_file), str(tls.key_file) if tls.key_file else None)
    if tls and tls.insecure:
        context.check_hostname = False
    return context


@dataclass
class InFlight:
    seq: int
    attempts: int
    deadline: float


class Link:
    def __init__(
        self,
        *,
        broker: BrokerSettings,
        client_id: str,
        records_topic: str,
        receipts_topic: str,
        outbox: AsyncOutbox,
        stored: asyncio.Event,
        receipts: asyncio.Queue[bytes],
        publish: PublishSettings,
        backoff: BackoffSettings,
    ) -> None:
        self.broker = broker
        self.client_id = client_id
        self.records_topic = records_topic
        self.receipts_topic = receipts_topic
        self.outbox = outbox
        self.stored = stored
        self.receipts = receipts
        self.settings = publish
        self.backoff = backoff
        self.inflight: dict[str, InFlight] = {}
        self._room = asyncio.Event()
        self.connected = asyncio.Event()
        self.published_total = 0
        self.republished_total = 0
        self.connects = 0

    def settled(self, record_ids: list[str]) -> None:
        """The settler calls this for records that left the outbox (delivered or dead)."""
        for rid in record_ids:
            self.inflight.pop(rid, None)
        self._room.set()

    async def run(self) -> None:
        """Stay connected until cancelled."""
        attempt = 0
        while True:
            error: BaseException | None = None
            try:
                client = mqtt_client(self.broker, self.client_id, persistent=True)
                async with client:
                    client.pending_calls_threshold = self.settings.window + 100
                    await client.subscribe(self.receipts_topic, qos=1)
                    self.connects += 1
                    self.connected.set()
                    attempt = 0
                    log(
                        logger,
                        logging.INFO,
                        "mqtt.connected",
                        broker=self.broker.url,
                        client=self.client_id,
                    )
                    async with asyncio.TaskGroup() as tg:
                        tg.create_task(self._receive(client))
                        tg.create_task(self._publish(client))
                        tg.create_task(self._republish(client))
                        await watch_cancellation()
            except* aiomqtt.MqttError as group:
                error = group.exceptions[0]
            stop_if_cancelled()
            self.connected.clear()
            self.inflight.clear()
            delay = backoff_delay(
                attempt,
                initial=self.backoff.initial,
                maximum=self.backoff.maximum,
                multiplier=self.backoff.multiplier,
            )
            attempt += 1
            log(
                logger,
                logging.WARNING,
                "mqtt.disconnected",
                error=str(error),
                retry_in=round(delay, 3),
                attempt=attempt,
            )
            await asyncio.sleep(delay)

    async def _receive(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            if isinstance(message.payload, bytes):
                await self.receipts.put(message.payload)

    def _send(self, client: aiomqtt.Client, record: Pending) -> None:
        """Hand one record to the MQTT client without awaiting its PUBACK.

        The receipt, not the PUBACK, is what settles a record, so waiting for each PUBACK
        would only cost a task, an event and a timer per record (aiomqtt's ``publish``
        does that, and checks its pending calls in O(n)): this goes to paho directly. A
        broken connection shows up in the receiving loop, which then reconnects.
        """
        info = client._client.publish(self.records_topic, record.wire, qos=1)
        if info.rc != MQTT_ERR_SUCCESS:
            raise aiomqtt.MqttCodeError(info.rc, "could not publish a record")

    async def _publish(self, client: aiomqtt.Client) -> None:
        """Publish pending records in seq order while the window has room."""
        cursor = 0
        while True:
            room = self.settings.window - len(self.inflight)
            if room <= 0:
                self._room.clear()
                await self._room.wait()
                continue
            self.stored.clear()
            page = await self.outbox.call(Outbox.pending_after, cursor, min(room, PAGE))
            if not page:
                # Nothing new to publish: wait for a record to be stored. Room freed by a
                # receipt is no reason to look again, and left set it made this loop spin
                # on the outbox for as long as the agent was idle.
                self._room.clear()
                await _wait_any(self.stored, self._room, within=1.0)
                continue
            now = time.monotonic()
            first = self.settings.republish_after
            for record in page:
                cursor = record.seq
                if record.id in self.inflight:
                    continue
                self.inflight[record.id] = InFlight(record.seq, 1, now + first)
                self._send(client, record)
            self.published_total += len(page)

    async def _republish(self, client: aiomqtt.Client) -> None:
        """Publish again the in-flight records whose receipt is overdue."""
        while True:
            await asyncio.sleep(TIMER_INTERVAL)
            now = time.monotonic()
            overdue = {rid: f for rid, f in self.inflight.items() if f.deadline <= now}
            if not overdue:
                continue
            records = await self.outbox.call(
                Outbox.pending_by_seq, [f.seq for f in overdue.values()]
            )
            for record in records:
                flight = self.inflight.get(record.id)
                if flight is None:
                    continue
                flight.attempts += 1
                flight.deadline = now + republish_after(
                    flight.attempts,
                    first=self.settings.republish_after,
                    maximum=self.settings.republish_max,
                )
                self._send(client, record)
            # Overdue records no longer in the outbox were settled meanwhile.
            present = {r.id for r in records}
            for rid in overdue.keys() - present:
                self.inflight.pop(rid, None)
            self.republished_total += len(records)
            log(logger, logging.INFO, "records.republished", records=len(records))


def stop_if_cancelled() -> None:
    """Re-raise a cancellation that an MQTT error replaced.

    When the agent is stopped mid-connection, aiomqtt's disconnect on the way out can fail
    with an MqttError that takes the CancelledError's place; without this the reconnect
    loop would carry on and the agent would never stop.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def watch_cancellation(interval: float = 0.5) -> None:
    """Wait until cancelled, even if the cancellation itself got lost on the way.

    On Python 3.11 ``asyncio.wait_for`` (used by aiomqtt for every call) swallows a
    cancellation that arrives just as its inner future completes (CPython gh-86296), which
    leaves the task marked as cancelling but running on, and a TaskGroup waiting forever for
    children nobody cancels. Checking the mark now and then turns that back into a stop.
    """
    while True:
        await asyncio.sleep(interval)
        stop_if_cancelled()


async def _wait_any(*events: asyncio.Event, within: float) -> None:
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, timeout=within, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()
