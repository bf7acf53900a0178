"""The sensor source: local MQTT topics where gateway devices and simulators publish.

Each message is one input (``{"type", "payload"}``, a FHIR resource, or a bare payload of
its topic's type). A message is acknowledged to the broker (PUBACK) only once its record is
in the outbox, and PUBACKs go out in the order the messages arrived (MQTT-4.6.0-2), however
the stores finish. With a persistent session, a message not yet stored when the agent
crashes, or one whose store failed (the source then drops the connection), is delivered
again. A refused message gets ``{"error", "detail", "where", "topic"}`` back on
``{error_topic}/{its topic}``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass

from ledger.envelope import parse_json
from ledger.errors import InvalidEnvelope
from transport.mqtt import (
    Client,
    DropConnection,
    Message,
    OrderedAcks,
    Ticket,
    ordered_acks,
    stay_connected,
    topic_matches,
)

from ..drafts import drafts_from_json
from ..errors import InvalidInput, OutboxError
from ..intake import Intake
from ..link import client_options, reconnect_backoff
from ..logs import log
from ..settings import BackoffSettings, BrokerSettings, SensorTopic

logger = logging.getLogger("edge.sources.sensors")


@dataclass(frozen=True)
class TopicTypes:
    """Topic filter -> type of bare messages, matched in order (MQTT wildcards + and #)."""

    topics: tuple[SensorTopic, ...]

    def type_for(self, topic: str) -> str | None:
        for entry in self.topics:
            if topic_matches(topic, entry.topic):
                return entry.type
        return None


class SensorSource:
    def __init__(
        self,
        intake: Intake,
        *,
        broker: BrokerSettings,
        client_id: str,
        topics: list[SensorTopic],
        error_topic: str,
        backoff: BackoffSettings,
        batch: int = 500,
    ) -> None:
        self.intake = intake
        self.broker = broker
        self.client_id = client_id
        self.types = TopicTypes(tuple(topics))
        self.error_topic = error_topic.rstrip("/")
        self.options = client_options(broker, client_id, manual_acks=True)
        self.backoff = reconnect_backoff(backoff)
        self.batch = batch
        self.received = 0
        self.refused = 0
        #: Messages whose records could not be stored (each dropped the connection).
        self.unstored = 0
        self.connects = 0
        self.connected = asyncio.Event()

    async def run(self) -> None:
        """Stay connected until cancelled."""
        await stay_connected(self.options, self._session, backoff=self.backoff, on_lost=self._lost)

    async def _session(self, client: Client) -> None:
        for entry in self.types.topics:
            await client.subscribe(entry.topic, qos=1)
        self.connects += 1
        self.connected.set()
        log(logger, logging.INFO, "sensors.connected", topics=len(self.types.topics))
        try:
            await self._consume(client, ordered_acks(client))
        finally:
            self.connected.clear()

    def _lost(self, error: Exception, retry_in: float, attempt: int) -> None:
        log(
            logger,
            logging.WARNING,
            "sensors.disconnected",
            error=str(error),
            retry_in=round(retry_in, 3),
            attempt=attempt,
        )

    async def _consume(self, client: Client, acks: OrderedAcks) -> None:
        pending: list[asyncio.Task[None]] = []
        async with asyncio.TaskGroup() as tg:
            async for message in client.messages:
                # Its place in the PUBACK order is taken on arrival, before any await.
                ticket = acks.received(message.mid, message.qos)
                if message.topic.startswith(self.error_topic + "/"):
                    acks.done(ticket)  # our own answer to a sender: nothing to store
                    continue
                pending.append(tg.create_task(self._handle_then_ack(client, message, acks, ticket)))
                pending = [t for t in pending if not t.done()]
                if len(pending) >= self.batch:
                    await asyncio.gather(*pending)
                    pending.clear()

    async def _handle_then_ack(
        self, client: Client, message: Message, acks: OrderedAcks, ticket: Ticket
    ) -> None:
        await self.handle(client, message)
        acks.done(ticket)

    async def handle(self, client: Client, message: Message) -> None:
        """Store one message's records, or answer its sender with the error.

        Raises DropConnection if the outbox could not store them: the message is then not
        acknowledged (nor anything after it), and the broker delivers it again once the
        source has reconnected.
        """
        self.received += 1
        topic = message.topic
        try:
            try:
                value = parse_json(message.payload)
            except InvalidEnvelope as exc:
                raise InvalidInput(exc.reason, exc.detail, status=400) from None
            drafts = list(drafts_from_json(value, default_type=self.types.type_for(topic)))
            await self.intake.submit(drafts)
        except InvalidInput as exc:
            self.refused += 1
            error = {"topic": topic, "error": exc.reason, "detail": exc.detail, "where": exc.where}
            log(logger, logging.INFO, "sensors.refused", topic=topic, reason=exc.reason)
            await client.publish(f"{self.error_topic}/{topic}", json.dumps(error), qos=1)
        except OutboxError as exc:
            self.unstored += 1
            log(logger, logging.WARNING, "sensors.store_failed", topic=topic, error=str(exc))
            raise DropConnection(f"a message on {topic} could not be stored: {exc}") from None
