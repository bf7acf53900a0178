"""The witness state: logs added once and never re-keyed, the compare-and-swap that keeps
a lost race from rolling a log back, refusals kept as evidence, and the witness directory
(key 0600, refused when others can read it)."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from gateway.alliance.submission import request_body
from ledger.cosignature import CosignerVerifier, verify_cosignatures
from ledger.hashing import EMPTY_ROOT
from ledger.keys import generate_key, load_private_key
from ledger.suite import SM2_SM3, SUITES, Suite, suite_of
from tests.support.witness import ORIGIN, MemoryLog
from witness.errors import (
    Inconsistent,
    LogConfigError,
    SizeConflict,
    WitnessHomeError,
)
from witness.home import DB_FILE, KEY_FILE, init_home, open_home
from witness.service import Witness
from witness.store import MAX_REFUSALS_PER_LOG, WitnessStore, origin_sha256

NAME = "witness.test/w1"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    init_home(tmp_path / "w", NAME, 1_700_000_000)
    return tmp_path / "w"


def test_init_makes_a_0600_key_and_a_vkey(home: Path) -> None:
    assert stat.S_IMODE((home / KEY_FILE).stat().st_mode) == 0o600
    assert stat.S_IMODE((home / DB_FILE).stat().st_mode) == 0o600
    signer, store = open_home(home)
    assert signer.name == NAME
    assert CosignerVerifier.parse(store.get_meta("vkey") or "") == signer.verifier
    store.close()


def test_init_refuses_an_initialised_dir_and_bad_names(home: Path, tmp_path: Path) -> None:
    before = (home / KEY_FILE).read_bytes()
    with pytest.raises(WitnessHomeError, match="already a witness directory"):
        init_home(home, NAME, 1)
    assert (home / KEY_FILE).read_bytes() == before
    with pytest.raises(WitnessHomeError, match="cosigner name"):
        init_home(tmp_path / "x", "has space", 1)
    assert not (tmp_path / "x").exists()


def test_open_refuses_a_key_others_can_read(home: Path) -> None:
    os.chmod(home / KEY_FILE, 0o644)
    with pytest.raises(WitnessHomeError, match="chmod 600"):
        open_home(home)


def test_open_refuses_a_dir_that_is_not_a_witness(tmp_path: Path) -> None:
    with pytest.raises(WitnessHomeError, match="witness init"):
        open_home(tmp_path)


def test_a_log_is_added_once_and_never_rekeyed(tmp_path: Path) -> None:
    store = WitnessStore(tmp_path / "s.db")
    log = MemoryLog()
    assert store.add_log(ORIGIN, log.signer.verifier, 1) is True
    assert store.add_log(ORIGIN, log.signer.verifier, 2) is False
    other = MemoryLog(key=generate_key())
    with pytest.raises(LogConfigError, match="never replaces"):
        store.add_log(ORIGIN, other.signer.verifier, 3)
    view = store.log_view(ORIGIN)
    assert view is not None
    assert [k.encode() for k in view.keys] == [log.signer.verifier.encode()]
    assert (view.size, view.root) == (0, EMPTY_ROOT)
    assert store.log_view("other") is None
    (row,) = store.logs()
    assert row.origin == ORIGIN and row.vkeys == (log.signer.verifier.encode(),)
    assert row.checkpoint is None and row.cosigned_at is None


def test_advance_is_a_compare_and_swap(tmp_path: Path) -> None:
    store = WitnessStore(tmp_path / "s.db")
    log = MemoryLog().grow(10)
    store.add_log(ORIGIN, log.signer.verifier, 1)
    snapshot = store.log_view(ORIGIN)
    assert snapshot is not None
    store.advance(snapshot, 10, log.root(10), "note-10", 5)
    # A request decided against the same snapshot lost the race: no rollback to 4.
    with pytest.raises(SizeConflict) as info:
        store.advance(snapshot, 4, log.root(4), "note-4", 6)
    assert info.value.known_size == 10
    after = store.log_view(ORIGIN)
    assert after is not None and after.size == 10 and after.root == log.root(10)
    assert store.checkpoint_by_hash(origin_sha256(ORIGIN)) == "note-10"


def test_refusals_are_kept_and_bounded(tmp_path: Path) -> None:
    store = WitnessStore(tmp_path / "s.db")
    store.add_log(ORIGIN, MemoryLog().signer.verifier, 1)
    for i in range(MAX_REFUSALS_PER_LOG + 5):
        store.record_refusal(ORIGIN, i, 422, f"r{i}", "body")
    kept = store.refusals(ORIGIN)
    assert len(kept) == MAX_REFUSALS_PER_LOG and kept[0][2] == "r5"
    assert store.logs()[0].refusals == MAX_REFUSALS_PER_LOG


def test_the_witness_cosigns_persists_and_serves(home: Path) -> None:
    log = MemoryLog().grow(10)
    w = Witness.open(home, clock=lambda: 1_700_000_123.9)
    w.store.add_log(ORIGIN, log.signer.verifier, 1)
    line = w.add_checkpoint(log.request(0))
    note = w.store.checkpoint_by_hash(origin_sha256(ORIGIN))
    assert note == log.note() + line
    (got,) = verify_cosignatures(note, [w.verifier])
    assert got.timestamp == 1_700_000_123
    w.close()


def test_a_clock_at_zero_still_timestamps_one(home: Path) -> None:
    log = MemoryLog().grow(1)
    w = Witness.open(home, clock=lambda: 0.0)
    w.store.add_log(ORIGIN, log.signer.verifier, 1)
    line = w.add_checkpoint(log.request(0))
    assert verify_cosignatures(log.note() + line, [w.verifier])[0].timestamp == 1
    w.close()


def test_an_inconsistent_but_signed_checkpoint_is_kept_as_evidence(home: Path) -> None:
    log = MemoryLog().grow(10)
    w = Witness.open(home)
    w.store.add_log(ORIGIN, log.signer.verifier, 1)
    w.add_checkpoint(log.request(0))
    fork = log.fork(5).grow(5)
    with pytest.raises(Inconsistent):
        w.add_checkpoint(fork.request(10, 10))
    ((_, status, reason, request),) = w.store.refusals(ORIGIN)
    assert status == 422 and "split view" in reason and fork.note(10) in request
    with pytest.raises(SizeConflict):
        w.add_checkpoint(log.request(0))
    assert len(w.store.refusals(ORIGIN)) == 1  # a 409 is not evidence
    w.close()


def test_two_racing_requests_never_roll_back(home: Path) -> None:
    """tlog-witness's race: A (size N) and B (size N+K) both pass the check against the same
    state; whichever persists second must fail, never overwrite."""
    log = MemoryLog().grow(30)
    both_decided = threading.Barrier(2, timeout=30)
    w = Witness.open(home, before_persist=both_decided.wait)
    w.store.add_log(ORIGIN, log.signer.verifier, 1)
    results: dict[int, object] = {}

    def submit(size: int) -> None:
        try:
            results[size] = w.add_checkpoint(log.request(0, size))
        except SizeConflict as exc:
            results[size] = exc

    threads = [threading.Thread(target=submit, args=(n,)) for n in (10, 30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    winners = [n for n, r in results.items() if isinstance(r, str)]
    losers = [r for r in results.values() if isinstance(r, SizeConflict)]
    assert len(winners) == 1 and len(losers) == 1
    assert losers[0].known_size == winners[0]
    view = w.store.log_view(ORIGIN)
    assert view is not None and view.size == winners[0]
    w.close()


def test_init_makes_a_key_of_the_suite_asked_for(tmp_path: Path, suite: Suite) -> None:
    vkey = init_home(tmp_path / "w", NAME, 1, suite=suite)
    assert vkey.suite is suite
    assert suite_of(load_private_key(tmp_path / "w" / KEY_FILE)) is suite
    signer, store = open_home(tmp_path / "w")
    assert signer.verifier == vkey
    store.close()


def test_a_new_log_starts_at_its_suites_empty_root(tmp_path: Path, suite: Suite) -> None:
    store = WitnessStore(tmp_path / "s.db")
    log = MemoryLog.of_suite(suite)
    store.add_log(ORIGIN, log.signer.verifier, 1)
    view = store.log_view(ORIGIN)
    assert view is not None and view.suite is suite
    assert (view.size, view.root) == (0, suite.tree.empty_root)
    (row,) = store.logs()
    assert row.suite is suite


@pytest.mark.parametrize("witness_suite", list(SUITES))
def test_a_witness_of_either_kind_cosigns_a_log_of_either_suite(
    tmp_path: Path, suite: Suite, witness_suite: str
) -> None:
    init_home(tmp_path / "w", NAME, 1, suite=SUITES[witness_suite])
    log = MemoryLog.of_suite(suite).grow(9)
    w = Witness.open(tmp_path / "w", clock=lambda: 1_700_000_001.0)
    w.store.add_log(ORIGIN, log.signer.verifier, 1)
    first = w.add_checkpoint(log.request(0))
    log.grow(8)
    second = w.add_checkpoint(log.request(9))
    # The cosignature is the witness key's kind, whatever the log's suite.
    assert w.verifier.suite is SUITES[witness_suite]
    (got,) = verify_cosignatures(log.note() + second, [w.verifier])
    assert got.timestamp == 1_700_000_001
    assert verify_cosignatures(log.note(9) + first, [w.verifier])
    view = w.store.log_view(ORIGIN)
    assert view is not None and (view.size, view.root) == (17, log.root())
    w.close()


def test_an_sm2_log_is_not_proven_with_sha256(home: Path) -> None:
    """The same leaf hashes in a SHA-256 tree: a consistency proof that an ed25519-sha256
    log would pass does not prove the sm2-sm3 log's checkpoint, and is kept as evidence."""
    log = MemoryLog.of_suite(SM2_SM3).grow(9)
    w = Witness.open(home)
    w.store.add_log(ORIGIN, log.signer.verifier, 1)
    w.add_checkpoint(log.request(0))
    log.grow(8)
    sha = MemoryLog(leaves=list(log.leaves))
    with pytest.raises(Inconsistent, match="consistency proof"):
        w.add_checkpoint(request_body(9, sha.proof(9, 17), log.note()))
    assert [r[1] for r in w.store.refusals(ORIGIN)] == [422]
    w.add_checkpoint(log.request(9))
    w.close()
