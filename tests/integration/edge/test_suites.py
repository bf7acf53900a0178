"""An agent and its hub's crypto suite: the agent's is its signing key's, and it refuses, at
start, a hub log key of the other suite, wherever the key comes from (pinned in the settings,
pinned in the outbox, fetched on first use); of the same suite it runs. Then an agent of each
suite against a real hub of that suite."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from aiohttp import web

from edge.agent import HUB_KEY_META, open_agent
from edge.errors import ConfigError
from edge.outbox import Outbox
from edge.settings import EdgeSettings, load_settings
from ledger.checkpoint import NoteSigner, NoteVerifier
from ledger.envelope import utc_now
from ledger.keys import generate_key, public_key_b64, write_key_pair
from ledger.suite import ED25519_SHA256, SM2_SM3, Suite
from tests.support.broker import Mosquitto
from tests.support.edge import drained, running_agent, wait_until, write_edge_config
from tests.support.hub import DEFAULT_ORG, thread_hub, write_hub_config

PILOT, SOURCE, TYPE = "demo-zone", "meter-1", "city.parking"
#: Whether tests/support/hub.py makes hubs of either suite (``write_hub_config(suite=...)``).
HUB_TAKES_SUITE = "suite" in inspect.signature(write_hub_config).parameters


def other(suite: Suite) -> Suite:
    return SM2_SM3 if suite is ED25519_SHA256 else ED25519_SHA256


def hub_key(suite: Suite) -> str:
    """A hub's log key (signed-note verifier key) of ``suite``."""
    return NoteSigner("test.swiftchain/ledger", generate_key(suite)).verifier.encode()


def settings(
    tmp_path: Path, suite: Suite, *, hub_url: str = "http://127.0.0.1:9", pin: str | None = None
) -> EdgeSettings:
    """An agent of ``suite`` (its key made here), pinning ``pin`` if given."""
    config = write_edge_config(
        tmp_path / "edge",
        pilot=PILOT,
        source=SOURCE,
        broker_url="mqtt://127.0.0.1:9",
        hub_url=hub_url,
        hub_key=pin,
        suite=suite,
    )
    return load_settings(config)


@asynccontextmanager
async def key_server(text: str) -> AsyncIterator[str]:
    """A hub's ``GET /api/v1/ledger/key`` only, on loopback; its base URL."""

    async def key(_: web.Request) -> web.Response:
        return web.Response(text=text + "\n")

    app = web.Application()
    app.router.add_get("/api/v1/ledger/key", key)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def pinned(s: EdgeSettings) -> str | None:
    box = Outbox(s.outbox_path)
    try:
        return box.meta(HUB_KEY_META)
    finally:
        box.close()


# -- refused -------------------------------------------------------------------------------


async def test_a_pinned_hub_key_of_another_suite_is_refused_at_start(
    tmp_path: Path, suite: Suite
) -> None:
    s = settings(tmp_path, suite, pin=hub_key(other(suite)))
    with pytest.raises(ConfigError) as err:
        async with open_agent(s):
            pytest.fail("the agent opened")
    message = str(err.value)
    assert "[hub] verifier_key" in message
    assert other(suite).name in message and suite.name in message
    assert f"--suite {other(suite).key_kind}" in message
    assert not s.outbox_path.exists()  # refused before anything was opened


async def test_a_hub_key_pinned_in_the_outbox_of_another_suite_is_refused_at_start(
    tmp_path: Path, suite: Suite
) -> None:
    s = settings(tmp_path, suite)
    box = Outbox(s.outbox_path)
    box.set_meta(HUB_KEY_META, hub_key(other(suite)))
    box.close()
    with pytest.raises(ConfigError, match="pinned in the outbox") as err:
        async with open_agent(s):
            pytest.fail("the agent opened")
    assert other(suite).name in str(err.value)


async def test_a_hub_key_of_another_suite_fetched_on_first_use_stops_the_agent(
    tmp_path: Path, suite: Suite
) -> None:
    async with key_server(hub_key(other(suite))) as url:
        s = settings(tmp_path, suite, hub_url=url)
        async with open_agent(s) as agent:
            # The agent's own error, not an exception group, for the CLI's one message.
            with pytest.raises(ConfigError, match="fetched from") as err:
                await asyncio.wait_for(agent.run(), 30)
    assert other(suite).name in str(err.value)
    assert pinned(s) is None  # and nothing was pinned


# -- the same suite ------------------------------------------------------------------------


async def test_a_pinned_hub_key_of_the_agents_suite_is_taken(tmp_path: Path, suite: Suite) -> None:
    key = hub_key(suite)
    s = settings(tmp_path, suite, pin=key)
    async with open_agent(s) as agent:
        assert agent.intake.signer.suite is suite


async def test_a_hub_key_of_the_agents_suite_is_pinned_on_first_use(
    tmp_path: Path, suite: Suite, broker: Mosquitto
) -> None:
    key = hub_key(suite)
    async with key_server(key) as url:
        config = write_edge_config(
            tmp_path / "edge",
            pilot=PILOT,
            source=SOURCE,
            broker_url=broker.url,
            hub_url=url,
            suite=suite,
        )
        s = load_settings(config)
        async with running_agent(s) as agent:
            await wait_until(lambda: agent.verifier is not None)
            assert agent.verifier is not None and agent.verifier.suite is suite
    assert pinned(s) == key


# -- against a real hub of each suite ----------------------------------------------------


@pytest.mark.skipif(
    not HUB_TAKES_SUITE,
    reason="needs tests/support/hub.py's write_hub_config(..., suite=...): a hub of either suite",
)
async def test_an_agent_publishes_to_a_hub_of_its_suite_and_checks_its_proofs(
    tmp_path: Path, hub_broker: Mosquitto, suite: Suite
) -> None:
    with thread_hub(tmp_path / "hub", hub_broker.url, batch_max_ms=2, suite=suite) as hub:
        assert NoteVerifier.parse(hub.log_key).suite is suite
        key_file = tmp_path / "keys" / "meter-1.key"
        key = write_key_pair(key_file, suite=suite)
        hub.add_org()
        hub.admin(
            "sources",
            {
                "pilot": PILOT,
                "source": SOURCE,
                "org": DEFAULT_ORG,
                "types": [TYPE],
                "public_key": public_key_b64(key.public_key()),
            },
        )
        config = write_edge_config(
            tmp_path / "edge",
            pilot=PILOT,
            source=SOURCE,
            key_file=key_file,
            broker_url=hub.mqtt_url,
            hub_url=hub.http_url,
            hub_key=hub.log_key,
            hub={"proof_check": "always"},
        )
        readings = [
            {"facility": "p-1", "observed_at": utc_now(), "capacity": 50, "occupied": i}
            for i in range(20)
        ]
        async with running_agent(load_settings(config)) as agent:
            for payload in readings:
                await agent.intake.submit_json({"type": TYPE, "payload": payload})
            await drained(agent)
            checker = agent.checker
            assert checker is not None
            await wait_until(lambda: checker.verified == len(readings))
            assert checker.failed == 0
            assert agent.settler is not None
            assert agent.settler.counts["dead_letter"] == 0
        assert [p for _, p in hub.source_payloads(PILOT, SOURCE)] == readings
