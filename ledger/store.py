"""The ledger on SQLite: entries with their exact leaf bytes, node hashes, checkpoints, and
erasable record bodies.

One writer (the hub's sequencer) appends batches in single durable transactions
(WAL, synchronous=FULL); readers use their own read-only connections. Schema and ordinary
queries go through sqlite-utils; the hot append path uses the raw connection's
``executemany``, which is what the append-rate target needs.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path
from typing import Any

import sqlite_utils

from .errors import LedgerError, StoreError
from .hashing import EMPTY_ROOT, HASH_SIZE, LEAF_PREFIX
from .tree import (
    Frontier,
    Node,
    consistency_ranges,
    fold_right,
    hashes_for_ranges,
    inclusion_ranges,
    range_nodes,
)

SCHEMA_VERSION = "1"

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS entries (
    idx INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    leaf BLOB NOT NULL,
    leaf_hash BLOB NOT NULL,
    -- The complete subtrees this leaf closes, levels 1, 2, ... concatenated (32 bytes each):
    -- node (level, i) covers leaves [i << level, (i + 1) << level) and is closed by the leaf
    -- at index ((i + 1) << level) - 1. Keeping them on the entry's row makes an append one
    -- row write and a node lookup a primary-key read.
    nodes BLOB NOT NULL,
    sig TEXT,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS records (
    idx INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    pilot TEXT NOT NULL,
    source TEXT NOT NULL,
    seq INTEGER NOT NULL,
    type TEXT NOT NULL,
    subject TEXT,
    consent TEXT,
    observed_at TEXT NOT NULL,
    key TEXT NOT NULL,
    UNIQUE (pilot, source, seq)
);
CREATE INDEX IF NOT EXISTS records_by_type ON records (pilot, type, observed_at);
CREATE INDEX IF NOT EXISTS records_by_subject ON records (subject, type, observed_at)
    WHERE subject IS NOT NULL;
-- Bodies live off-log and can be erased; the leaf (and every proof) stays valid.
CREATE TABLE IF NOT EXISTS bodies (
    idx INTEGER PRIMARY KEY,
    payload BLOB NOT NULL,
    salt TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS checkpoints (
    size INTEGER PRIMARY KEY,
    root BLOB NOT NULL,
    note TEXT NOT NULL,
    created_at REAL NOT NULL
);
"""

RECORD_COLUMNS = (
    # The signed header's fields the records table indexes, in column order.
    "id",
    "pilot",
    "source",
    "seq",
    "type",
    "subject",
    "consent",
    "observed_at",
    "key",
)
#: Largest range one entries() call returns.
MAX_ENTRIES_PAGE = 1000


@dataclass(frozen=True)
class RecordColumns:
    """The header fields the store indexes records by (copied from the signed header)."""

    id: str
    pilot: str
    source: str
    seq: int
    type: str
    subject: str | None
    consent: str | None
    observed_at: str
    key: str


@dataclass(frozen=True)
class NewEntry:
    kind: str
    leaf: bytes
    sig: str | None = None
    record: RecordColumns | None = None
    payload: bytes | None = None
    """JCS(payload) of a record's body, stored off-log."""
    salt: str | None = None


@dataclass(frozen=True)
class Entry:
    index: int
    kind: str
    leaf: bytes
    leaf_hash: bytes
    sig: str | None


@dataclass(frozen=True)
class StoredCheckpoint:
    size: int
    root: bytes
    note: str
    created_at: float


#: SQLite INTEGER is a signed 64-bit number; no index or size can be larger.
_MAX_INDEX = 2**63 - 1


def _check_int(value: object, what: str) -> int:
    # bool is an int subclass; True is not an index.
    if type(value) is not int or not -_MAX_INDEX <= value <= _MAX_INDEX:
        raise StoreError(f"{what} must be an integer, not {value!r}")
    return value


def _connect(path: Path, readonly: bool) -> sqlite3.Connection:
    try:
        if readonly:
            conn = sqlite3.connect(
                f"file:{path}?mode=ro", uri=True, check_same_thread=False, isolation_level=None
            )
        else:
            conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA busy_timeout = 10000")
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open ledger {path}: {exc}") from None
    return conn


class LedgerReader:
    """Read access to a ledger file on a connection of its own."""

    def __init__(self, path: Path | str, *, _conn: sqlite3.Connection | None = None) -> None:
        self.path = Path(path)
        if _conn is None and not self.path.exists():
            raise StoreError(f"no ledger at {self.path}")
        if self.path.is_dir():
            raise StoreError(f"{self.path} is a directory, not a ledger file")
        self.conn = _conn or _connect(self.path, readonly=True)
        self.db = sqlite_utils.Database(self.conn)
        if _conn is None:
            self._check_schema()

    def _check_schema(self) -> None:
        try:
            row = self.conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path} is not a Swiftchain ledger: {exc}") from None
        if row is None or row[0] != SCHEMA_VERSION:
            raise StoreError(f"{self.path} is not a Swiftchain ledger (schema {row})")

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> LedgerReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- metadata -------------------------------------------------------------------------
    def meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def size(self) -> int:
        row = self.conn.execute("SELECT max(idx) FROM entries").fetchone()
        return 0 if row[0] is None else int(row[0]) + 1

    # -- nodes, roots and proofs -----------------------------------------------------------
    def nodes(self, wanted: Sequence[Node]) -> dict[Node, bytes]:
        """Stored hashes of the given complete subtrees (level 0 = leaf hashes)."""
        if not wanted:
            return {}
        by_row: dict[int, list[Node]] = {}
        for lvl, i in wanted:
            by_row.setdefault(((i + 1) << lvl) - 1, []).append((lvl, i))
        marks = ",".join("?" * len(by_row))
        found: dict[Node, bytes] = {}
        for row, lh, blob in self.conn.execute(
            f"SELECT idx, leaf_hash, nodes FROM entries WHERE idx IN ({marks})", list(by_row)
        ):
            for lvl, i in by_row[row]:
                h = lh if lvl == 0 else blob[(lvl - 1) * HASH_SIZE : lvl * HASH_SIZE]
                if len(h) == HASH_SIZE:
                    found[(lvl, i)] = h
        return found

    def _check_size(self, size: int, what: str = "size") -> None:
        _check_int(size, what)
        current = self.size()
        if not 0 <= size <= current:
            raise StoreError(f"{what} {size} is outside the log (0..{current})")

    def root(self, size: int) -> bytes:
        """MTH of the first ``size`` entries, from O(log n) stored nodes."""
        self._check_size(size)
        if size == 0:
            return EMPTY_ROOT
        nodes = range_nodes(0, size)
        found = self.nodes(nodes)
        return fold_right([found[n] for n in nodes])

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        self._check_size(size)
        _check_int(index, "index")
        if not 0 <= index < size:
            raise StoreError(f"index {index} is outside a tree of size {size}")
        return hashes_for_ranges(inclusion_ranges(index, size), self.nodes)

    def consistency_proof(self, first: int, second: int) -> list[bytes]:
        self._check_size(second, "second")
        _check_int(first, "first")
        if not 0 < first <= second:
            raise StoreError(f"no consistency proof from size {first} to size {second}")
        return hashes_for_ranges(consistency_ranges(first, second), self.nodes)

    # -- entries ---------------------------------------------------------------------------
    def entries(self, start: int, end: int) -> list[Entry]:
        _check_int(start, "start")
        _check_int(end, "end")
        if not 0 <= start <= end or end - start > MAX_ENTRIES_PAGE:
            raise StoreError(f"entries range [{start}, {end}) is empty, reversed or too long")
        rows = self.conn.execute(
            "SELECT idx, kind, leaf, leaf_hash, sig FROM entries"
            " WHERE idx >= ? AND idx < ? ORDER BY idx",
            (start, end),
        ).fetchall()
        return [Entry(*row) for row in rows]

    def entry(self, index: int) -> Entry:
        _check_int(index, "index")
        rows = self.entries(index, index + 1) if 0 <= index < _MAX_INDEX else []
        if not rows:
            raise StoreError(f"no entry at index {index}")
        return rows[0]

    def iter_entries(self, start: int = 0, batch: int = 10_000) -> Iterator[Entry]:
        """Every entry from ``start`` in index order, streamed (for verifiers and exports)."""
        cur = self.conn.execute(
            "SELECT idx, kind, leaf, leaf_hash, sig FROM entries WHERE idx >= ? ORDER BY idx",
            (start,),
        )
        while rows := cur.fetchmany(batch):
            for row in rows:
                yield Entry(*row)

    # -- records and bodies ----------------------------------------------------------------
    def record_index(self, record_id: str) -> int | None:
        row = self.conn.execute("SELECT idx FROM records WHERE id = ?", (record_id,)).fetchone()
        return None if row is None else int(row[0])

    def seq_index(self, pilot: str, source: str, seq: int) -> int | None:
        row = self.conn.execute(
            "SELECT idx FROM records WHERE pilot = ? AND source = ? AND seq = ?",
            (pilot, source, seq),
        ).fetchone()
        return None if row is None else int(row[0])

    def last_seq(self, pilot: str, source: str) -> int:
        row = self.conn.execute(
            "SELECT max(seq) FROM records WHERE pilot = ? AND source = ?", (pilot, source)
        ).fetchone()
        return int(row[0] or 0)

    def body(self, index: int) -> dict[str, Any] | None:
        """``{"payload": ..., "salt": ...}`` of a record, or None once erased."""
        _check_int(index, "index")
        row = self.conn.execute(
            "SELECT payload, salt FROM bodies WHERE idx = ?", (index,)
        ).fetchone()
        if row is None:
            return None
        return {"payload": json.loads(row[0]), "salt": row[1]}

    def query_records(
        self, where: str, params: Mapping[str, Any], limit: int, offset: int = 0
    ) -> list[dict[str, Any]]:
        """Record rows (header columns plus idx) matching a WHERE clause with named
        parameters; ``where`` is written by our code, values only ever travel as parameters."""
        sql = (
            f"SELECT idx, {', '.join(RECORD_COLUMNS)} FROM records WHERE {where}"
            " ORDER BY observed_at, idx LIMIT :limit OFFSET :offset"
        )
        return list(self.db.query(sql, {**params, "limit": limit, "offset": offset}))

    # -- checkpoints -----------------------------------------------------------------------
    def latest_checkpoint(self) -> StoredCheckpoint | None:
        row = self.conn.execute(
            "SELECT size, root, note, created_at FROM checkpoints ORDER BY size DESC LIMIT 1"
        ).fetchone()
        return None if row is None else StoredCheckpoint(*row)

    def checkpoints(self) -> Iterator[StoredCheckpoint]:
        for row in self.conn.execute(
            "SELECT size, root, note, created_at FROM checkpoints ORDER BY size"
        ):
            yield StoredCheckpoint(*row)


class LedgerWriter(LedgerReader):
    """The single writer: appends batches in one durable transaction each."""

    def __init__(
        self, path: Path | str, *, origin: str | None = None, max_page_count: int | None = None
    ) -> None:
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create {path.parent}: {exc.strerror}") from None
        conn = _connect(path, readonly=False)
        super().__init__(path, _conn=conn)
        # The writer's connection is used from the sequencer's executor thread and from
        # checkpoint signing; one lock keeps their transactions apart.
        self._lock = threading.Lock()
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            # A record is acknowledged only after its transaction is durable (docs/storage.md).
            conn.execute("PRAGMA synchronous = FULL")
            if max_page_count:
                conn.execute(f"PRAGMA max_page_count = {int(max_page_count)}")
            conn.executescript(SCHEMA)
            existing = self.meta("schema")
            if existing is None:
                self._set_meta("schema", SCHEMA_VERSION)
            elif existing != SCHEMA_VERSION:
                raise StoreError(f"{path} has ledger schema {existing}, not {SCHEMA_VERSION}")
            if origin is not None:
                stored = self.meta("origin")
                if stored is None:
                    self._set_meta("origin", origin)
                elif stored != origin:
                    raise StoreError(f"{path} is the log of {stored!r}, not {origin!r}")
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise StoreError(f"{path} is not a usable ledger: {exc}") from None
        self._size = super().size()
        self.frontier = Frontier.from_nodes(self._size, self.nodes)

    def _set_meta(self, key: str, value: str) -> None:
        self.conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def set_meta(self, key: str, value: str) -> None:
        with self._lock:
            self._set_meta(key, value)

    def append(self, batch: Sequence[NewEntry], *, erase: Sequence[int] = ()) -> list[Entry]:
        """Append ``batch`` (and delete the bodies at ``erase``) in one durable transaction.

        Returns the stored entries with their indexes. On any failure nothing is written and
        the in-memory tree is unchanged.
        """
        try:
            return self._append(batch, erase)
        except (TypeError, AttributeError, ValueError, OverflowError, LedgerError) as exc:
            if isinstance(exc, StoreError):
                raise
            raise StoreError(f"append of a malformed batch: {exc}") from None

    def _append(self, batch: Sequence[NewEntry], erase: Sequence[int]) -> list[Entry]:
        erase = [_check_int(i, "erased index") for i in erase]
        now = time.time()
        # The hot path (group commit): hash the batch in one comprehension, extend
        # the tree in one call, and build rows without per-entry helper calls.
        leaf_hashes = [sha256(LEAF_PREFIX + e.leaf).digest() for e in batch]
        # Under the lock from the frontier copy to the commit, so that two callers cannot
        # number their entries from the same size.
        with self._lock:
            frontier = self.frontier.copy()
            start = frontier.size
            closed = frontier.extend(leaf_hashes)
            entry_rows = [
                (index, e.kind, e.leaf, lh, nodes, e.sig, now)
                for index, e, lh, nodes in zip(
                    range(start, frontier.size), batch, leaf_hashes, closed, strict=True
                )
            ]
            record_rows = [
                (
                    start + i,
                    r.id,
                    r.pilot,
                    r.source,
                    r.seq,
                    r.type,
                    r.subject,
                    r.consent,
                    r.observed_at,
                    r.key,
                )
                for i, e in enumerate(batch)
                if (r := e.record) is not None
            ]
            body_rows = [
                (start + i, e.payload, e.salt) for i, e in enumerate(batch) if e.payload is not None
            ]
            c = self.conn
            try:
                c.execute("BEGIN IMMEDIATE")
                c.executemany("INSERT INTO entries VALUES (?,?,?,?,?,?,?)", entry_rows)
                if record_rows:
                    c.executemany("INSERT INTO records VALUES (?,?,?,?,?,?,?,?,?,?)", record_rows)
                if body_rows:
                    c.executemany("INSERT INTO bodies VALUES (?,?,?)", body_rows)
                if erase:
                    c.executemany("DELETE FROM bodies WHERE idx = ?", [(i,) for i in erase])
                c.execute("COMMIT")
            except sqlite3.Error as exc:
                if c.in_transaction:
                    c.execute("ROLLBACK")
                raise StoreError(f"append of {len(batch)} entries failed: {exc}") from None
            self.frontier = frontier
            self._size = frontier.size
        return [Entry(row[0], row[1], row[2], row[3], row[5]) for row in entry_rows]

    def add_checkpoint(self, size: int, root: bytes, note: str) -> None:
        _check_int(size, "checkpoint size")
        with self._lock:
            try:
                self.conn.execute(
                    "INSERT OR IGNORE INTO checkpoints VALUES (?,?,?,?)",
                    (size, root, note, time.time()),
                )
            except sqlite3.Error as exc:
                raise StoreError(f"cannot store checkpoint at size {size}: {exc}") from None

    def size(self) -> int:
        return self._size

    def current_root(self) -> bytes:
        return self.frontier.root()
