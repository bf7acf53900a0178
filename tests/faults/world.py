"""The fault suite's world: a real Mosquitto, a ``swiftchain hub`` process and several
``swiftchain edge`` processes streaming parking readings into it from watched folders, and
the checks that nothing fed was lost or doubled."""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.errors import OutboxError
from edge.status import read_status
from ledger.envelope import utc_now
from ledger.queries import MAX_HELD_RECORDS
from ledger.store import LedgerReader
from ledger.verify import verify_ledger
from tests.support.broker import Mosquitto
from tests.support.edge import EdgeProcess, write_edge_config
from tests.support.hub import HubHandle, ProcessHub, process_hub
from tests.support.postgres import SmallDisk

PILOT, TYPE = "demo-zone", "city.parking"
#: Records per file an agent is fed.
PER_FILE = 50
#: Bound on every wait for the system to settle after a fault (a bound on a hang: the
#: machine may be busy with other work).
SETTLE_S = 180.0


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


def wait_for(condition: Callable[[], bool], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {within}s")
        time.sleep(0.2)


def settle(feeds: list[Feed], after: str) -> None:
    """Until every agent delivered everything it was fed (bounded)."""
    try:
        wait_for(lambda: all(f.settled() for f in feeds), SETTLE_S, f"outboxes drained {after}")
    except TimeoutError:
        raise AssertionError("; ".join(f.describe() for f in feeds)) from None


def check_log(hub: ProcessHub, feeds: list[Feed]) -> int:
    """Every fed record on the log exactly once and the whole log verified; how many. On
    either store: the ledger where the hub's settings put it."""
    where = hub.ledger_location
    report = verify_ledger(where)
    assert report.ok, report.problems[:5]
    checked = 0
    # The bodies are sealed under data keys: read with the hub's key store.
    with hub.key_store() as keys, LedgerReader(where, keys=keys) as ledger:
        for feed in feeds:
            rows = ledger.conn.execute(
                "SELECT r.seq, r.idx FROM records r WHERE r.pilot = ? AND r.source = ?"
                " ORDER BY r.seq",
                (PILOT, feed.source),
            ).fetchall()
            seqs = [int(r[0]) for r in rows]
            indexes = [int(r[1]) for r in rows]
            # The markers through the reader's own query, which reads a body however the
            # store holds it.
            markers = [
                json.loads(payload)["occupied"]
                for start in range(0, len(indexes), MAX_HELD_RECORDS)
                for _, payload in ledger.held_payloads(indexes[start : start + MAX_HELD_RECORDS])
            ]
            assert seqs == list(range(1, feed.fed + 1)), f"{feed.source}: seqs not 1..{feed.fed}"
            assert sorted(markers) == list(range(feed.fed)), f"{feed.source}: lost or doubled"
            checked += len(rows)
    return checked


def set_quota(hub: HubHandle, pages: int | None) -> None:
    """Write (or remove) the ledger's disk quota in the hub's config file (SQLite's
    ``max_page_count``: a PostgreSQL ledger has no quota of its own)."""
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


#: How each store says its disk is full (SQLITE_FULL's message; ENOSPC's, from PostgreSQL).
FULL = re.compile(r"full|No space left on device")
#: A PostgreSQL block (BLCKSZ): what a table grows by.
PG_BLOCK = 8192


@dataclass
class Disk:
    """Where a test hub's ledger is (``settings`` for its config), and how its disk fills:
    on SQLite the ledger file's ``max_page_count`` quota (SQLite enforces it exactly as a
    full disk, SQLITE_FULL); on PostgreSQL a real full disk, the ledger's database in a
    tablespace on a small tmpfs (``small``), or None where none could be mounted."""

    settings: dict[str, Any]
    small: SmallDisk | None = None
    on_postgres: bool = False

    @property
    def can_fill(self) -> bool:
        return self.small is not None or not self.on_postgres

    def fill(self, hub: HubHandle, spare_pages: int = 0) -> None:
        """No room for the ledger to grow but about ``spare_pages`` pages (a SQLite
        quota takes effect at the hub's next start)."""
        if self.small is not None:
            self.small.fill(spare_pages * PG_BLOCK)
        else:
            assert not self.on_postgres, "no small disk to fill"
            set_quota(hub, page_count(hub.db_path) + spare_pages)

    def clear(self, hub: HubHandle) -> None:
        """Room again (for SQLite: at the hub's next start)."""
        if self.small is not None:
            self.small.clear()
        else:
            set_quota(hub, None)


def metric(hub: ProcessHub, name: str) -> float:
    for line in hub.get_text("/metrics").splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def start_feeds(tmp_path: Path, hub: ProcessHub, broker: Mosquitto, agents: int) -> list[Feed]:
    """``agents`` edge processes, each a source registered through ``hub`` and watching an
    inbox of its own, started."""
    feeds = []
    for n in range(agents):
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
    return feeds


@contextmanager
def streaming_world(
    tmp_path: Path, agents: int, **hub_settings: Any
) -> Iterator[tuple[Mosquitto, ProcessHub, list[Feed]]]:
    """A broker, a hub process and ``agents`` edge processes, each watching an inbox; all
    killed at the end, whatever happened."""
    (tmp_path / "mosquitto").mkdir()
    broker = Mosquitto(tmp_path / "mosquitto")
    broker.start()
    hub = process_hub(tmp_path / "hub", broker.url, batch_max_ms=5, **hub_settings)
    feeds: list[Feed] = []
    try:
        hub.start()
        feeds = start_feeds(tmp_path, hub, broker, agents)
        yield broker, hub, feeds
    finally:
        for feed in feeds:
            feed.agent.kill()
        hub.stop()
        broker.stop()
