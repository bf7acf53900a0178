"""A mirror's hostile world: a kill -9 mid-catch-up and a resume that fetches only what was
missing; a hub restored from an old copy of its ledger and appended differently with the
same key (a split view), detected: following and cosigning stop, both checkpoints are kept
as evidence (state and file), ``/readyz`` is 503 with the reason and ``/metrics`` says so
(on a log of either crypto suite)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from ledger.keys import generate_key, load_private_key
from ledger.suite import Suite
from tests.support.broker import Mosquitto
from tests.support.hub import SWIFTCHAIN
from tests.support.ledger_builder import LedgerBuilder
from tests.support.mirror import (
    MirrorProcess,
    build_hub_dir,
    built_hub,
    get,
    make_mirror,
    restore,
    wait_for,
)


def fetched(metrics: str) -> float:
    match = re.search(r"^swiftchain_mirror_fetched_entries_total (\S+)$", metrics, re.M)
    assert match, metrics
    return float(match.group(1))


def test_kill_9_mid_catch_up_resumes_without_refetching(
    tmp_path: Path, hub_broker: Mosquitto
) -> None:
    total = 30_000 + 1
    build_hub_dir(tmp_path / "hub", total - 1)
    with built_hub(tmp_path / "hub", hub_broker.url) as hub:
        mirror = MirrorProcess(make_mirror(tmp_path / "mirror", hub))
        mirror.start()
        wait_for(lambda: mirror.status()["stored"] >= 3000, "3000 entries in")
        mirror.kill()
        mirror.start()
        held = mirror.status()["stored"]
        assert 3000 <= held < total, held  # mid-catch-up, and nothing held was lost
        wait_for(lambda: mirror.status()["verified"] == total, "caught up")
        # The second run fetched only what the first had not committed.
        assert fetched(get(mirror.url + "/metrics")[1]) == total - held
        mirror.stop()
    done = subprocess.run(
        [SWIFTCHAIN, "ledger", "verify", str(mirror.directory / "ledger.db"), "--quiet"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("rewritten", "why"),
    [(1, "signed root"), (3, "not consistent")],
    ids=["same-size-other-root", "inconsistent-larger-tree"],
)
def test_a_hub_restored_and_appended_differently_is_a_fork(
    tmp_path: Path, hub_broker: Mosquitto, rewritten: int, why: str, suite: Suite
) -> None:
    hub_dir = tmp_path / "hub"
    build_hub_dir(hub_dir, 500, suite=suite)
    backup = tmp_path / "backup.db"
    shutil.copyfile(hub_dir / "ledger.db", backup)
    mirror_dir = tmp_path / "mirror"
    with built_hub(hub_dir, hub_broker.url) as hub:
        mirror = MirrorProcess(make_mirror(mirror_dir, hub))
        mirror.start()
        hub.add_org("member-a")  # one entry past the backup: the history to be rewritten
        size = hub.get_json("/api/v1/ledger/entries?start=0&end=0")["size"]
        wait_for(lambda: mirror.status()["verified"] == size, "caught up")
        held_note = get(mirror.url + "/api/v1/ledger/checkpoint")[1]
    # The operator restores the old copy and appends something else, with the same key.
    restore(backup, hub_dir / "ledger.db")
    other = LedgerBuilder(
        hub_dir / "ledger.db",
        hub_key=load_private_key(hub_dir / "hub.key"),
        source_key=generate_key(suite),
    )
    for _ in range(rewritten):
        other.register_source()
    other.checkpoint()
    other.close()
    port = int(hub.http_url.rsplit(":", 1)[1])
    with built_hub(hub_dir, hub_broker.url, port) as hub:
        wait_for(lambda: mirror.status()["fork"] is not None, "forked")
        status = mirror.status()
        assert why in status["fork"]["reason"]
        code, ready = get(mirror.url + "/readyz")
        assert code == 503 and ready["error"] == "fork" and why in ready["detail"]
        assert "swiftchain_mirror_fork 1.0" in get(mirror.url + "/metrics")[1]
        # Both signed checkpoints are kept, in the state and in the evidence file.
        hub_note = hub.get_text("/api/v1/ledger/checkpoint")
        evidence = json.loads((mirror_dir / "fork-evidence.json").read_text())
        assert evidence == status["fork"]
        assert held_note.startswith(evidence["held"]["note"])
        assert evidence["hub"]["note"] == hub_note
        # Cosigning stopped: it still serves what it held, cosigned, and nothing newer.
        assert get(mirror.url + "/api/v1/ledger/checkpoint")[1] == held_note
        # A restart keeps the fork: no following, still 503.
        mirror.kill()
        mirror.start()
        assert get(mirror.url + "/readyz")[0] == 503
        assert mirror.status()["verified"] == size
        mirror.stop()
    done = subprocess.run(
        [SWIFTCHAIN, "mirror", "status", "--dir", str(mirror_dir)], capture_output=True, text=True
    )
    assert done.returncode == 1 and "FORK" in done.stdout, done.stdout + done.stderr
