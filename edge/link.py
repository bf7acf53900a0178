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
import time
from dataclasses import dataclass

from transport.backoff import Backoff, backoff_ceiling
from transport.mqtt import (
    Client,
    ClientOptions,
    MqttError,
    TlsError,
    publish_nowait,
    stay_connected,
    tls_context,
)

from .errors import ConfigError
from .logs import log
from .outbox import AsyncOutbox, Outbox, Pending
from .settings import BackoffSettings, BrokerSettings, PublishSettings

logger = logging.getLogger("edge.link")

PAGE = 500
#: How often in-flight records are checked against their receipt deadline.
TIMER_INTERVAL = 0.5


def client_options(
    broker: BrokerSettings, client_id: str, *, manual_acks: bool = False
) -> ClientOptions:
    """The MQTT client for ``broker``, keeping its session (and the messages queued for it)
    on the broker while the agent is away; ConfigError if its TLS files cannot be used."""
    tls = None
    files = broker.tls_files
    if files is not None:
        try:
            tls = tls_context(files)
        except TlsError as exc:
            raise ConfigError(f"broker TLS: {exc}") from None
    return ClientOptions(
        endpoint=broker.endpoint,
        client_id=client_id,
        tls=tls,
        username=broker.username,
        password=broker.password.get_secret_value() if broker.password else None,
        mqtt5=broker.protocol == "5",
        keepalive=broker.keepalive,
        timeout=broker.connect_timeout,
        manual_acks=manual_acks,
    )


def reconnect_backoff(settings: BackoffSettings) -> Backoff:
    return Backoff(settings.initial, settings.maximum, settings.multiplier)


def republish_after(attempts: int, *, first: float, maximum: float) -> float:
    """How long to wait for a receipt after the ``attempts``-th publish of a record:
    ``first``, then doubling, up to ``maximum`` (no jitter: the window is already spread)."""
    return backoff_ceiling(max(attempts - 1, 0), initial=first, maximum=maximum, multiplier=2.0)


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
        self.options = client_options(broker, client_id)
        self.backoff = reconnect_backoff(backoff)
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
        await stay_connected(self.options, self._session, backoff=self.backoff, on_lost=self._lost)

    async def _session(self, client: Client) -> None:
        await client.subscribe(self.receipts_topic, qos=1)
        self.connects += 1
        self.connected.set()
        log(logger, logging.INFO, "mqtt.connected", broker=self.broker.url, client=self.client_id)
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._receive(client))
                tg.create_task(self._publish(client))
                tg.create_task(self._republish(client))
        finally:
            self.connected.clear()
            # Published again from the start on the next connection.
            self.inflight.clear()

    def _lost(self, error: Exception, retry_in: float, attempt: int) -> None:
        log(
            logger,
            logging.WARNING,
            "mqtt.disconnected",
            error=str(error),
            retry_in=round(retry_in, 3),
            attempt=attempt,
        )

    async def _receive(self, client: Client) -> None:
        async for message in client.messages:
            self.receipts.put_nowait(message.payload)  # unbounded; no await per receipt

    def _send(self, client: Client, record: Pending) -> None:
        """Hand one record to the MQTT client without awaiting its PUBACK: the receipt,
        not the PUBACK, is what settles a record."""
        if not publish_nowait(client, self.records_topic, record.wire):
            raise MqttError("could not hand a record to the MQTT client")

    async def _publish(self, client: Client) -> None:
        """Publish pending records in seq order while the window has room."""
        cursor = 0
        # A page costs a read on the outbox's thread whatever its size: with room for less
        # than a quarter of the window, wait a moment for receipts to make more.
        least = min(PAGE, max(self.settings.window // 4, 1))
        patience: float | None = None
        while True:
            room = self.settings.window - len(self.inflight)
            if room <= 0:
                self._room.clear()
                await self._room.wait()
                continue
            if room < least:
                now = time.monotonic()
                patience = now + TIMER_INTERVAL if patience is None else patience
                if now < patience:
                    self._room.clear()
                    await _wait_any(self._room, within=patience - now)
                    continue
            patience = None
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

    async def _republish(self, client: Client) -> None:
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


async def _wait_any(*events: asyncio.Event, within: float) -> None:
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, timeout=within, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()
