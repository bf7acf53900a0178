"""A mirror following a real hub over real HTTP on 127.0.0.1: it catches up, keeps
following a growing log, serves the same public ledger API (inclusion proofs equal to the
hub's), cosigns what it holds, and its file verifies with ``swiftchain ledger verify``; for a
log of either crypto suite (an sm2-sm3 one is followed in SM3 and cosigned with SM2)."""

from __future__ import annotations

import base64
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from ledger.checkpoint import NoteVerifier, verify_checkpoint
from ledger.cosignature import CosignerVerifier, verify_cosignatures
from ledger.proofs import verify_inclusion
from ledger.store import LedgerReader
from ledger.suite import Suite
from ledger.verify import verify_ledger
from swiftchain.cli import cli
from tests.support.broker import Mosquitto
from tests.support.hub import SWIFTCHAIN, ThreadHub
from tests.support.mirror import (
    MirrorProcess,
    build_hub_dir,
    built_hub,
    get,
    make_mirror,
    wait_for,
)

RECORDS = 2500


@pytest.fixture
def hub(tmp_path: Path, hub_broker: Mosquitto, suite: Suite) -> Iterator[ThreadHub]:
    build_hub_dir(tmp_path / "hub", RECORDS, suite=suite)
    with built_hub(tmp_path / "hub", hub_broker.url) as running:
        yield running


@pytest.fixture
def mirror(tmp_path: Path, hub: ThreadHub) -> Iterator[MirrorProcess]:
    process = MirrorProcess(make_mirror(tmp_path / "mirror", hub))
    process.start()
    try:
        yield process
    finally:
        process.stop()


def caught_up(mirror: MirrorProcess, size: int) -> bool:
    return mirror.status()["verified"] >= size


def test_a_mirror_catches_up_follows_and_serves_what_the_hub_serves(
    hub: ThreadHub, mirror: MirrorProcess, suite: Suite, tmp_path: Path
) -> None:
    size = hub.get_json("/api/v1/ledger/entries?start=0&end=0")["size"]
    wait_for(lambda: caught_up(mirror, size), f"caught up to {size}")
    assert mirror.status()["suite"] == suite.name

    # The log grows (registry changes are entries, each followed by a checkpoint).
    hub.add_org("alliance-member", "A member")
    hub.add_org("alliance-member-2", "Another member")
    grown = hub.get_json("/api/v1/ledger/entries?start=0&end=0")["size"]
    assert grown > size
    wait_for(lambda: caught_up(mirror, grown), f"caught up to {grown}")

    # Same key, same entries, same proofs.
    code, key = get(mirror.url + "/api/v1/ledger/key")
    assert code == 200 and key.strip() == hub.log_key
    for start in (0, 1000, grown - 3):
        path = f"/api/v1/ledger/entries?start={start}&end={start + 3}"
        assert get(mirror.url + path)[1]["entries"] == hub.get_json(path)["entries"]
    for index in (0, 1, RECORDS // 2, grown - 1):
        path = f"/api/v1/ledger/proof/inclusion?index={index}&size={grown}"
        assert get(mirror.url + path)[1] == hub.get_json(path)
    path = f"/api/v1/ledger/proof/consistency?first=7&second={grown}"
    assert get(mirror.url + path)[1] == hub.get_json(path)

    # The checkpoint it serves is the hub's, verified, with the mirror's cosignature.
    code, note = get(mirror.url + "/api/v1/ledger/checkpoint")
    assert code == 200
    checkpoint = verify_checkpoint(note, NoteVerifier.parse(hub.log_key))
    assert checkpoint.size == grown
    cosigner = CosignerVerifier.parse((mirror.directory / "mirror.vkey").read_text())
    (cosigned,) = verify_cosignatures(note, [cosigner])
    assert cosigned.verifier.name == "test.mirror/m1"
    assert cosigner.suite is suite  # the mirror cosigns with a key of the log's kind
    leaf = hub.get_json(f"/api/v1/ledger/entries?start={grown - 1}&end={grown}")["entries"][0]
    proof = get(mirror.url + f"/api/v1/ledger/proof/inclusion?index={grown - 1}&size={grown}")[1]
    verify_inclusion(
        bytes.fromhex(leaf["leaf_hash"]),
        grown - 1,
        grown,
        [bytes.fromhex(h) for h in proof["proof"]],
        checkpoint.root_hash,
        suite.tree,
    )
    assert bytes.fromhex(leaf["leaf_hash"]) == suite.tree.leaf(base64.b64decode(leaf["leaf"]))

    # A tlog-proof from the mirror alone, its cosignature counted by a policy naming it.
    proof_file, policy = tmp_path / "entry.tlog-proof", tmp_path / "policy.txt"
    policy.write_text(
        f"log {hub.log_key}\nwitness test.mirror/m1 {cosigner.encode()}\nquorum test.mirror/m1\n"
    )
    runner = CliRunner()
    made = runner.invoke(cli, ["ledger", "prove", "5", "--hub", mirror.url, "-o", str(proof_file)])
    assert made.exit_code == 0, made.output
    checked = runner.invoke(
        cli, ["ledger", "check-proof", str(proof_file), "--policy", str(policy)]
    )
    assert checked.exit_code == 0, checked.output
    assert "OK: entry 5 is in the log" in checked.output

    code, ready = get(mirror.url + "/readyz")
    assert code == 200 and ready["checkpoint_size"] == grown
    code, metrics = get(mirror.url + "/metrics")
    assert f"swiftchain_mirror_checkpoint_size {float(grown)}" in metrics
    assert "swiftchain_mirror_fork 0.0" in metrics

    # Bad input: the hub's answers.
    for path in (
        "/api/v1/ledger/entries?start=-1",
        f"/api/v1/ledger/entries?start={grown + 1}",
        "/api/v1/ledger/entries?start=0&end=5000",
        "/api/v1/ledger/proof/inclusion?index=0",
        f"/api/v1/ledger/proof/inclusion?index={grown}&size={grown}",
        "/api/v1/ledger/proof/consistency?first=0&second=3",
    ):
        mine, theirs = get(mirror.url + path), hub.request("GET", path)
        assert mine[0] == theirs[0] == 400, (path, mine, theirs)
        assert mine[1]["error"] == theirs[1]["error"]


def test_the_mirror_file_verifies_as_a_ledger_and_holds_no_body(
    tmp_path: Path, hub: ThreadHub, mirror: MirrorProcess, suite: Suite
) -> None:
    size = hub.get_json("/api/v1/ledger/entries?start=0&end=0")["size"]
    wait_for(lambda: caught_up(mirror, size), f"caught up to {size}")
    mirror.stop()
    db = mirror.directory / "ledger.db"
    report = verify_ledger(db, log_key=NoteVerifier.parse(hub.log_key))
    assert report.ok, report.problems
    assert report.leaves_only and report.signatures == RECORDS and report.bodies == 0
    assert report.suite == suite.name
    with LedgerReader(db) as reader:
        assert reader.suite is suite
    import sqlite3

    conn = sqlite3.connect(db)
    for table in ("bodies", "openings", "origins", "blinded"):
        assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,), table
    conn.close()
    done = subprocess.run(
        [SWIFTCHAIN, "ledger", "verify", str(db), "--key", hub.log_key, "--quiet"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "a mirror's" in done.stdout and f"suite {suite.name})" in done.stdout
