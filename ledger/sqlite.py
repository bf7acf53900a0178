"""How every SQLite file of the project is opened: the ledger, the hub's access and
dead-letter files, the edge's outbox. Written once here because edge and gateway both
import ledger; each owner maps ``sqlite3.Error`` to its own exception type and message.

- Autocommit (``isolation_level=None``): writes are single statements or explicit
  ``BEGIN IMMEDIATE`` transactions, never one Python's sqlite3 opens behind our back.
- ``check_same_thread=False``: each owner serialises its own use (a lock, or one thread of
  its own) and some hand the connection to an executor on purpose.
- ``busy_timeout``: a reader or a second writer waits out a lock instead of failing at once
  with SQLITE_BUSY (a WAL checkpoint, the other process of a hub and its CLI).
- Writers run in WAL mode, so readers on connections of their own never block the writer.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Literal

from .errors import RangeError, StorageError, StoreError

#: SQLite INTEGER is a signed 64-bit number; no index or size can be larger.
MAX_INTEGER = 2**63 - 1

#: How long a connection waits for a lock before SQLITE_BUSY.
BUSY_TIMEOUT_MS = 10_000

#: ``FULL``: a commit returns only once it is on disk (an acknowledged record survives a
#: power cut). ``NORMAL`` in WAL mode may lose the last commits, never corrupt the file.
Synchronous = Literal["FULL", "NORMAL"]


def connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    """A connection to ``path``; ``readonly`` opens it with ``mode=ro`` (the file must exist,
    and nothing written through this connection can reach it)."""
    if readonly:
        # As a URI so that no character of the path is read as URI syntax.
        conn = sqlite3.connect(
            f"{Path(path).resolve().as_uri()}?mode=ro",
            uri=True,
            check_same_thread=False,
            isolation_level=None,
        )
    else:
        conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    except BaseException:
        conn.close()
        raise
    return conn


def open_wal(
    path: Path,
    schema: str,
    *,
    synchronous: Synchronous = "FULL",
    max_page_count: int | None = None,
) -> sqlite3.Connection:
    """A read-write connection to ``path`` in WAL mode, with ``schema`` applied.

    ``schema`` is a script of ``CREATE ... IF NOT EXISTS`` statements, so opening an existing
    file changes nothing. ``max_page_count`` caps the file (a disk quota: a write past it fails
    with SQLITE_FULL instead of filling the disk). Raises ``sqlite3.Error``.
    """
    conn = connect(path)
    try:
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode != "wal":
            # Some filesystems (network mounts) cannot hold WAL's shared memory.
            raise sqlite3.OperationalError(f"WAL mode is not available here (got {mode})")
        conn.execute(f"PRAGMA synchronous = {synchronous}")
        # Erased bodies and openings are overwritten with zeros, not left in free pages
        # (https://sqlite.org/pragma.html#pragma_secure_delete): set here, not trusted to
        # the build's SQLITE_SECURE_DELETE default.
        conn.execute("PRAGMA secure_delete = ON")
        if max_page_count:
            conn.execute(f"PRAGMA max_page_count = {int(max_page_count)}")
        conn.executescript(schema)
    except BaseException:
        conn.close()
        raise
    return conn


def check_integer(value: object, what: str) -> int:
    """``value`` if it fits an SQLite INTEGER column; RangeError for anything else (before
    it reaches SQLite, whose own error would name no argument)."""
    # bool is an int subclass; True is not an index.
    if type(value) is not int or not -MAX_INTEGER <= value <= MAX_INTEGER:
        raise RangeError(f"{what} must be an integer, not {value!r}")
    return value


#: SQLite primary result codes that blame the storage, not the request
#: (https://sqlite.org/rescode.html): SQLITE_FULL (the disk, or PRAGMA max_page_count),
#: SQLITE_IOERR, and SQLITE_BUSY/SQLITE_LOCKED once the busy timeout has passed.
_STORAGE_CODES = frozenset(
    {sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}
)


def storage_failure(what: str, exc: sqlite3.Error) -> StoreError:
    """The named error for a failed SQLite call: StorageError when a later retry may work."""
    # Extended result codes carry the primary code in their low byte (rescode.html 3).
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int) and code & 0xFF in _STORAGE_CODES:
        return StorageError(f"{what}: {exc}")
    return StoreError(f"{what}: {exc}")
