"""The sensor source: local MQTT topics where gateway devices and simulators publish.

Each message is one input (``{"type", "payload"}``, a FHIR resource, or a bare payload of
its topic's type). A message is acknowledged to the broker (PUBACK) only once its record is
in the outbox, so with a persistent session a crash before that gets it delivered again.
A refused message gets ``{"error", "detail", "where", "topic"}`` back on
``{error_topic}/{its topic}``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass

import aiomqtt

from ledger.envelope import parse_json
from ledger.errors import InvalidEnvelope

from ..backoff import backoff_delay
from ..drafts import drafts_from_json
from ..errors import InvalidInput
from ..intake import Intake
from ..link import mqtt_client, stop_if_cancelled, watch_cancellation
from ..logs import log
from ..settings import BackoffSettings, BrokerSettings, SensorTopic

logger = logging.getLogger("edge.sources.sensors")


@dataclass(frozen=True)
class TopicTypes:
    """Topic filter -> type of bare messages, matched in order (MQTT wildcards + and #)."""

    topics: tuple[SensorTopic, ...]

    def type_for(self, topic: str) -> str | None:
        t = aiomqtt.Topic(topic)
        for entry in self.topics:
            if t.matches(entry.topic):
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
        self.backoff = backoff
        self.batch = batch
        self.received = 0
        self.refused = 0
        self.connected = asyncio.Event()

    async def run(self) -> None:
        attempt = 0
        while True:
            try:
                client = mqtt_client(self.broker, self.client_id, persistent=True)
                # Acknowledge only what is stored (aiomqtt has no switch for it; paho does).
                client._client.manual_ack_set(True)
                async with client:
                    for entry in self.types.topics:
                        await client.subscribe(entry.topic, qos=1)
                    attempt = 0
                    self.connected.set()
                    log(logger, logging.INFO, "sensors.connected", topics=len(self.types.topics))
                    async with asyncio.TaskGroup() as tg:
                        tg.create_task(self._consume(client))
                        await watch_cancellation()
            except* aiomqtt.MqttError as group:
                error: BaseException = group.exceptions[0]
            else:
                continue
            stop_if_cancelled()
            self.connected.clear()
            delay = backoff_delay(
                attempt, initial=self.backoff.initial, maximum=self.backoff.maximum
            )
            attempt += 1
            log(
                logger,
                logging.WARNING,
                "sensors.disconnected",
                error=str(error),
                retry_in=round(delay, 3),
            )
            await asyncio.sleep(delay)

    async def _consume(self, client: aiomqtt.Client) -> None:
        pending: list[asyncio.Task[None]] = []
        async with asyncio.TaskGroup() as tg:
            async for message in client.messages:
                if message.topic.value.startswith(self.error_topic + "/"):
                    continue
                pending.append(tg.create_task(self.handle(client, message)))
                pending = [t for t in pending if not t.done()]
                if len(pending) >= self.batch:
                    await asyncio.gather(*pending)
                    pending.clear()

    async def handle(self, client: aiomqtt.Client, message: aiomqtt.Message) -> None:
        self.received += 1
        topic = message.topic.value
        try:
            raw = message.payload if isinstance(message.payload, bytes) else b""
            try:
                value = parse_json(raw)
            except InvalidEnvelope as exc:
                raise InvalidInput(exc.reason, exc.detail, status=400) from None
            drafts = list(drafts_from_json(value, default_type=self.types.type_for(topic)))
            await self.intake.submit(drafts)
        except InvalidInput as exc:
            self.refused += 1
            error = {"topic": topic, "error": exc.reason, "detail": exc.detail, "where": exc.where}
            log(logger, logging.INFO, "sensors.refused", topic=topic, reason=exc.reason)
            await client.publish(f"{self.error_topic}/{topic}", json.dumps(error), qos=1)
        if message.qos > 0:
            client._client.ack(message.mid, message.qos)
