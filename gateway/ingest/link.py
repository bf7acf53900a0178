"""The hub's broker link: one persistent MQTT session (QoS 1, fixed client id, shared
subscription on the records topic), over TLS when the settings ask for it, reconnected by
``transport.mqtt.stay_connected`` with full-jitter backoff.

While connected it hands every message to ``on_message`` and lets the receipt queue
publish.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from transport.backoff import Backoff
from transport.mqtt import (
    Client,
    ClientOptions,
    TlsError,
    publish_nowait,
    stay_connected,
    tls_context,
    unacknowledged,
)

from ..errors import ConfigError
from ..metrics import HubMetrics
from ..settings import HubSettings
from .receipts import ReceiptQueue

log = logging.getLogger("swiftchain.hub.mqtt")

OnMessage = Callable[[str, bytes], None]


def client_options(settings: HubSettings) -> ClientOptions:
    """The hub's MQTT client; ConfigError if its TLS files cannot be used."""
    s = settings
    tls = None
    if s.mqtt_tls is not None:
        try:
            tls = tls_context(s.mqtt_tls)
        except TlsError as exc:
            raise ConfigError(f"MQTT TLS: {exc}") from None
    return ClientOptions(
        endpoint=s.mqtt_endpoint,
        client_id=s.mqtt_client_id,
        tls=tls,
        username=s.mqtt_username,
        password=s.mqtt_password.get_secret_value() if s.mqtt_password else None,
        mqtt5=s.mqtt_protocol == "v5",
        session_expiry_s=s.mqtt_session_expiry_s,
        keepalive=s.mqtt_keepalive_s,
        timeout=10.0,
        max_inflight=s.mqtt_max_inflight,
    )


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
        self.options = client_options(settings)
        self.backoff = Backoff(settings.mqtt_reconnect_initial_s, settings.mqtt_reconnect_max_s)
        self.on_message: OnMessage | None = None
        self.connected = asyncio.Event()
        self._connection: Client | None = None

    def _publish(self, topic: str, payload: bytes) -> bool:
        """Hand a QoS 1 receipt to the broker link without awaiting its PUBACK: receipts
        are confirmed by the agent resending what it has no receipt for."""
        client = self._connection
        if client is None:
            return False
        return publish_nowait(client, topic, payload)

    async def run(self) -> None:
        """Connect, subscribe, consume; on any broker error wait and reconnect."""
        await stay_connected(self.options, self._session, backoff=self.backoff, on_lost=self._lost)

    async def _session(self, client: Client) -> None:
        s = self.settings
        await client.subscribe(s.records_subscription, qos=1)
        self._connection = client
        self.connected.set()
        self.metrics.mqtt_connects.inc()
        self.metrics.mqtt_connected.set(1)
        log.info("connected to %s as %s", s.mqtt_url, s.mqtt_client_id)
        self.receipts.attach(self._publish)
        try:
            await self._consume(client)
        finally:
            self._detach()

    def _lost(self, error: Exception, retry_in: float, attempt: int) -> None:
        self.metrics.mqtt_errors.inc()
        log.warning(
            "broker link to %s lost (attempt %d, retry in %.2fs): %s",
            self.settings.mqtt_url,
            attempt,
            retry_in,
            error,
        )

    async def _consume(self, client: Client) -> None:
        async for message in client.messages:
            on_message = self.on_message
            if on_message is None:
                # Draining: the message was acknowledged at QoS 1 but gets no receipt, so
                # its sender resends it; nothing is lost.
                continue
            on_message(message.topic, message.payload)

    def _detach(self) -> None:
        self._connection = None
        self.connected.clear()
        self.metrics.mqtt_connected.set(0)
        self.receipts.attach(None)

    def unsent(self) -> int:
        """Receipts queued or sent and not yet acknowledged by the broker."""
        client = self._connection
        return len(self.receipts) + (unacknowledged(client) if client is not None else 0)

    async def flush(self, seconds: float) -> None:
        """Wait (bounded) until queued receipts have been sent and acknowledged."""
        deadline = asyncio.get_running_loop().time() + seconds
        while asyncio.get_running_loop().time() < deadline:
            client = self._connection
            self.receipts.flush()
            if client is None:
                return
            if not len(self.receipts) and not unacknowledged(client):
                return
            await asyncio.sleep(0.02)
