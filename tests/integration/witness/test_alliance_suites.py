"""A hub of either crypto suite and its alliance of `swiftchain witness serve` processes over
real HTTP: the witnesses learn the log's suite from its key, check its consistency proofs in
its hash round after round, and cosign with keys of either kind; the quorum is met."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ledger.checkpoint import NoteVerifier, verify_checkpoint
from ledger.policy import parse_policy
from ledger.quorum import evaluate
from ledger.suite import ED25519_SHA256, SM2_SM3, Suite
from tests.support.broker import Mosquitto
from tests.support.witnesses import alliance_hub, until

ORIGIN = "test.swiftchain/ledger"


def test_the_witnesses_cosign_a_log_of_either_suite(
    tmp_path: Path, hub_broker: Mosquitto, suite: Suite
) -> None:
    # One witness of each kind and one of the log's: a key's kind is its own affair.
    kinds = (ED25519_SHA256, SM2_SM3, suite)
    with alliance_hub(tmp_path, hub_broker.url, ORIGIN, suite=suite, witness_suites=kinds) as a:
        assert NoteVerifier.parse(a.log_vkey).suite is suite
        policy = parse_policy(a.hub_policy.read_text())
        hub = a.hub
        for round_ in range(3):
            # Each registry change is an entry and a checkpoint: a consistency proof from
            # what each witness cosigned before, in the log's hash.
            hub.add_org(f"member-{round_}", f"Member {round_}")
            size = hub.get_json("/api/v1/ledger/entries?start=0&end=0")["size"]

            def cosigned_by_all(size: int = size) -> Any:
                note = hub.get_text("/api/v1/ledger/checkpoint")
                report = evaluate(policy, note)
                return report.size >= size and len(report.cosigned) == 3 and (note, report)

            note, report = until(f"all three cosign size {size}", cosigned_by_all)
            assert report.ok
            assert verify_checkpoint(note, NoteVerifier.parse(a.log_vkey)).size >= size
        for w in a.witnesses:
            assert w.proc is not None and w.proc.poll() is None
