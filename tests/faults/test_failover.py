"""Two hubs on one PostgreSQL log: the standby takes over a killed hub, and a sequencer
frozen while it does so commits nothing after (ledger/lease.py, gateway/cluster/standby.py).
And the database restarted under load: the hub waits and resumes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from ledger.store import LedgerReader
from ledger.verify import verify_ledger
from tests.support.broker import Mosquitto
from tests.support.hub import ProcessHub, process_hub
from tests.support.postgres import can_make_cluster, own_cluster

from .world import PILOT, SETTLE_S, Feed, settle, start_feeds, wait_for

#: Short, so that a frozen holder's lease runs out within the test.
TTL_S = 2.0

pytestmark = pytest.mark.timeout(600)


def _role(hub: ProcessHub) -> str:
    """ "active" or "standby", as the hub's /readyz tells (or "down")."""
    try:
        with urllib.request.urlopen(hub.http_url + "/readyz", timeout=5) as resp:
            return "active" if resp.status == 200 else "down"
    except urllib.error.HTTPError as exc:
        body = json.loads(exc.read() or b"{}")
        return "standby" if "standby" in str(body.get("detail", "")) else "down"
    except OSError:
        return "down"


def _status(hub: ProcessHub, path: str) -> int:
    try:
        with urllib.request.urlopen(hub.http_url + path, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def _hubs(tmp_path: Path, broker: Mosquitto, url: str) -> tuple[ProcessHub, ProcessHub]:
    """Two hubs of one log: the same database, signing key, origin and share group."""
    common: dict[str, Any] = {
        "ledger_url": url,
        "lease_ttl_s": TTL_S,
        "batch_max_ms": 5,
        "mqtt_share_group": "failover",
        "workers": 1,
    }
    a = process_hub(tmp_path / "hub-a", broker.url, **common)
    (tmp_path / "hub-b").mkdir()
    shutil.copy(tmp_path / "hub-a" / "hub.key", tmp_path / "hub-b" / "hub.key")
    b = process_hub(tmp_path / "hub-b", broker.url, **common)
    return a, b


def check_log(url: str, feeds: list[Feed]) -> int:
    """Every fed record on the log exactly once, and the whole log verified."""
    report = verify_ledger(url)
    assert report.ok, report.problems[:5]
    checked = 0
    with LedgerReader(url) as ledger:
        for feed in feeds:
            rows = ledger.conn.execute(
                "SELECT r.seq FROM records r WHERE r.pilot = ? AND r.source = ? ORDER BY r.seq",
                (PILOT, feed.source),
            ).fetchall()
            seqs = [int(r[0]) for r in rows]
            assert seqs == list(range(1, feed.fed + 1)), f"{feed.source}: lost or doubled"
            checked += len(rows)
    return checked


def _log_size(url: str) -> int:
    with LedgerReader(url) as ledger:
        return ledger.size()


def test_the_standby_takes_over_a_killed_hub(
    tmp_path: Path, hub_broker: Mosquitto, pg_url: str
) -> None:
    a, b = _hubs(tmp_path, hub_broker, pg_url)
    feeds: list[Feed] = []
    try:
        a.start()
        b.start(wait=False)
        b.wait_listening()
        wait_for(lambda: _role(b) == "standby", 60, "hub B is a standby")
        # A standby serves the public log, and nothing about a person.
        assert b.get_json("/api/v1/ledger/checkpoint")
        feeds = start_feeds(tmp_path, a, hub_broker, 3)
        for feed in feeds:
            feed.feed(4)
        wait_for(lambda: _log_size(pg_url) > 200, SETTLE_S, "records on the log")
        # The standby follows the log: the sources registered through A are B's too.
        wait_for(
            lambda: len(b.get_json("/api/v1/registry/sources").get("sources", [])) == 3,
            60,
            "the standby knows the sources",
        )
        assert _status(b, "/fhir/metadata") == 200  # the public part
        assert _status(b, "/fhir/Observation?patient=x") == 503  # nothing about a person
        assert _status(b, "/api/v1/admin/dead-letters") == 503
        for feed in feeds:
            feed.feed(4)
        killed = time.monotonic()
        a.kill()
        wait_for(lambda: _role(b) == "active", 60, "hub B took over")
        took = time.monotonic() - killed
        print(f"\ntakeover after kill -9: {took:.2f} s")
        (tmp_path / "takeover.txt").write_text(f"{took:.3f}\n")
        for feed in feeds:
            feed.feed(4)
        settle(feeds, "after the takeover")
        assert check_log(pg_url, feeds) == sum(f.fed for f in feeds)
        assert "took the log over" in b.log_text()
    finally:
        for feed in feeds:
            feed.agent.kill()
        a.stop()
        b.stop()


def test_a_frozen_sequencer_commits_nothing_after_the_takeover(
    tmp_path: Path, hub_broker: Mosquitto, pg_url: str
) -> None:
    a, b = _hubs(tmp_path, hub_broker, pg_url)
    feeds: list[Feed] = []
    frozen: int | None = None
    try:
        a.start()
        b.start(wait=False)
        b.wait_listening()
        wait_for(lambda: _role(b) == "standby", 60, "hub B is a standby")
        feeds = start_feeds(tmp_path, a, hub_broker, 2)
        for feed in feeds:
            feed.feed(2)
        wait_for(lambda: _log_size(pg_url) > 50, SETTLE_S, "records on the log")
        [frozen] = a.children("sequencer")
        os.kill(frozen, signal.SIGSTOP)
        # A's front ends still take records and queue them to their frozen sequencer.
        for feed in feeds:
            feed.feed(2)
        wait_for(lambda: _role(b) == "active", 60, "hub B took over from the frozen one")
        for feed in feeds:
            feed.feed(2)
        os.kill(frozen, signal.SIGCONT)
        frozen = None
        # Its queued batch meets the new epoch: refused, logged, and hub A stops.
        assert a.proc is not None
        a.proc.wait(60)
        text = a.log_text()
        assert "fenced" in text, text[-3000:]
        assert a.proc.returncode != 0
        for feed in feeds:
            feed.feed(2)
        settle(feeds, "after the fenced sequencer stopped")
        assert check_log(pg_url, feeds) == sum(f.fed for f in feeds)
    finally:
        if frozen is not None:
            os.kill(frozen, signal.SIGCONT)
        for feed in feeds:
            feed.agent.kill()
        if a.proc is not None and a.proc.poll() is None:
            a.stop()
        a.proc = None
        b.stop()


@pytest.mark.skipif(not can_make_cluster(), reason="no initdb/postgres to start a server with")
def test_postgresql_restarted_under_load_loses_nothing_receipted(
    tmp_path: Path, hub_broker: Mosquitto
) -> None:
    with own_cluster() as cluster:
        hub = process_hub(
            tmp_path / "hub", hub_broker.url, ledger_url=cluster.url, batch_max_ms=5, workers=1
        )
        feeds: list[Feed] = []
        try:
            hub.start()
            feeds = start_feeds(tmp_path, hub, hub_broker, 2)
            for feed in feeds:
                feed.feed(4)
            wait_for(lambda: _log_size(cluster.url) > 100, SETTLE_S, "records on the log")
            cluster.stop()
            for feed in feeds:
                feed.feed(2)
            time.sleep(2)
            cluster.start()
            for feed in feeds:
                feed.feed(2)
            settle(feeds, "after PostgreSQL came back")
            assert check_log(cluster.url, feeds) == sum(f.fed for f in feeds)
            assert hub.proc is not None and hub.proc.poll() is None, "the hub stopped"
        finally:
            for feed in feeds:
                feed.agent.kill()
            hub.stop()
