"""The quorum shells on a real outbox file with a small fake hub: held receipts, the
receipt's cosigned checkpoint, the hub's, refusals, failed proofs, a hub away, a split view.
(The real hub and witnesses: tests/integration/edge/test_quorum_agent.py.)"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from edge import awaiting
from edge.errors import HubUnavailable
from edge.hub import InclusionProof
from edge.outbox import AsyncOutbox, Outbox
from edge.receipts import ProofCheck, ProofPolicy, Receipt, ReceiptJudge
from edge.settings import HubSettings
from edge.settling import InclusionChecker, QuorumSettler, Settler
from ledger.suite import ED25519_SHA256, SM2_SM3, Suite
from tests.support.quorum import NOW, LogWorld, log_world


class FakeHub:
    """The two reads the quorum settler makes, from a :class:`LogWorld`."""

    def __init__(self, world: LogWorld) -> None:
        self.world = world
        self.note: str | None = None
        self.down = False
        self.lie_at: int | None = None
        self.fetches = 0
        self.proofs = 0
        self.consistency = 0

    async def checkpoint(self) -> str:
        self.fetches += 1
        if self.down or self.note is None:
            raise HubUnavailable("GET /api/v1/ledger/checkpoint: connection refused")
        return self.note

    async def consistency_proof(self, first: int, second: int) -> list[bytes]:
        self.consistency += 1
        if self.down:
            raise HubUnavailable("GET /api/v1/ledger/proof/consistency: connection refused")
        return self.world.consistency_proof(first, second)

    async def inclusion_proof(self, index: int, size: int) -> InclusionProof:
        self.proofs += 1
        if self.down:
            raise HubUnavailable("GET /api/v1/ledger/proof/inclusion: connection refused")
        proof = self.world.inclusion_proof(index, size)
        if index == self.lie_at:
            proof = [h[::-1] for h in proof]
        return InclusionProof(index, size, self.world.leaves[index], proof)


IDS = [str(uuid.UUID(int=i, version=4)) for i in range(10)]


@pytest.fixture
def world(suite: Suite) -> LogWorld:
    w = log_world(suite)
    w.grow(10)
    return w


@pytest.fixture
async def box(tmp_path: Path, world: LogWorld) -> AsyncIterator[AsyncOutbox]:
    outbox = await AsyncOutbox.open(tmp_path / "outbox.db")

    def fill(b: Outbox) -> None:
        b.conn.executemany(
            "INSERT INTO outbox (seq, id, type, leaf_hash, wire, created_at)"
            " VALUES (?, ?, 't', ?, x'00', 0)",
            [(i + 1, IDS[i], world.leaves[i]) for i in range(10)],
        )

    await outbox.call(fill)
    yield outbox
    await outbox.close()


def receipt(world: LogWorld, i: int, cosigned: str | None = None) -> bytes:
    return (
        Receipt(
            id=IDS[i],
            status="accepted",
            index=i,
            leaf_hash=world.leaves[i].hex(),
            checkpoint=world.note(i + 1),
            cosigned=cosigned,
        )
        .model_dump_json(exclude_none=True)
        .encode()
    )


def settler(
    world: LogWorld, box: AsyncOutbox, hub: FakeHub, quorum: str = "two-orgs"
) -> tuple[Settler, QuorumSettler]:
    q = QuorumSettler(
        box,
        hub,
        world.policy(quorum),
        world.hub_key,
        interval=0.01,
        maximum=0.05,  # type: ignore[arg-type]
        clock=lambda: float(NOW),
    )
    s = Settler(box, ReceiptJudge(world.hub_key, ProofPolicy("always")), asyncio.Queue(), None, q)
    return s, q


async def counts(box: AsyncOutbox) -> tuple[int, int, int]:
    depth = await box.call(Outbox.depth)
    waiting, failed = await box.call(awaiting.quorum_counts)
    return depth, waiting, failed


async def test_accepted_records_are_held_not_delivered(world: LogWorld, box: AsyncOutbox) -> None:
    s, _ = settler(world, box, FakeHub(world))
    await s.settle([receipt(world, i) for i in range(4)])
    assert await counts(box) == (10, 4, 0)
    assert s.counts["awaiting_quorum"] == 4 and s.counts["deliver"] == 0
    # Held records are not published again.
    pending = await box.call(Outbox.pending_after, 0, 100)
    assert [p.id for p in pending] == IDS[4:]


async def test_the_receipts_cosigned_checkpoint_settles_what_it_covers(
    world: LogWorld, box: AsyncOutbox
) -> None:
    hub = FakeHub(world)
    s, q = settler(world, box, hub)
    await s.settle([receipt(world, i, world.cosigned(3, ("w1", "w2"))) for i in range(5)])
    assert q.trusted is not None and q.trusted.size == 3
    await q.round()
    # 0..2 proven in the tree of 3 and delivered; 3 and 4 wait (the hub had nothing newer).
    assert await counts(box) == (7, 2, 0)
    assert q.settled_total == 3 and hub.proofs == 3
    status = await box.call(Outbox.meta, "delivered_total")
    assert status == "3"


async def test_the_hubs_checkpoint_is_fetched_for_records_left_uncovered(
    world: LogWorld, box: AsyncOutbox
) -> None:
    hub = FakeHub(world)
    s, q = settler(world, box, hub)
    await s.settle([receipt(world, i) for i in range(6)])
    hub.note = world.cosigned(8, ("w1", "w3"))
    await q.round()
    assert await counts(box) == (4, 0, 0)
    assert hub.fetches == 1 and q.trusted is not None and q.trusted.size == 8


async def test_a_checkpoint_that_fails_the_policy_is_never_trusted(
    world: LogWorld, box: AsyncOutbox
) -> None:
    hub = FakeHub(world)
    s, q = settler(world, box, hub)
    await s.settle([receipt(world, i, world.cosigned(9, ("w2", "w3"))) for i in range(3)])
    hub.note = world.cosigned(10, ("w2", "w3"))
    for _ in range(3):
        await q.round()
    assert await counts(box) == (10, 3, 0)
    assert q.trusted is None and q.refused_total == 2  # each note judged once
    refused = await box.call(Outbox.meta, "quorum_refused")
    assert refused is not None and "missing: org-a" in refused


async def test_a_proof_that_fails_keeps_the_record(world: LogWorld, box: AsyncOutbox) -> None:
    hub = FakeHub(world)
    hub.lie_at = 1
    s, q = settler(world, box, hub)
    await s.settle([receipt(world, i, world.cosigned(5, ("w1", "w2"))) for i in range(3)])
    await q.round()
    assert await counts(box) == (8, 0, 1)
    assert q.proofs_failed == 1 and q.settled_total == 2


async def test_a_hub_away_reschedules_and_backs_off(world: LogWorld, box: AsyncOutbox) -> None:
    hub = FakeHub(world)
    hub.down = True
    s, q = settler(world, box, hub)
    await s.settle([receipt(world, i, world.cosigned(2, ("w1", "w2"))) for i in range(4)])
    await q.round()
    assert await counts(box) == (10, 4, 0)
    assert q.fetch_failures == 1
    rows = await box.call(awaiting.awaiting_quorum, float(NOW) + 3600, 10)
    assert [r.attempts for r in rows] == [1, 1, 0, 0]


async def test_a_split_view_settles_nothing_more(world: LogWorld, box: AsyncOutbox) -> None:
    hub = FakeHub(world)
    s, q = settler(world, box, hub)
    forked = world.cosigned(6, ("w1", "w2"), note=world.note(6, root=b"\x09" * 32))
    await s.settle([receipt(world, 0, world.cosigned(6, ("w1", "w2")))])
    await s.settle([receipt(world, i, forked) for i in range(1, 4)])
    assert q.split_view is not None
    await q.round()
    assert await counts(box) == (10, 4, 0)


async def test_the_trusted_checkpoint_is_kept_across_a_restart_and_judged_again(
    world: LogWorld, box: AsyncOutbox
) -> None:
    s, _ = settler(world, box, FakeHub(world))
    await s.settle([receipt(world, 0, world.cosigned(4, ("w1", "w2")))])
    assert await box.call(Outbox.meta, "quorum_note") == world.cosigned(4, ("w1", "w2"))
    # A new agent under a stricter policy does not take it.
    _, strict = settler(world, box, FakeHub(world), quorum="w3")
    assert not await strict.offer(world.cosigned(4, ("w1", "w2")), "outbox")


def test_require_quorum_needs_a_policy() -> None:
    with pytest.raises(ValueError, match="trust_policy"):
        HubSettings(require_quorum=True)
    with pytest.raises(ValueError, match="quorum_poll_max"):
        HubSettings(quorum_poll_interval=10, quorum_poll_max=5)
    assert HubSettings().require_quorum is False


async def test_a_larger_checkpoint_with_another_history_settles_nothing_more(
    world: LogWorld, box: AsyncOutbox
) -> None:
    """The quorum cosigned size 4, then (a compromised quorum, or witnesses shown two
    histories) a size-9 tree that does not extend it: the agent proves consistency before
    it takes any larger tree, and stops."""
    hub = FakeHub(world)
    s, q = settler(world, box, hub)
    await s.settle([receipt(world, 0, world.cosigned(4, ("w1", "w2")))])
    assert q.trusted is not None and q.trusted.size == 4
    fork = LogWorld(
        hub=world.hub, witnesses=world.witnesses, leaves=list(world.leaves), suite=world.suite
    )
    fork.leaves[1] = b"\x07" * 32
    await s.settle([receipt(world, i, fork.cosigned(9, ("w1", "w2"))) for i in range(1, 4)])
    assert hub.consistency >= 1 and q.split_view is not None
    assert q.trusted.size == 4
    await q.round()
    settled_before = q.settled_total
    await q.round()
    assert q.settled_total == settled_before


async def test_a_larger_checkpoint_is_taken_once_proven_consistent(
    world: LogWorld, box: AsyncOutbox
) -> None:
    hub = FakeHub(world)
    s, q = settler(world, box, hub)
    await s.settle([receipt(world, 0, world.cosigned(4, ("w1", "w2")))])
    hub.down = True  # the proof cannot be had: the larger tree waits
    await s.settle([receipt(world, 1, world.cosigned(9, ("w1", "w2")))])
    assert q.trusted is not None and q.trusted.size == 4 and q.split_view is None
    hub.down = False
    await s.settle([receipt(world, 2, world.cosigned(9, ("w1", "w2")))])
    assert q.trusted.size == 9 and q.split_view is None and hub.consistency == 2


# -- the sampled inclusion proofs (hub.proof_check), in the log's tree --------------------------


async def _checked(world: LogWorld, box: AsyncOutbox, hub: FakeHub, check: ProofCheck) -> int:
    """The checker's verdict on ``check``: 1 verified, -1 failed, 0 neither."""
    checker = InclusionChecker(box, hub, world.hub_key)  # type: ignore[arg-type]
    await checker.check(check)
    return checker.verified - checker.failed


@pytest.mark.parametrize("under", ["the receipt's checkpoint", "the hub's newest"])
async def test_an_inclusion_proof_verifies_in_the_logs_tree(
    world: LogWorld, box: AsyncOutbox, under: str
) -> None:
    hub = FakeHub(world)
    hub.note = world.note(9)
    given = under == "the receipt's checkpoint"
    for i in (0, 4, 8):
        size, root = (9, world.root(9)) if given else (None, None)
        check = ProofCheck(IDS[i], i + 1, i, world.leaves[i], size, root)
        assert await _checked(world, box, hub, check) == 1


async def test_an_inclusion_proof_that_does_not_verify_fails_the_check(
    world: LogWorld, box: AsyncOutbox
) -> None:
    hub = FakeHub(world)
    hub.lie_at = 4
    check = ProofCheck(IDS[4], 5, 4, world.leaves[4], 9, world.root(9))
    assert await _checked(world, box, hub, check) == -1
    # A root of the other suite's tree over the same leaves is not this log's either.
    other = LogWorld(leaves=list(world.leaves), suite=_other(world.suite))
    check = ProofCheck(IDS[3], 4, 3, world.leaves[3], 9, other.root(9))
    assert await _checked(world, box, FakeHub(world), check) == -1


def _other(suite: Suite) -> Suite:
    return SM2_SM3 if suite is ED25519_SHA256 else ED25519_SHA256
