"""The hostile world at once: several edge agents (``swiftchain edge`` processes) stream into
a hub (``swiftchain hub`` process) through a real Mosquitto while hospital and public
clients query it; the hub is killed with SIGKILL at seeded random moments, the broker is
restarted, agents are killed, and the ledger's disk quota runs out and is raised again.

After every round: every record fed so far is on the log exactly once (seqs 1..n per
source, each marker once), every outbox drains, ``verify_ledger`` is green, and no query
returned data it should not.

``SWIFTCHAIN_FAULT_ROUNDS`` (default 10) sets the rounds; each round kills
the hub once and an agent once, every other round restarts the broker.
``SWIFTCHAIN_FAULT_AGENTS`` (default 6) sets the agents, ``SWIFTCHAIN_FAULT_SEED`` the seed.
"""

from __future__ import annotations

import json
import os
import random
import re
import sqlite3
import threading
import time
import urllib.error
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from edge.errors import OutboxError
from edge.status import read_status
from ledger.envelope import utc_now
from ledger.store import LedgerReader
from ledger.verify import verify_ledger
from tests.support.access import HOSPITAL, HospitalClient, http
from tests.support.broker import Mosquitto
from tests.support.edge import EdgeProcess, write_edge_config
from tests.support.hub import ProcessHub, process_hub

from .conftest import FaultTally

ROUNDS = int(os.environ.get("SWIFTCHAIN_FAULT_ROUNDS", "10"))
AGENTS = int(os.environ.get("SWIFTCHAIN_FAULT_AGENTS", "6"))
SEED = int(os.environ.get("SWIFTCHAIN_FAULT_SEED", "20261129"))
PILOT, TYPE = "demo-zone", "city.parking"
#: Files per agent per round, records per file.
FILES, PER_FILE = 4, 50
#: Bound on every wait for the system to settle after a fault.
SETTLE_S = 90.0


@dataclass
class Feed:
    """One agent and what it has been given: the markers it must deliver exactly once."""

    source: str
    inbox: Path
    agent: EdgeProcess
    outbox: Path
    fed: int = 0

    def feed(self, files: int) -> None:
        for _ in range(files):
            lines = "".join(
                json.dumps({"type": TYPE, "payload": parking(self.source, self.fed + i)}) + "\n"
                for i in range(PER_FILE)
            )
            # Written aside and renamed, so the directory source never sees half a file.
            tmp = self.inbox.parent / f".{self.source}-{self.fed}.tmp"
            tmp.write_text(lines)
            tmp.rename(self.inbox / f"batch-{self.fed:06d}.ndjson")
            self.fed += PER_FILE

    def describe(self) -> str:
        try:
            status = read_status(self.outbox)
        except OutboxError as exc:
            return f"{self.source}: {exc}"
        waiting = len(list(self.inbox.glob("*.ndjson")))
        return (
            f"{self.source}: fed {self.fed}, last_seq {status.last_seq}, depth {status.depth}, "
            f"dead {status.dead_letters_total}, files waiting {waiting}"
        )

    def settled(self) -> bool:
        failed = self.inbox / "failed"
        assert not (failed.is_dir() and any(failed.iterdir())), self.describe()
        if list(self.inbox.glob("*.ndjson")):
            return False
        try:
            status = read_status(self.outbox)
        except OutboxError:
            return False
        return status.depth == 0 and status.last_seq == self.fed


def parking(facility: str, occupied: int) -> dict[str, Any]:
    return {
        "facility": facility,
        "observed_at": utc_now(),
        "capacity": 100_000,
        "occupied": occupied,
    }


class Queries:
    """Hospital and anonymous clients reading the hub while it is being hurt, in a thread.

    Each query either fails to connect (the hub is down: fine) or must not return data its
    caller may not see: the hospital reads a patient nobody consented for, and the city
    pilot it has no role in; an anonymous caller reads records; everyone reads the public
    ledger, whose entries must never carry a body.
    """

    def __init__(self, hub: ProcessHub, client: HospitalClient, token: str) -> None:
        self.hub, self.client, self.token = hub, client, token
        self.count = 0
        self.violations: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fault-queries", daemon=True)

    def __enter__(self) -> Queries:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        # Bounded: at most this many queries, however long the faults take.
        for i in range(100_000):
            if self._stop.is_set():
                return
            try:
                self._one(i)
            except (urllib.error.URLError, ConnectionError, OSError, TimeoutError):
                time.sleep(0.1)  # the hub is down; that refuses everything, which is fine
            self.count += 1
            time.sleep(0.02)

    def _one(self, i: int) -> None:
        base = self.hub.http_url
        kind = i % 4
        if kind == 0:
            query = urllib.parse.urlencode({"subject": "Patient/no-consent-anywhere"})
            status, _, body = self.client.call("GET", f"/fhir/Observation?{query}", self.token)
            if status == 200 and body.get("entry"):
                self.violations.append(f"unconsented patient's data returned: {body}")
        elif kind == 1:
            status, _, body = self.client.call(
                "GET", f"/api/v1/records?pilot={PILOT}&type={TYPE}", self.token
            )
            if status == 200 and (body.get("records") or body.get("entry")):
                self.violations.append(f"another pilot's records returned: {str(body)[:300]}")
        elif kind == 2:
            status, _, body = http("GET", f"{base}/fhir/Observation")
            if status == 200:
                self.violations.append(f"anonymous read answered: {str(body)[:300]}")
        else:
            status, _, body = http("GET", f"{base}/api/v1/ledger/entries?start=0&end=50")
            if status == 200:
                for entry in body.get("entries", []):
                    leaf = json.dumps(entry)
                    if '"payload"' in leaf or '"salt"' in leaf or "occupied" in leaf:
                        self.violations.append(f"a body on the public ledger: {leaf[:300]}")


def wait_for(condition: Any, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {within}s")
        time.sleep(0.2)


def check_log(hub: ProcessHub, feeds: list[Feed]) -> int:
    """Every fed record on the log exactly once and the whole log verified; how many."""
    report = verify_ledger(hub.db_path)
    assert report.ok, report.problems[:5]
    checked = 0
    with LedgerReader(hub.db_path) as ledger:
        for feed in feeds:
            rows = ledger.conn.execute(
                "SELECT r.seq, b.payload FROM records r JOIN bodies b ON b.idx = r.idx"
                " WHERE r.pilot = ? AND r.source = ? ORDER BY r.seq",
                (PILOT, feed.source),
            ).fetchall()
            seqs = [r[0] for r in rows]
            markers = [json.loads(r[1])["occupied"] for r in rows]
            assert seqs == list(range(1, feed.fed + 1)), f"{feed.source}: seqs not 1..{feed.fed}"
            assert sorted(markers) == list(range(feed.fed)), f"{feed.source}: lost or doubled"
            checked += len(rows)
    return checked


def set_quota(hub: ProcessHub, pages: int | None) -> None:
    """Write (or remove) the ledger's disk quota in the hub's config file."""
    text = re.sub(r"(?m)^max_page_count = .*\n", "", hub.config_path.read_text())
    if pages is not None:
        text += f"max_page_count = {pages}\n"
    hub.config_path.write_text(text)


def page_count(db: Path) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return int(conn.execute("PRAGMA page_count").fetchone()[0])
    finally:
        conn.close()


def metric(hub: ProcessHub, name: str) -> float:
    for line in hub.get_text("/metrics").splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Mosquitto, ProcessHub, list[Feed]]]:
    (tmp_path / "mosquitto").mkdir()
    broker = Mosquitto(tmp_path / "mosquitto")
    broker.start()
    hub = process_hub(tmp_path / "hub", broker.url, batch_max_ms=5)
    feeds: list[Feed] = []
    try:
        hub.start()
        for n in range(AGENTS):
            source = f"car-park-{n}"
            key, _ = hub.register_source(PILOT, source, [TYPE])
            inbox = tmp_path / f"inbox-{n}"
            inbox.mkdir()
            config = write_edge_config(
                tmp_path / source,
                pilot=PILOT,
                source=source,
                key_file=key,
                broker_url=broker.url,
                hub_url=hub.http_url,
                hub_key=hub.log_key,
                publish={"republish_after": 2.0, "republish_max": 4.0},
                directory={"enabled": True, "path": str(inbox), "poll_interval": 0.1, "settle": 0},
            )
            feeds.append(Feed(source, inbox, EdgeProcess(config), tmp_path / source / "outbox.db"))
        for feed in feeds:
            feed.agent.start()
        yield broker, hub, feeds
    finally:
        for feed in feeds:
            feed.agent.kill()
        hub.stop()
        broker.stop()


def test_agents_hub_broker_and_disk_fail_and_nothing_is_lost(
    world: tuple[Mosquitto, ProcessHub, list[Feed]], tally: FaultTally
) -> None:
    broker, hub, feeds = world
    rng = random.Random(SEED)
    hospital = HospitalClient(hub, "fault-ehr", HOSPITAL).register()
    token = hospital.token()

    distinct = [0]

    def settle(after: str) -> None:
        what = f"outboxes drained {after}"
        try:
            wait_for(lambda: all(f.settled() for f in feeds), SETTLE_S, what)
        except TimeoutError:
            raise AssertionError("; ".join(f.describe() for f in feeds)) from None
        checked = check_log(hub, feeds)
        tally.records_checked += checked
        distinct[0] = checked

    with Queries(hub, hospital, token) as queries:
        for round_no in range(ROUNDS):
            for feed in feeds:
                feed.feed(FILES)
            # The hub dies with records in flight, at a seeded random moment.
            time.sleep(rng.uniform(0.2, 1.5))
            hub.kill()
            tally.fault("hub kill -9")
            time.sleep(rng.uniform(0.0, 1.0))
            hub.start()
            # An agent dies mid-stream.
            for feed in feeds:
                feed.feed(1)
            victim = rng.choice(feeds)
            time.sleep(rng.uniform(0.1, 1.0))
            victim.agent.kill()
            tally.fault("agent kill -9")
            victim.agent.start()
            if round_no % 2 == 0:
                for feed in feeds:
                    feed.feed(1)
                time.sleep(rng.uniform(0.1, 1.0))
                broker.stop()
                tally.fault("broker restart")
                time.sleep(rng.uniform(0.2, 1.0))
                broker.start()
            settle(f"after round {round_no + 1}")

        # The disk fills: a quota a few pages above what the ledger holds now.
        hub.kill()
        set_quota(hub, page_count(hub.db_path) + 8)
        hub.start()
        tally.fault("ledger disk full")
        for feed in feeds:
            feed.feed(FILES)
        wait_for(
            lambda: metric(hub, "swiftchain_commit_failures_total") > 0,
            SETTLE_S,
            "a commit failing on the full disk",
        )
        # Full: nothing more is acknowledged, so the outboxes hold on to the records.
        time.sleep(1.0)
        assert not all(f.settled() for f in feeds)
        # Recover: raise the quota and restart the hub, as an operator would.
        hub.kill()
        set_quota(hub, None)
        hub.start()
        settle("after the disk quota was raised")
    tally.distinct_records += distinct[0]
    tally.queries += queries.count
    tally.query_violations += len(queries.violations)
    assert not queries.violations, queries.violations[:3]
    assert queries.count > 0
    assert sum(f.fed for f in feeds) == AGENTS * PER_FILE * (
        ROUNDS * (FILES + 1) + (ROUNDS + 1) // 2 + FILES
    )
