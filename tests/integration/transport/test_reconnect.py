"""The shared reconnect loop on a real Mosquitto: it comes back after a broker restart,
backs off further when its session drops the connection, stops when cancelled even if the
session loses the cancellation, and publishes without awaiting PUBACKs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from tests.support.broker import Mosquitto
from tests.support.edge import wait_until
from transport.backoff import Backoff
from transport.mqtt import (
    Client,
    ClientOptions,
    DropConnection,
    Endpoint,
    MqttError,
    Session,
    publish_nowait,
    stay_connected,
    unacknowledged,
)

QUICK = Backoff(initial=0.05, maximum=0.4)


class Losses:
    def __init__(self) -> None:
        self.attempts: list[int] = []
        self.errors: list[Exception] = []

    def __call__(self, error: Exception, retry_in: float, attempt: int) -> None:
        assert 0 <= retry_in <= QUICK.maximum
        self.attempts.append(attempt)
        self.errors.append(error)


@asynccontextmanager
async def linked(broker: Mosquitto, session: Session, losses: Losses) -> AsyncIterator[None]:
    options = ClientOptions(Endpoint.parse(broker.url), "reconnecting")
    runner = asyncio.create_task(
        stay_connected(options, session, backoff=QUICK, on_lost=losses, guard_interval=0.05)
    )
    try:
        yield
    finally:
        runner.cancel()
        # Bounded, and without cancelling it again: a loop that does not stop fails here.
        await asyncio.wait({runner}, timeout=10)
        assert runner.done(), "the reconnect loop did not stop when cancelled"
        with pytest.raises(asyncio.CancelledError):
            await runner


async def test_the_loop_comes_back_after_a_broker_restart(broker: Mosquitto) -> None:
    sessions: list[Client] = []
    losses = Losses()

    async def session(client: Client) -> None:
        sessions.append(client)
        async for _ in client.messages:
            pass

    async with linked(broker, session, losses):
        await wait_until(lambda: len(sessions) == 1, 10)
        broker.stop()
        await wait_until(lambda: len(losses.attempts) >= 2, 10)  # lost, then refused
        broker.start()
        await wait_until(lambda: len(sessions) == 2, 10)
        broker.stop()
        await wait_until(lambda: len(losses.attempts) >= 4, 10)
        broker.start()
    assert all(isinstance(e, MqttError) for e in losses.errors)
    # A connection that was made starts the delays again from the first.
    assert losses.attempts[0] == 1 and 1 in losses.attempts[2:]


async def test_a_session_that_drops_its_connection_backs_off_further(broker: Mosquitto) -> None:
    connections = 0
    losses = Losses()

    async def session(client: Client) -> None:
        nonlocal connections
        connections += 1
        raise DropConnection("the outbox is full")

    async with linked(broker, session, losses):
        await wait_until(lambda: len(losses.attempts) >= 4, 10)
    assert connections >= 4
    assert losses.attempts[:4] == [1, 2, 3, 4]
    assert all(isinstance(e, DropConnection) for e in losses.errors)


async def test_a_session_that_loses_its_cancellation_is_stopped_all_the_same(
    broker: Mosquitto,
) -> None:
    """Python 3.11's wait_for can swallow a cancellation (CPython gh-86296); a TaskGroup
    around such a session would wait for it for ever, and the hub or agent never stop."""
    started = asyncio.Event()
    swallowed = 0

    async def session(client: Client) -> None:
        nonlocal swallowed
        started.set()
        for _ in range(100_000):
            try:
                await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                if swallowed == 0:
                    swallowed += 1
                    continue  # lost, as wait_for loses it
                raise

    async with linked(broker, session, Losses()):
        await asyncio.wait_for(started.wait(), 10)
    assert swallowed == 1


async def test_publishing_without_awaiting_pubacks(broker: Mosquitto) -> None:
    received: list[bytes] = []
    clients: list[Client] = []

    async def session(client: Client) -> None:
        clients.append(client)
        await client.subscribe("nowait/+", qos=1)
        for i in range(200):
            assert publish_nowait(client, f"nowait/{i % 3}", str(i).encode())
        async for message in client.messages:
            assert isinstance(message.payload, bytes)
            received.append(message.payload)

    async with linked(broker, session, Losses()):
        await wait_until(lambda: len(received) == 200, 10)
        await wait_until(lambda: unacknowledged(clients[0]) == 0, 10)
    assert sorted(int(p) for p in received) == list(range(200))
