"""The durable outbox: signed records waiting for their receipt, on SQLite.

WAL and ``synchronous=FULL``: a record is acknowledged to its source only after the
transaction holding it is on disk, so a power cut loses nothing that was acknowledged.
What receipts and inclusion proofs settle is committed without waiting for the disk
(``synchronous=NORMAL`` for those transactions: measured on the 2-core machines, an fsync'd
commit costs ~100 µs of CPU and ~4 ms on the outbox's only thread, for every receipt batch
and proof). A power cut can lose only the latest of them, whole, never a stored record: WAL
keeps commits in order, the next stored batch's fsync makes the earlier ones durable too,
and what was lost is done again (the records are published again and the hub answers
``duplicate``; a proof is fetched again).
``seq`` is allocated by the agent and stored with its records in the same transaction
(``meta.last_seq``), so it only ever grows, across restarts and dead letters alike.

Each waiting record also keeps the leaf hashes of its earlier seals (``reseal.py``: a new
key signs the backlog again), so a receipt for a copy that landed before the switch still
settles it.

Every method is blocking and meant for the agent's single database thread; the agent's
``AsyncOutbox`` wraps them. ``swiftchain edge status`` reads the file on a connection of
its own (WAL lets it read while the agent writes).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from ledger import sqlite

from .errors import OutboxError
from .receipts import Expected, ProofCheck, Receipt, ReceiptJudge, Verdict
from .signer import Sealed

P = ParamSpec("P")
R = TypeVar("R")

SCHEMA_VERSION = "2"
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
-- earlier_leaf_hashes: the 32-byte leaf hashes of this record's earlier seals (other keys).
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    leaf_hash BLOB NOT NULL,
    wire BLOB NOT NULL,
    created_at REAL NOT NULL,
    earlier_leaf_hashes BLOB NOT NULL DEFAULT x''
);
CREATE TABLE IF NOT EXISTS dead_letters (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    wire BLOB NOT NULL,
    created_at REAL NOT NULL,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL,
    dead_at REAL NOT NULL
);
-- Inclusion proofs still to fetch and check (and the ones that failed, failed IS NOT NULL).
CREATE TABLE IF NOT EXISTS proof_checks (
    id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    leaf_hash BLOB NOT NULL,
    size INTEGER,
    root BLOB,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL,
    failed TEXT
);
-- Idempotency keys of whole submissions (a watched file's name and hash), stored with their
-- records, so that a file is never turned into records twice.
CREATE TABLE IF NOT EXISTS ingested (
    key TEXT PRIMARY KEY,
    records INTEGER NOT NULL,
    at REAL NOT NULL
);
-- Device records this agent relayed (edge/relay.py): the id, the hash of the device's header
-- (the agent's suite's: SHA-256 or SM3) and the seq it was stored under, so the same record
-- is stored once. (Added in schema 2
-- without a version change: CREATE IF NOT EXISTS adds it to an older file as it opens.)
CREATE TABLE IF NOT EXISTS relayed (
    id TEXT PRIMARY KEY,
    origin_hash BLOB NOT NULL,
    seq INTEGER NOT NULL,
    at REAL NOT NULL
);
-- Records the hub accepted that wait, still in the outbox, for a checkpoint meeting the
-- agent's trust policy to cover them (hub.require_quorum; edge/quorum.py): idx and leaf_hash
-- from the receipt; failed is set when the hub's inclusion proof did not verify. (Added
-- without a version change, like relayed.)
CREATE TABLE IF NOT EXISTS awaiting_quorum (
    id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    leaf_hash BLOB NOT NULL,
    since REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL,
    failed TEXT
);
CREATE INDEX IF NOT EXISTS awaiting_quorum_idx ON awaiting_quorum (idx);
"""
#: Schema 1 -> 2: re-sealed records remember the leaf hashes of their earlier seals.
MIGRATE_1_TO_2 = "ALTER TABLE outbox ADD COLUMN earlier_leaf_hashes BLOB NOT NULL DEFAULT x''"


@dataclass(frozen=True)
class Pending:
    seq: int
    id: str
    leaf_hash: bytes
    wire: bytes


@dataclass(frozen=True)
class Settled:
    """What one batch of receipts did."""

    verdicts: list[tuple[Receipt, Verdict]]


def connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    try:
        return sqlite.connect(path, readonly=readonly)
    except sqlite3.Error as exc:
        raise OutboxError(f"cannot open outbox {path}: {exc}") from None


class Outbox:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutboxError(f"cannot create {self.path.parent}: {exc.strerror}") from None
        try:
            self.conn = sqlite.open_wal(self.path, SCHEMA, synchronous="FULL")
        except sqlite3.Error as exc:
            raise OutboxError(f"{self.path} is not a usable outbox: {exc}") from None
        try:
            version = self.meta("schema")
            if version == "1":
                self.conn.execute("BEGIN IMMEDIATE")
                self.conn.execute(MIGRATE_1_TO_2)
                self.set_meta("schema", SCHEMA_VERSION)
                self.conn.execute("COMMIT")
            elif version is None:
                self.set_meta("schema", SCHEMA_VERSION)
            elif version != SCHEMA_VERSION:
                raise OutboxError(f"{self.path} has outbox schema {version}, not {SCHEMA_VERSION}")
        except sqlite3.DatabaseError as exc:
            self.conn.close()
            raise OutboxError(f"{self.path} is not a usable outbox: {exc}") from None

    def close(self) -> None:
        self.conn.close()

    # -- meta ------------------------------------------------------------------------------
    def meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def last_seq(self) -> int:
        """The highest seq ever given out (stored, delivered or dead)."""
        stored = int(self.meta("last_seq") or 0)
        row = self.conn.execute(
            "SELECT max(s) FROM (SELECT max(seq) AS s FROM outbox"
            " UNION ALL SELECT max(seq) FROM dead_letters)"
        ).fetchone()
        return max(stored, int(row[0] or 0))

    # -- storing ---------------------------------------------------------------------------
    def ingested(self, key: str) -> bool:
        row = self.conn.execute("SELECT 1 FROM ingested WHERE key = ?", (key,)).fetchone()
        return row is not None

    def relayed(self, ids: Sequence[str]) -> dict[str, tuple[bytes, int]]:
        """(origin hash, seq) of each of these device record ids relayed before."""
        found: dict[str, tuple[bytes, int]] = {}
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            marks = ",".join("?" * len(chunk))
            for rid, origin_hash, seq in self.conn.execute(
                f"SELECT id, origin_hash, seq FROM relayed WHERE id IN ({marks})", chunk
            ):
                found[rid] = (bytes(origin_hash), int(seq))
        return found

    def store(
        self,
        records: Sequence[Sealed],
        ingest_keys: Iterable[tuple[str, int]] = (),
        relayed: Iterable[tuple[str, bytes, int]] = (),
    ) -> None:
        """Store ``records`` (and the idempotency keys of their submissions, and the
        (id, origin hash, seq) of the device records among them) durably, in one
        transaction; on return they survive a power cut."""
        if not records:
            return
        now = time.time()
        try:
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.executemany(
                "INSERT INTO outbox (seq, id, type, leaf_hash, wire, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [(r.seq, r.id, r.type_id, r.leaf_hash, r.wire, now) for r in records],
            )
            self.conn.executemany(
                "INSERT INTO ingested (key, records, at) VALUES (?, ?, ?)",
                [(k, n, now) for k, n in ingest_keys],
            )
            self.conn.executemany(
                "INSERT INTO relayed (id, origin_hash, seq, at) VALUES (?, ?, ?, ?)",
                [(rid, h, seq, now) for rid, h, seq in relayed],
            )
            self.conn.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('last_seq', ?)",
                (str(max(r.seq for r in records)),),
            )
            self.conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            raise OutboxError(f"cannot store {len(records)} records: {exc}") from None

    def _rollback(self) -> None:
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")

    @contextmanager
    def _settling(self) -> Iterator[sqlite3.Connection]:
        """A transaction that need not be on disk when it returns (see the module's
        docstring); every other one is, as before."""
        self.conn.execute("PRAGMA synchronous = NORMAL")
        try:
            self.conn.execute("BEGIN IMMEDIATE")
            yield self.conn
            self.conn.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise
        finally:
            self.conn.execute("PRAGMA synchronous = FULL")

    # -- publishing ------------------------------------------------------------------------
    def pending_after(self, seq: int, limit: int) -> list[Pending]:
        """Records to publish after ``seq``: not those the hub already accepted that only
        wait for the quorum (publishing them again would only bring another receipt)."""
        rows = self.conn.execute(
            "SELECT seq, id, leaf_hash, wire FROM outbox WHERE seq > ?"
            " AND NOT EXISTS (SELECT 1 FROM awaiting_quorum a WHERE a.id = outbox.id)"
            " ORDER BY seq LIMIT ?",
            (seq, limit),
        ).fetchall()
        return [Pending(*row) for row in rows]

    def pending_by_seq(self, seqs: Sequence[int]) -> list[Pending]:
        out: list[Pending] = []
        for i in range(0, len(seqs), 500):
            chunk = seqs[i : i + 500]
            marks = ",".join("?" * len(chunk))
            out.extend(
                Pending(*row)
                for row in self.conn.execute(
                    f"SELECT seq, id, leaf_hash, wire FROM outbox WHERE seq IN ({marks})"
                    " ORDER BY seq",
                    chunk,
                )
            )
        return out

    def depth(self) -> int:
        return int(self.conn.execute("SELECT count(*) FROM outbox").fetchone()[0])

    # -- receipts --------------------------------------------------------------------------
    def _expected(self, ids: Sequence[str]) -> dict[str, Expected]:
        found: dict[str, Expected] = {}
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            marks = ",".join("?" * len(chunk))
            for rid, seq, lh, earlier in self.conn.execute(
                f"SELECT id, seq, leaf_hash, earlier_leaf_hashes FROM outbox WHERE id IN ({marks})",
                chunk,
            ):
                found[rid] = Expected(seq, lh, packed_hashes(earlier))
        return found

    def settle(
        self, receipts: Sequence[Receipt], judge: ReceiptJudge, *, hold: bool = False
    ) -> Settled:
        """Judge a batch of receipts against the outbox and apply the verdicts in one
        transaction: delivered records leave, rejected ones become dead letters, sampled
        ones get an inclusion proof check.

        ``hold`` (the agent requires the quorum): a record the receipt delivers stays in the
        outbox, awaiting quorum, with the index and leaf hash of its proof check (the judge
        then checks every record: ``ProofPolicy("always")``); one without stays as it was."""
        expected = self._expected(list({r.id for r in receipts}))
        verdicts: list[tuple[Receipt, Verdict]] = []
        delivered: list[tuple[str]] = []
        dead: list[tuple[str, str, float, str]] = []
        checks: list[ProofCheck] = []
        held: list[ProofCheck] = []
        best = None
        now = time.time()
        done: set[str] = set()
        for receipt in receipts:
            verdict = judge.judge(receipt, None if receipt.id in done else expected.get(receipt.id))
            verdicts.append((receipt, verdict))
            if verdict.action == "ignore":
                continue
            done.add(receipt.id)
            if verdict.action == "deliver" and hold:
                if verdict.proof_check is not None:
                    held.append(verdict.proof_check)
            elif verdict.action == "deliver":
                delivered.append((receipt.id,))
                if verdict.proof_check is not None:
                    checks.append(verdict.proof_check)
                cp = verdict.checkpoint
                if cp is not None and (best is None or cp.size > best.size):
                    best = cp
            else:
                dead.append((verdict.reason, verdict.detail[:4096], now, receipt.id))
        last_receipt = _last_receipt(verdicts, now)
        try:
            with self._settling() as c:
                self._apply(c, dead, delivered, checks, held, now)
                if last_receipt is not None:
                    self.set_meta("last_receipt", json.dumps(last_receipt))
                if best is not None:
                    self._record_checkpoint(best.size, best.root_hash.hex(), best.origin, now)
        except sqlite3.Error as exc:
            raise OutboxError(f"cannot apply {len(receipts)} receipts: {exc}") from None
        return Settled(verdicts)

    def _apply(
        self,
        c: sqlite3.Connection,
        dead: list[tuple[str, str, float, str]],
        delivered: list[tuple[str]],
        checks: list[ProofCheck],
        held: list[ProofCheck],
        now: float,
    ) -> None:
        c.executemany(
            "INSERT OR IGNORE INTO dead_letters"
            " SELECT seq, id, type, wire, created_at, ?, ?, ? FROM outbox WHERE id = ?",
            dead,
        )
        c.executemany("DELETE FROM outbox WHERE id = ?", [(d[3],) for d in dead])
        c.executemany("DELETE FROM outbox WHERE id = ?", delivered)
        c.executemany(
            "INSERT OR REPLACE INTO proof_checks (id, seq, idx, leaf_hash, size, root,"
            " attempts, next_at, failed) VALUES (?, ?, ?, ?, ?, ?, 0, ?, NULL)",
            [(p.record_id, p.seq, p.index, p.leaf_hash, p.size, p.root, now) for p in checks],
        )
        c.executemany(
            "INSERT OR IGNORE INTO awaiting_quorum (id, seq, idx, leaf_hash, since, next_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [(p.record_id, p.seq, p.index, p.leaf_hash, now, now) for p in held],
        )
        if delivered or dead:
            self._bump("delivered_total", len(delivered))
            self._bump("dead_total", len(dead))

    def _bump(self, key: str, by: int) -> None:
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + excluded.value",
            (key, str(by)),
        )

    def _record_checkpoint(self, size: int, root_hex: str, origin: str, now: float) -> None:
        current = self.meta("last_checkpoint")
        if current is not None and json.loads(current)["size"] >= size:
            return
        value = {"size": size, "root": root_hex, "origin": origin, "at": now}
        self.set_meta("last_checkpoint", json.dumps(value))

    # -- inclusion proof checks ------------------------------------------------------------
    def due_proof_checks(self, now: float, limit: int) -> list[ProofCheck]:
        rows = self.conn.execute(
            "SELECT id, seq, idx, leaf_hash, size, root FROM proof_checks"
            " WHERE failed IS NULL AND next_at <= ? ORDER BY next_at LIMIT ?",
            (now, limit),
        ).fetchall()
        return [ProofCheck(*row) for row in rows]

    def proof_checked(self, record_id: str, fresh: tuple[int, str, str] | None = None) -> None:
        """The record's proof verified (under ``fresh`` = (size, root hex, origin), a
        checkpoint fetched for it, if any)."""
        self.proofs_checked([record_id], [fresh] if fresh is not None else [])

    def proofs_checked(
        self, record_ids: Sequence[str], fresh: Sequence[tuple[int, str, str]] = ()
    ) -> None:
        """These records' proofs verified (``fresh``: the (size, root hex, origin) of the
        checkpoints fetched for them), in one transaction."""
        if not record_ids:
            return
        now = time.time()
        with self._settling() as c:
            c.executemany("DELETE FROM proof_checks WHERE id = ?", [(r,) for r in record_ids])
            self._bump("proofs_verified", len(record_ids))
            for checkpoint in fresh:
                self._record_checkpoint(*checkpoint, now)

    def proof_retry(self, record_id: str, next_at: float) -> None:
        self.conn.execute(
            "UPDATE proof_checks SET attempts = attempts + 1, next_at = ? WHERE id = ?",
            (next_at, record_id),
        )

    def proof_failed(self, record_id: str, detail: str) -> None:
        self.conn.execute(
            "UPDATE proof_checks SET failed = ?, attempts = attempts + 1 WHERE id = ?",
            (detail[:4096], record_id),
        )


def packed_hashes(packed: bytes) -> tuple[bytes, ...]:
    """The 32-byte leaf hashes packed one after the other in an ``earlier_leaf_hashes``."""
    if not packed:  # a record never re-sealed: nearly all of them, one per receipt
        return ()
    return tuple(packed[i : i + 32] for i in range(0, len(packed), 32))


def _last_receipt(verdicts: list[tuple[Receipt, Verdict]], now: float) -> dict[str, Any] | None:
    for receipt, verdict in reversed(verdicts):
        if verdict.action != "ignore":
            return {
                "id": receipt.id,
                "status": receipt.status,
                "index": receipt.index,
                "reason": receipt.reason,
                "at": now,
            }
    return None


class AsyncOutbox:
    """The outbox on one database thread of its own: every call runs there, in order.

    One thread because SQLite wants one writer and the commits (fsync) must not block the
    event loop; ordering on one thread also keeps the agent's transactions apart.
    """

    def __init__(self, outbox: Outbox, executor: ThreadPoolExecutor) -> None:
        self.outbox = outbox
        self._executor = executor

    @classmethod
    async def open(cls, path: Path) -> AsyncOutbox:
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox")
        loop = asyncio.get_running_loop()
        try:
            outbox = await loop.run_in_executor(executor, Outbox, path)
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return cls(outbox, executor)

    async def call(
        self, fn: Callable[Concatenate[Outbox, P], R], *args: P.args, **kwargs: P.kwargs
    ) -> R:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, partial(fn, self.outbox, *args, **kwargs))

    async def close(self) -> None:
        await self.call(Outbox.close)
        self._executor.shutdown(wait=True)
