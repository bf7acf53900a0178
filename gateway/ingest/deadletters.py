"""The dead-letter table: rejected messages kept for operators, bounded, in a file of its
own so that rejections never write to (or slow down) the ledger file."""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledger.envelope import parse_json
from ledger.errors import InvalidEnvelope, StoreError
from ledger.sqlite import open_wal

log = logging.getLogger("swiftchain.hub.deadletters")

#: Bytes of a rejected message kept for inspection.
MAX_KEPT_BYTES = 16 * 1024

SCHEMA = """
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    topic TEXT NOT NULL,
    record_id TEXT,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL,
    size INTEGER NOT NULL,
    message BLOB NOT NULL
);
"""


#: What a dead letter about a person keeps of its body and detail.
WITHHELD = "withheld: the record is about a person"


def withhold_person(raw: bytes, detail: str) -> tuple[bytes, str]:
    """``raw`` and ``detail`` as a dead letter keeps them: for a record about a person (a v2
    body with ``person``, or a v1 header with a ``subject``) its header alone, and no detail."""
    try:
        # The strict, bounded parser: a refused message may be a parser bomb.
        value = parse_json(raw, max_bytes=len(raw))
    except InvalidEnvelope:
        return raw, detail
    if not isinstance(value, dict):
        return raw, detail
    body, header = value.get("body"), value.get("header")
    personal = (isinstance(body, dict) and body.get("person") is not None) or (
        isinstance(header, dict) and header.get("subject") is not None
    )
    if not personal:
        return raw, detail
    if isinstance(header, dict) and header.get("subject") is not None:
        header = {k: v for k, v in header.items() if k not in ("subject", "consent")}
    kept = {"header": header, "body": WITHHELD}
    return json.dumps(kept, separators=(",", ":")).encode(), WITHHELD


@dataclass(frozen=True)
class DeadLetter:
    topic: str
    record_id: str | None
    reason: str
    detail: str
    message: bytes
    at: float


class DeadLetters:
    """Collects rejections in memory; ``flush`` (from a worker thread) writes them."""

    def __init__(self, path: Path, max_rows: int) -> None:
        self.path = path
        self.max_rows = max_rows
        self._pending: list[DeadLetter] = []
        # add/take on the event loop, write from a worker thread.
        self._pending_lock = threading.Lock()
        self._lock = threading.Lock()
        try:
            # Losing the last few dead letters in a power cut is acceptable; they are a
            # diagnostic, and every sender already got its rejected receipt.
            self._conn = open_wal(path, SCHEMA, synchronous="NORMAL")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open dead-letter table {path}: {exc}") from None

    def add(self, topic: str, record_id: str | None, reason: str, detail: str, raw: bytes) -> None:
        """Keep a refused message; one about a person keeps its header only (the sender got
        the whole detail in its receipt): the hub's files hold no one's data it refused."""
        raw, detail = withhold_person(raw, detail)
        letter = DeadLetter(topic, record_id, reason, detail, raw[:MAX_KEPT_BYTES], time.time())
        with self._pending_lock:
            self._pending.append(letter)
            self._trim()

    def _trim(self) -> None:
        # Keep memory bounded even if flushing stalls.
        if len(self._pending) > self.max_rows:
            del self._pending[: len(self._pending) - self.max_rows]

    def take(self) -> list[DeadLetter]:
        with self._pending_lock:
            pending, self._pending = self._pending, []
        return pending

    def write(self, letters: list[DeadLetter]) -> bool:
        """Store ``letters``; on a write error (a full disk) keep them pending, bounded, and
        say so in the log: a diagnostic must never fail a request or the shutdown."""
        if not letters:
            return True
        rows = [
            (d.at, d.topic, d.record_id, d.reason, d.detail, len(d.message), d.message)
            for d in letters
        ]
        with self._lock:
            try:
                self._insert(rows)
            except sqlite3.Error as exc:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                log.warning("cannot store %d dead letters in %s: %s", len(rows), self.path, exc)
                with self._pending_lock:
                    self._pending[:0] = letters
                    self._trim()
                return False
        return True

    def _insert(self, rows: list[tuple[Any, ...]]) -> None:
        c = self._conn
        c.execute("BEGIN")
        c.executemany(
            "INSERT INTO dead_letters (at, topic, record_id, reason, detail, size, message)"
            " VALUES (?,?,?,?,?,?,?)",
            rows,
        )
        c.execute(
            "DELETE FROM dead_letters WHERE id <= (SELECT max(id) FROM dead_letters) - ?",
            (self.max_rows,),
        )
        c.execute("COMMIT")

    def latest(self, limit: int) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, at, topic, record_id, reason, detail, size FROM dead_letters"
                " ORDER BY id DESC LIMIT ?",
                (limit,),
            ).fetchall()
        keys = ("id", "at", "topic", "record_id", "reason", "detail", "size")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def scrub(self, needles: list[str]) -> int:
        """Delete every dead letter whose message or detail holds one of ``needles`` (an
        erased person's pseudonym and Consent id), pending ones too; returns how many went.
        The page images go with them (secure_delete, then a WAL truncation)."""
        wanted = [n.encode() for n in needles if n]
        if not wanted:
            return 0

        def names(message: bytes, detail: str) -> bool:
            return any(n in message or n in detail.encode() for n in wanted)

        with self._pending_lock:
            kept = [d for d in self._pending if not names(d.message, d.detail)]
            gone = len(self._pending) - len(kept)
            self._pending = kept
        with self._lock:
            c = self._conn
            rows = c.execute("SELECT id, detail, message FROM dead_letters").fetchall()
            ids = [(i,) for i, detail, message in rows if names(bytes(message), str(detail))]
            if ids:
                c.execute("BEGIN")
                c.executemany("DELETE FROM dead_letters WHERE id = ?", ids)
                c.execute("COMMIT")
                c.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        return gone + len(ids)

    def close(self) -> None:
        self._conn.close()
