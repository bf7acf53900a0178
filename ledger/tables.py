"""A few tables of a store kept beside the ledger (the hub's access store and its dead
letters), on SQLite or PostgreSQL as the store's location says (:mod:`ledger.location`).

The owners write their statements once, in the SQL both understand (``?`` placeholders,
``INSERT ... ON CONFLICT`` upserts: SQLite 3.24+); what differs is here: how a transaction
begins, what follows an erasure, the errors. Every failure leaves as StorageError (a retry
may work: a full disk, a lock held too long, the server gone) or StoreError (anything else).
A PostgreSQL connection the server dropped fails the call that finds it so; the next call
opens a new one (:class:`ledger.postgres.Connection`).

Not thread-safe: the owner serialises its calls (each holds a lock of its own).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from . import postgres
from .errors import StoreError
from .location import Location
from .sqlite import Synchronous, open_wal, storage_failure

Params = Sequence[Any]


class Tables:
    """One connection to a store's tables. ``what`` names the store in every error."""

    def __init__(
        self,
        location: Location,
        *,
        what: str,
        sqlite_schema: str,
        pg_schema: str,
        synchronous: Synchronous = "FULL",
        application: str = "swiftchain",
    ) -> None:
        self.location = location
        self.what = f"{what} {location}"
        self._pg_schema = pg_schema
        self._application = application
        self._sqlite: sqlite3.Connection | None = None
        self._pg: postgres.Connection | None = None
        if isinstance(location, Path):
            try:
                location.parent.mkdir(parents=True, exist_ok=True)
                self._sqlite = open_wal(location, sqlite_schema, synchronous=synchronous)
            except sqlite3.Error as exc:
                raise storage_failure(f"cannot open {self.what}", exc) from None
            except OSError as exc:
                raise StoreError(f"cannot open {self.what}: {exc}") from None
        else:
            self._pg = self._connect()

    @property
    def conn(self) -> Any:
        """The connection itself (``sqlite3.Connection`` or :class:`postgres.Connection`)."""
        return self._sqlite if self._sqlite is not None else self._pg

    def _connect(self) -> postgres.Connection:
        assert isinstance(self.location, postgres.Url)
        try:
            conn = postgres.connect(self.location, application=self._application)
        except StoreError as exc:
            raise type(exc)(f"{self.what}: {exc}") from None
        try:
            conn.create_tables(self._pg_schema)
        except postgres.errors() as exc:
            conn.close()
            raise postgres.failure(f"cannot create the tables of {self.what}", exc) from None
        return conn

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise storage_failure(self.what, exc) from None
        except postgres.errors() as exc:
            raise postgres.failure(self.what, exc) from None

    # -- statements -----------------------------------------------------------------------
    def rows(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        with self._errors():
            return [tuple(r) for r in self.conn.execute(sql, params).fetchall()]

    def row(self, sql: str, params: Params = ()) -> tuple[Any, ...] | None:
        with self._errors():
            found = self.conn.execute(sql, params).fetchone()
        return tuple(found) if found is not None else None

    def run(self, sql: str, params: Params = ()) -> int:
        """Run one statement; how many rows it changed."""
        with self._errors():
            return int(self.conn.execute(sql, params).rowcount)

    def run_many(self, sql: str, rows: Iterable[Params]) -> None:
        with self._errors():
            self.conn.executemany(sql, rows)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """The statements of the block as one transaction, rolled back if it raises. On
        SQLite ``BEGIN IMMEDIATE``: the write lock from the start, so two processes never
        both read, then fail to upgrade (https://sqlite.org/lang_transaction.html)."""
        conn = self.conn
        with self._errors():
            conn.execute("BEGIN IMMEDIATE" if self._sqlite is not None else "BEGIN")
        try:
            yield
            with self._errors():
                conn.execute("COMMIT")
        except BaseException:
            self._rollback(conn)
            raise

    def _rollback(self, conn: Any) -> None:
        if self._sqlite is not None:
            if self._sqlite.in_transaction:
                try:
                    self._sqlite.execute("ROLLBACK")
                except sqlite3.Error:
                    pass  # SQLite rolled it back itself (an I/O error)
        else:
            conn.rollback()

    def reclaim(self, table: str) -> None:
        """After an erasure from ``table``: on SQLite, truncate the WAL (its copies of the
        deleted rows' pages; the file's own pages were zeroed, ``secure_delete``); on
        PostgreSQL, ``VACUUM`` the table, making the dead rows' space free for reuse (the
        server's WAL and its backups are its operator's to age out)."""
        with self._errors():
            if self._sqlite is not None:
                self._sqlite.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            else:
                self.conn.execute(f"VACUUM {table}")

    def close(self) -> None:
        if self._sqlite is not None:
            self._sqlite.close()
        elif self._pg is not None:
            self._pg.close()
