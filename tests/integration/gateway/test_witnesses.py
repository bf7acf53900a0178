"""The hub and its alliance's witnesses: every new checkpoint goes to each
witness of the trust policy, real `swiftchain witness serve` processes over real HTTP; what
they cosign is published with the checkpoint and, once the quorum is met, carried by the
receipts; a witness down costs nothing but its cosignature, and /readyz says when the
quorum is not met and why. A witness killed and started again keeps its state."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ledger.keys import load_private_key
from ledger.policy import TrustPolicy, parse_policy
from ledger.quorum import evaluate
from ledger.tlogproof import verify_proof
from swiftchain.tlogproofs import prove_from_hub, prove_from_ledger
from tests.support.broker import Mosquitto
from tests.support.hub import MqttPeer, ThreadHub
from tests.support.records import PILOT, SOURCE, TYPE, make
from tests.support.witnesses import WitnessProcess, alliance_hub, until

ORIGIN = "test.swiftchain/ledger"
SWIFTCHAIN = str(Path(sys.executable).with_name("swiftchain"))


@pytest.fixture
def alliance(
    tmp_path: Path, hub_broker: Mosquitto
) -> Iterator[tuple[ThreadHub, list[WitnessProcess], TrustPolicy, str]]:
    with alliance_hub(tmp_path, hub_broker.url, ORIGIN) as a:
        yield a.hub, a.witnesses, parse_policy(a.hub_policy.read_text()), a.log_vkey


KEYS: dict[str, Path] = {}


def register(hub: ThreadHub) -> None:
    KEYS[hub.http_url] = hub.register_source(PILOT, SOURCE, [TYPE])[0]


async def publish(hub: ThreadHub, first: int, n: int) -> list[dict[str, Any]]:
    key = load_private_key(KEYS[hub.http_url])
    async with MqttPeer(hub.mqtt_url) as peer:
        return [await peer.send(make(key, seq)) for seq in range(first, first + n)]


def verify_with_policy(hub: ThreadHub) -> int:
    """`swiftchain ledger verify --policy` on the hub's file: its exit status."""
    policy = hub.config_path.parent.parent / "policy.txt"
    done = subprocess.run(
        [SWIFTCHAIN, "ledger", "verify", str(hub.db_path), "--policy", str(policy), "--quiet"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.returncode


def witnessed(hub: ThreadHub) -> dict[str, Any]:
    status, body = hub.request("GET", "/readyz")
    assert status == 200, body
    return dict(body["witnesses"])


def caught_up(hub: ThreadHub) -> Callable[[], dict[str, Any] | None]:
    """Until a round of the whole log is published (one /readyz answer says both)."""

    def probe() -> dict[str, Any] | None:
        status, body = hub.request("GET", "/readyz")
        assert status == 200, body
        state = dict(body["witnesses"])
        return state if state["published_size"] == body["log_size"] else None

    return probe


async def test_the_quorum_cosigns_and_survives_one_witness_down(
    alliance: tuple[ThreadHub, list[WitnessProcess], TrustPolicy, str],
) -> None:
    hub, witnesses, policy, _ = alliance
    register(hub)
    receipts = await publish(hub, 1, 5)
    assert {r["status"] for r in receipts} == {"accepted"}
    state = until("all three cosign the whole log", caught_up(hub))
    assert state["quorum_met"] and state["why"] == []
    assert [w["reachable"] for w in state["witnesses"]] == [True] * 3
    report = evaluate(policy, hub.get_text("/api/v1/ledger/checkpoint"))
    assert report.ok and len(report.cosigned) == 3
    # The dashboard, public, shows the quorum too.
    panel = until(
        "the dashboard shows the quorum",
        lambda: (
            (w := hub.get_json("/api/v1/dashboard/summary")["witnesses"]) and w["quorum_met"] and w
        ),
    )
    assert len(panel["witnesses"]) == 3

    # Receipts now carry a checkpoint the quorum cosigned.
    (later,) = await publish(hub, 6, 1)
    assert later["status"] == "accepted" and evaluate(policy, later["cosigned"]).ok
    # A proof a hospital keeps, from the hub's file and from its API: the quorum's checkpoint.
    for proof in (prove_from_ledger(hub.db_path, 1), prove_from_hub(hub.http_url, 1)):
        assert verify_proof(proof, policy).ok

    # One of three down: two still make the quorum; the one down is said.
    witnesses[0].kill()
    await publish(hub, 7, 3)
    state = until("the two left cosign the whole log", caught_up(hub))
    assert state["quorum_met"]
    assert state["witnesses"][0]["reachable"] is False and state["witnesses"][0]["error"]
    assert len(evaluate(policy, hub.get_text("/api/v1/ledger/checkpoint")).cosigned) == 2

    # Two down: the quorum is not met, and /readyz says why; ingest goes on all the same.
    witnesses[1].kill()
    assert {r["status"] for r in await publish(hub, 10, 3)} == {"accepted"}
    state = until("the lone witness's round is published", caught_up(hub))
    assert not state["quorum_met"] and any("alliance" in why for why in state["why"])
    metrics = hub.get_text("/metrics")
    assert "swiftchain_witness_quorum_met 0.0" in metrics
    assert 'swiftchain_witness_up{witness="witness.member0.example/w"} 0.0' in metrics

    # Back again with their state: they prove consistency from what they last cosigned.
    for w in witnesses[:2]:
        w.start()
    await publish(hub, 13, 2)
    state = until(
        "the quorum is met again", lambda: (s := caught_up(hub)()) and s["quorum_met"] and s
    )
    assert [w["reachable"] for w in state["witnesses"]] == [True] * 3


async def test_a_hub_restored_from_an_old_copy_is_refused_by_every_witness(
    tmp_path: Path,
    hub_broker: Mosquitto,
    alliance: tuple[ThreadHub, list[WitnessProcess], TrustPolicy, str],
) -> None:
    hub, _, policy, _ = alliance
    register(hub)
    await publish(hub, 1, 3)
    until("the witnesses cosign", caught_up(hub))
    old = tmp_path / "old-copy"
    old.mkdir()
    hub.stop()
    for name in ("ledger.db", "ledger.db.access", "hub.key", "hub.toml", "ledger.db.token.jwk"):
        src = hub.config_path.parent / name
        if src.exists():
            (old / name).write_bytes(src.read_bytes())
    hub.start()
    await publish(hub, 4, 4)
    until("the witnesses cosign the grown log", caught_up(hub))
    hub.stop()
    # The operator restores the old copy and appends something else under the same key.
    for name in ("ledger.db", "ledger.db.access"):
        (hub.config_path.parent / name).write_bytes((old / name).read_bytes())
    for suffix in ("-wal", "-shm"):
        for name in ("ledger.db", "ledger.db.access"):
            (hub.config_path.parent / f"{name}{suffix}").unlink(missing_ok=True)
    hub.start()
    await publish(hub, 4, 1)
    state = until(
        "every witness refuses the other history, in a round of the whole log",
        lambda: (s := caught_up(hub)()) and all(w["error"] for w in s["witnesses"]) and s,
    )
    assert not state["quorum_met"]
    assert all(
        "larger than this log" in w["error"] or "HTTP 4" in w["error"] for w in state["witnesses"]
    )
    note = hub.get_text("/api/v1/ledger/checkpoint")
    assert evaluate(policy, note).ok is False
    # Its file says so too: its newest checkpoint carries no quorum.
    hub.stop()
    assert verify_with_policy(hub) == 1
