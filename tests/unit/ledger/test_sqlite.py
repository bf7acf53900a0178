"""How every SQLite file is opened (``ledger.sqlite``): the ledger, the hub's access and
dead-letter files and the edge outbox all get the same connection settings."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from edge.errors import OutboxError
from edge.outbox import Outbox
from edge.status import read_status
from gateway.access.db import AccessDb
from gateway.ingest.deadletters import DeadLetters
from ledger.sqlite import BUSY_TIMEOUT_MS, connect, open_wal
from ledger.store import LedgerReader, LedgerWriter, NewEntry

SCHEMA = "CREATE TABLE IF NOT EXISTS t (x INTEGER PRIMARY KEY);"


def _pragmas(conn: sqlite3.Connection) -> tuple[str, int, int]:
    return (
        conn.execute("PRAGMA journal_mode").fetchone()[0],
        conn.execute("PRAGMA synchronous").fetchone()[0],
        conn.execute("PRAGMA busy_timeout").fetchone()[0],
    )


@pytest.mark.parametrize(("synchronous", "level"), [("FULL", 2), ("NORMAL", 1)])
def test_writers_are_wal_with_the_durability_asked(
    tmp_path: Path, synchronous: str, level: int
) -> None:
    conn = open_wal(tmp_path / "f.db", SCHEMA, synchronous=synchronous)  # type: ignore[arg-type]
    try:
        assert _pragmas(conn) == ("wal", level, BUSY_TIMEOUT_MS)
        assert conn.isolation_level is None  # transactions are ours to open
        conn.execute("INSERT INTO t VALUES (1)")
    finally:
        conn.close()
    again = open_wal(tmp_path / "f.db", SCHEMA)  # the schema script runs again harmlessly
    try:
        assert again.execute("SELECT x FROM t").fetchall() == [(1,)]
    finally:
        again.close()


def test_a_page_quota_is_applied(tmp_path: Path) -> None:
    conn = open_wal(tmp_path / "f.db", SCHEMA, max_page_count=50)
    try:
        assert conn.execute("PRAGMA max_page_count").fetchone()[0] == 50
    finally:
        conn.close()


def test_a_read_only_connection_cannot_write(tmp_path: Path) -> None:
    open_wal(tmp_path / "f.db", SCHEMA).close()
    conn = connect(tmp_path / "f.db", readonly=True)
    try:
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == BUSY_TIMEOUT_MS
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            conn.execute("INSERT INTO t VALUES (1)")
    finally:
        conn.close()
    with pytest.raises(sqlite3.OperationalError):
        connect(tmp_path / "missing.db", readonly=True)  # never created by a reader
    assert not (tmp_path / "missing.db").exists()


@pytest.mark.parametrize("name", ["odd #dir", "what?dir", "per%20cent", "sp ace"])
def test_files_under_names_that_look_like_uri_syntax_open_read_only(
    tmp_path: Path, name: str
) -> None:
    # The read-only connection is a file: URI; a '#' or '?' in the path once cut it short
    # (and opened, or created, some other file without mode=ro).
    path = tmp_path / name / "l.db"
    writer = LedgerWriter(path, origin="swiftchain.test/log")
    writer.append([NewEntry("access", b'{"kind":"access"}')])
    try:
        with LedgerReader(path) as reader:
            assert reader.size() == 1
        box = Outbox(tmp_path / name / "outbox.db")
        box.close()
        assert read_status(tmp_path / name / "outbox.db").depth == 0
    finally:
        writer.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_every_file_of_the_project_is_opened_the_same_way(tmp_path: Path) -> None:
    ledger = LedgerWriter(tmp_path / "l.db")
    access = AccessDb(tmp_path / "l.db.access")
    dead = DeadLetters(tmp_path / "l.db.dead", max_rows=10)
    box = Outbox(tmp_path / "outbox.db")
    try:
        assert _pragmas(ledger.conn) == ("wal", 2, BUSY_TIMEOUT_MS)
        assert _pragmas(access.conn) == ("wal", 2, BUSY_TIMEOUT_MS)
        # Dead letters are a diagnostic: NORMAL is enough (see gateway.ingest.deadletters).
        assert _pragmas(dead._conn) == ("wal", 1, BUSY_TIMEOUT_MS)
        assert _pragmas(box.conn) == ("wal", 2, BUSY_TIMEOUT_MS)
    finally:
        ledger.close()
        access.close()
        dead.close()
        box.close()


def test_an_unusable_file_gets_each_owners_error(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(b"not a database" * 100)
    with pytest.raises(OutboxError, match="is not a usable outbox"):
        Outbox(path)
