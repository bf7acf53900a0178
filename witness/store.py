"""The witness's state in one SQLite file (WAL, synchronous FULL): its name, the logs it
witnesses with their trusted keys, the latest checkpoint it cosigned for each, and the
refused-but-validly-signed requests kept as evidence of a log's misbehaviour.

c2sp.org/tlog-witness, add-checkpoint: "checking the old size against the latest checkpoint
and persisting the new checkpoint must be performed atomically". The decision is made
against a snapshot (``log_view``) and persisted with ``advance``, an UPDATE guarded by the
snapshot's size and root: a request that lost a race changes nothing and gets a 409, so no
interleaving of requests can ever roll the stored size back.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path

from ledger.checkpoint import NoteVerifier
from ledger.errors import CheckpointError
from ledger.sqlite import open_wal
from ledger.suite import Suite

from .decide import LogView
from .errors import LogConfigError, SizeConflict, WitnessStorageError

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS log (
    origin TEXT PRIMARY KEY,
    origin_sha256 TEXT NOT NULL UNIQUE,   -- lowercase hex, the monitoring path
    size INTEGER NOT NULL CHECK (size >= 0),
    root BLOB NOT NULL CHECK (length(root) = 32),
    checkpoint TEXT,                      -- the latest cosigned note; NULL before the first
    cosigned_at INTEGER,                  -- POSIX seconds of that cosignature
    added_at INTEGER NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS log_key (
    origin TEXT NOT NULL REFERENCES log(origin),
    vkey TEXT NOT NULL,                   -- the log's note verifier key (its suite's type)
    PRIMARY KEY (origin, vkey)
) STRICT;
CREATE TABLE IF NOT EXISTS refusal (
    id INTEGER PRIMARY KEY,
    origin TEXT NOT NULL REFERENCES log(origin),
    at INTEGER NOT NULL,
    status INTEGER NOT NULL,
    reason TEXT NOT NULL,
    request TEXT NOT NULL                 -- the whole request body, as evidence
) STRICT;
"""

#: Refusals kept per log (the oldest go first); only a log's own key can add one.
MAX_REFUSALS_PER_LOG = 1000


def origin_sha256(origin: str) -> str:
    """The monitoring path segment: lowercase hex SHA-256 of the origin (tlog-witness,
    "Monitor Retrieval Mechanism"), whatever the log's suite: the spec's hash, not the log's."""
    return sha256(origin.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class LogRecord:
    origin: str
    vkeys: tuple[str, ...]
    size: int
    root: bytes
    checkpoint: str | None
    cosigned_at: int | None
    added_at: int
    refusals: int

    @property
    def suite(self) -> Suite:
        """The log's crypto suite, told by its key."""
        try:
            return NoteVerifier.parse(self.vkeys[0]).suite
        except (CheckpointError, IndexError) as exc:
            raise WitnessStorageError(f"the key of {self.origin!r} is unreadable: {exc}") from None


class WitnessStore:
    """One connection, used under a lock (the HTTP server calls it from executor threads)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self._conn = open_wal(self.path, SCHEMA, synchronous="FULL")
            self._conn.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error as exc:
            raise WitnessStorageError(f"cannot open the witness state {path}: {exc}") from None
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def _db(self, what: str) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                yield self._conn
            except sqlite3.Error as exc:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise WitnessStorageError(f"{what}: {exc}") from None

    # -- meta ---------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        with self._db("reading the witness settings") as db:
            row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self._db("writing the witness settings") as db:
            db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    # -- logs ---------------------------------------------------------------------------

    def add_log(self, origin: str, key: NoteVerifier, now: int) -> bool:
        """Witness ``origin`` with ``key``; False if exactly that is already configured.
        LogConfigError if ``origin`` is witnessed with another key: never replaced. The log
        starts at size 0 with the empty root of the key's suite (RFC 9162 2.1.1)."""
        vkey = key.encode()
        with self._db("adding a log") as db:
            db.execute("BEGIN IMMEDIATE")
            rows = db.execute("SELECT vkey FROM log_key WHERE origin = ?", (origin,)).fetchall()
            if rows:
                db.execute("ROLLBACK")
                known = [str(r[0]) for r in rows]
                if vkey in known:
                    return False
                raise LogConfigError(
                    f"the log {origin!r} is already witnessed with the key {known[0]}; a "
                    "witness never replaces a log's key (a new key for the same origin is how "
                    "a split view would start). Use another origin for a new log."
                )
            db.execute(
                "INSERT INTO log (origin, origin_sha256, size, root, added_at)"
                " VALUES (?, ?, 0, ?, ?)",
                (origin, origin_sha256(origin), key.suite.tree.empty_root, now),
            )
            db.execute("INSERT INTO log_key (origin, vkey) VALUES (?, ?)", (origin, vkey))
            db.execute("COMMIT")
        return True

    def log_view(self, origin: str) -> LogView | None:
        with self._db("reading a log") as db:
            row = db.execute("SELECT size, root FROM log WHERE origin = ?", (origin,)).fetchone()
            if row is None:
                return None
            keys = db.execute("SELECT vkey FROM log_key WHERE origin = ?", (origin,)).fetchall()
        try:
            verifiers = tuple(NoteVerifier.parse(str(k[0])) for k in keys)
        except CheckpointError as exc:
            raise WitnessStorageError(f"a stored key of {origin!r} is unreadable: {exc}") from None
        return LogView(origin, verifiers, int(row[0]), bytes(row[1]))

    def advance(
        self, view: LogView, size: int, root: bytes, checkpoint: str, cosigned_at: int
    ) -> None:
        """Record ``checkpoint`` as the latest cosigned one of ``view.origin`` if the stored
        size and root are still ``view``'s; SizeConflict (with the stored size) otherwise.
        Committed (synchronous FULL) before it returns."""
        with self._db("recording the cosigned checkpoint") as db:
            cur = db.execute(
                "UPDATE log SET size = ?, root = ?, checkpoint = ?, cosigned_at = ?"
                " WHERE origin = ? AND size = ? AND root = ?",
                (size, root, checkpoint, cosigned_at, view.origin, view.size, view.root),
            )
            if cur.rowcount == 1:
                return
            row = db.execute("SELECT size FROM log WHERE origin = ?", (view.origin,)).fetchone()
        raise SizeConflict(int(row[0]) if row else 0)

    def record_refusal(self, origin: str, at: int, status: int, reason: str, request: str) -> None:
        with self._db("recording a refused checkpoint") as db:
            db.execute("BEGIN IMMEDIATE")
            db.execute(
                "INSERT INTO refusal (origin, at, status, reason, request) VALUES (?, ?, ?, ?, ?)",
                (origin, at, status, reason, request),
            )
            db.execute(
                "DELETE FROM refusal WHERE origin = ? AND id NOT IN"
                " (SELECT id FROM refusal WHERE origin = ? ORDER BY id DESC LIMIT ?)",
                (origin, origin, MAX_REFUSALS_PER_LOG),
            )
            db.execute("COMMIT")

    def refusals(self, origin: str) -> list[tuple[int, int, str, str]]:
        """(at, status, reason, request) of the refusals kept for ``origin``, oldest first."""
        with self._db("reading refusals") as db:
            rows = db.execute(
                "SELECT at, status, reason, request FROM refusal WHERE origin = ? ORDER BY id",
                (origin,),
            ).fetchall()
        return [(int(a), int(s), str(r), str(q)) for a, s, r, q in rows]

    def checkpoint_by_hash(self, hex_sha256: str) -> str | None:
        """The latest cosigned checkpoint of the log whose origin hashes to ``hex_sha256``."""
        with self._db("reading a checkpoint") as db:
            row = db.execute(
                "SELECT checkpoint FROM log WHERE origin_sha256 = ?", (hex_sha256,)
            ).fetchone()
        return None if row is None or row[0] is None else str(row[0])

    def logs(self) -> list[LogRecord]:
        with self._db("listing logs") as db:
            rows = db.execute(
                "SELECT origin, size, root, checkpoint, cosigned_at, added_at,"
                " (SELECT group_concat(vkey, ' ') FROM log_key k WHERE k.origin = log.origin),"
                " (SELECT count(*) FROM refusal r WHERE r.origin = log.origin)"
                " FROM log ORDER BY origin"
            ).fetchall()
        return [
            LogRecord(
                origin=str(o),
                vkeys=tuple(str(k).split(" ")) if k else (),
                size=int(s),
                root=bytes(r),
                checkpoint=None if c is None else str(c),
                cosigned_at=None if t is None else int(t),
                added_at=int(a),
                refusals=int(n),
            )
            for o, s, r, c, t, a, k, n in rows
        ]

    def ping(self) -> None:
        with self._db("reading the witness state") as db:
            db.execute("SELECT 1 FROM meta LIMIT 1").fetchall()
