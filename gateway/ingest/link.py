"""The hub's broker link: one persistent MQTT session (QoS 1, fixed client id, shared
subscription on the records topic), reconnected with exponential backoff and jitter.

aiomqtt < 3 has no reconnect of its own; ``run`` is the reconnect loop. While connected it
hands every message to ``on_message`` and lets the receipt queue publish.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable

import aiomqtt
import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ..metrics import HubMetrics
from ..settings import HubSettings
from .receipts import ReceiptQueue

log = logging.getLogger("swiftchain.hub.mqtt")

OnMessage = Callable[[str, bytes], None]


def backoff_delays(initial: float, maximum: float) -> Callable[[], float]:
    """Exponential backoff with full jitter: each call returns the next pause."""
    attempt = 0

    def next_delay() -> float:
        nonlocal attempt
        ceiling = min(maximum, initial * 2**attempt)
        attempt = min(attempt + 1, 32)
        return random.uniform(ceiling / 2, ceiling)

    return next_delay


class MqttLink:
    def __init__(
        self,
        settings: HubSettings,
        receipts: ReceiptQueue,
        metrics: HubMetrics,
    ) -> None:
        self.settings = settings
        self.receipts = receipts
        self.metrics = metrics
        self.on_message: OnMessage | None = None
        self.connected = asyncio.Event()
        self._client: aiomqtt.Client | None = None

    def _make_client(self) -> aiomqtt.Client:
        s = self.settings
        common = {
            "hostname": s.mqtt_host,
            "port": s.mqtt_port,
            "identifier": s.mqtt_client_id,
            "username": s.mqtt_username,
            "password": s.mqtt_password.get_secret_value() if s.mqtt_password else None,
            "keepalive": s.mqtt_keepalive_s,
            "max_inflight_messages": s.mqtt_max_inflight,
            "timeout": 10.0,
        }
        if s.mqtt_protocol == "v5":
            # A v5 session ends at disconnect unless it has an expiry interval.
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = s.mqtt_session_expiry_s
            return aiomqtt.Client(
                **common,  # type: ignore[arg-type]
                protocol=aiomqtt.ProtocolVersion.V5,
                clean_start=False,
                properties=props,
            )
        return aiomqtt.Client(
            **common,  # type: ignore[arg-type]
            protocol=aiomqtt.ProtocolVersion.V311,
            clean_session=False,
        )

    def _publish(self, topic: str, payload: bytes) -> bool:
        """Hand a QoS 1 message to paho without awaiting its PUBACK.

        aiomqtt's ``publish`` awaits each PUBACK (an Event and a timeout task per message);
        receipts are fire-and-confirm-by-retry, so the paho client's own queue is enough.
        """
        client = self._client
        if client is None:
            return False
        info = client._client.publish(topic, payload, qos=1)
        return bool(info.rc == paho.MQTT_ERR_SUCCESS)

    async def run(self) -> None:
        """Connect, subscribe, consume; on any broker error wait and reconnect."""
        s = self.settings
        delay = backoff_delays(s.mqtt_reconnect_initial_s, s.mqtt_reconnect_max_s)
        while True:
            try:
                async with self._make_client() as client:
                    await client.subscribe(s.records_subscription, qos=1)
                    self._client = client
                    self.connected.set()
                    self.metrics.mqtt_connects.inc()
                    self.metrics.mqtt_connected.set(1)
                    log.info("connected to %s as %s", s.mqtt_url, s.mqtt_client_id)
                    delay = backoff_delays(s.mqtt_reconnect_initial_s, s.mqtt_reconnect_max_s)
                    self.receipts.attach(self._publish)
                    await self._consume(client)
            except aiomqtt.MqttError as exc:
                self.metrics.mqtt_errors.inc()
                log.warning("broker link to %s lost: %s", s.mqtt_url, exc)
            finally:
                self._detach()
            await asyncio.sleep(delay())

    async def _consume(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            on_message = self.on_message
            if on_message is None:
                # Draining: the message was acknowledged at QoS 1 but gets no receipt, so
                # its sender resends it; nothing is lost.
                continue
            payload = message.payload
            if isinstance(payload, bytes | bytearray):
                raw = bytes(payload)
            elif isinstance(payload, str):
                raw = payload.encode()
            else:
                raw = b"" if payload is None else str(payload).encode()
            on_message(message.topic.value, raw)

    def _detach(self) -> None:
        self._client = None
        self.connected.clear()
        self.metrics.mqtt_connected.set(0)
        self.receipts.attach(None)

    def unsent(self) -> int:
        """Receipts queued or handed to paho and not yet acknowledged by the broker."""
        client = self._client
        return len(self.receipts) + (len(client._client._out_messages) if client else 0)

    async def flush(self, seconds: float) -> None:
        """Wait (bounded) until queued receipts have been handed to paho and written."""
        deadline = asyncio.get_running_loop().time() + seconds
        while asyncio.get_running_loop().time() < deadline:
            client = self._client
            self.receipts.flush()
            if client is None:
                return
            if not len(self.receipts) and not client._client._out_messages:
                return
            await asyncio.sleep(0.02)
