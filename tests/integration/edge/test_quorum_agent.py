"""An agent that requires the quorum (``hub.require_quorum``), against a real hub and real
`swiftchain witness serve` processes over loopback: with the quorum reachable its records
settle, each proven in a checkpoint that meets the agent's own trust policy; with the
witnesses down they stay in the outbox "awaiting quorum", and settle once they come back."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from edge.agent import Agent
from edge.awaiting import awaiting_quorum, quorum_counts
from edge.drafts import Draft
from edge.metrics import sample
from edge.outbox import Outbox
from edge.settings import load_settings
from edge.status import read_status, render_status
from ledger.envelope import utc_now
from tests.support.broker import Mosquitto
from tests.support.edge import running_agent, write_edge_config
from tests.support.hub import ThreadHub
from tests.support.records import PILOT, SOURCE, TYPE
from tests.support.witnesses import WitnessProcess, alliance_hub, write_policy

pytestmark = pytest.mark.slow

ORIGIN = "test.swiftchain/ledger"
#: Every wait below is bounded by this (a bound on a hang, not a timing assertion).
WAIT_S = 60.0


async def until(what: str, probe: Callable[[], Awaitable[Any]]) -> Any:
    deadline = time.monotonic() + WAIT_S
    while True:
        got = await probe()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {WAIT_S} s: {what}")
        await asyncio.sleep(0.05)


@pytest.fixture
def alliance(
    tmp_path: Path, hub_broker: Mosquitto
) -> Iterator[tuple[ThreadHub, list[WitnessProcess], str, Path]]:
    """A hub whose policy has three witnesses of three members, quorum 2; the agent's policy
    file says the same (without the URLs, which only the hub needs)."""
    with alliance_hub(tmp_path, hub_broker.url, ORIGIN) as a:
        yield a.hub, a.witnesses, a.log_vkey, a.agent_policy


def agent_config(tmp_path: Path, hub: ThreadHub, log_vkey: str, policy: Path) -> Path:
    key_path, _ = hub.register_source(PILOT, SOURCE, [TYPE])
    return write_edge_config(
        tmp_path / "edge",
        pilot=PILOT,
        source=SOURCE,
        key_file=key_path,
        broker_url=hub.mqtt_url,
        hub_url=hub.http_url,
        hub_key=log_vkey,
        types=[TYPE],
        hub={
            "require_quorum": True,
            "trust_policy": str(policy),
            "quorum_poll_interval": 0.1,
            "quorum_poll_max": 0.5,
        },
    )


def air(i: int) -> dict[str, object]:
    return {"station": "st-1", "observed_at": utc_now(), "pm25": float(i)}


async def submit(agent: Agent, first: int, n: int) -> None:
    await agent.intake.submit([Draft(TYPE, air(i)) for i in range(first, first + n)])


async def state(agent: Agent) -> tuple[int, int, int]:
    """(outbox depth, records awaiting quorum, their failed proofs)."""
    depth = await agent.outbox.call(Outbox.depth)
    waiting, failed = await agent.outbox.call(quorum_counts)
    return depth, waiting, failed


async def test_records_settle_on_the_quorum_and_wait_while_the_witnesses_are_down(
    tmp_path: Path, alliance: tuple[ThreadHub, list[WitnessProcess], str, Path]
) -> None:
    hub, witnesses, log_vkey, policy = alliance
    config = agent_config(tmp_path, hub, log_vkey, policy)
    async with running_agent(load_settings(config)) as agent:
        # The quorum is reachable: every record settles, proven in a quorum checkpoint.
        await submit(agent, 0, 20)

        async def drained() -> bool:
            return await state(agent) == (0, 0, 0)

        await until("the 20 records settle on the quorum", drained)
        quorum = agent.quorum
        assert quorum is not None and quorum.trusted is not None
        assert quorum.trusted.size >= 20 and len(quorum.trusted.cosigned) >= 2
        assert quorum.settled_total == 20 and quorum.proofs_failed == 0
        settled_size = quorum.trusted.size

        # Two of three witnesses down: the hub still takes the records, the agent does not
        # count them as delivered.
        witnesses[0].kill()
        witnesses[1].kill()
        await submit(agent, 20, 10)

        async def all_awaiting() -> tuple[int, int, int] | None:
            got = await state(agent)
            return got if got[1] == 10 else None

        assert await until("the 10 records are accepted and await quorum", all_awaiting) == (
            10,
            10,
            0,
        )
        # They stay: the agent keeps asking the hub, whose newest cosigned checkpoint does
        # not cover them (a bounded number of the agent's own polls, not a timed wait).
        fetches = quorum.fetches

        async def polled_more() -> bool:
            return quorum.fetches >= fetches + 5

        await until("the agent polls the hub again", polled_more)
        assert await state(agent) == (10, 10, 0)
        waiting = await agent.outbox.call(awaiting_quorum, time.time(), 100)
        assert not any(quorum.trusted.covers(r.index) for r in waiting)
        assert min(r.index for r in waiting) >= settled_size
        assert quorum.settled_total == 20

        status = read_status(agent.settings.outbox_path)
        assert status.awaiting_quorum == 10 and status.depth == 10
        assert status.delivered_total == 20 and status.quorum_settled_total == 20
        text = render_status(status)
        assert "awaiting quorum  10" in text and "quorum checkpoint" in text
        metrics = await sample(agent)
        assert metrics.quorum is not None and metrics.quorum.awaiting == 10

        # The witnesses come back with their state: the quorum is met again, and the
        # records waiting settle, each proven in the new checkpoint.
        witnesses[0].start()
        witnesses[1].start()
        await until("the waiting records settle once the quorum is back", drained)
        assert quorum.trusted.size >= 30
        assert quorum.settled_total == 30 and quorum.proofs_failed == 0
        status = read_status(agent.settings.outbox_path)
        assert status.delivered_total == 30 and status.awaiting_quorum == 0
        assert status.quorum_checkpoint is not None and status.quorum_checkpoint["size"] >= 30


async def test_a_policy_the_hubs_quorum_cannot_meet_keeps_every_record(
    tmp_path: Path, alliance: tuple[ThreadHub, list[WitnessProcess], str, Path]
) -> None:
    """The agent's own policy asks for all three witnesses; the hub's quorum is two of
    them. With one witness down, the hub's cosigned checkpoints meet the hub's policy but
    never the agent's: nothing leaves the outbox, and the reason is in edge status."""
    hub, witnesses, log_vkey, _ = alliance
    strict = write_policy(tmp_path / "strict.txt", log_vkey, witnesses, 3, urls=False)
    config = agent_config(tmp_path, hub, log_vkey, strict)
    witnesses[2].kill()
    async with running_agent(load_settings(config)) as agent:
        await submit(agent, 0, 5)
        quorum = agent.quorum
        assert quorum is not None

        async def refused() -> bool:
            return quorum.refused_total >= 3 and (await state(agent))[1] == 5

        await until("the hub's checkpoints are refused by the agent's policy", refused)
        assert await state(agent) == (5, 5, 0)
        # A checkpoint from before the witness went down (the log's first entries, the
        # registry's) may be trusted; it covers none of these records, and none settles.
        assert quorum.settled_total == 0
        status = read_status(agent.settings.outbox_path)
        assert status.delivered_total == 0
        assert status.quorum_refused is not None
        assert "not met" in status.quorum_refused["reason"]
