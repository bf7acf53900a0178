"""Where a ledger lives, and what differs between its two stores, in one place.

A ledger is named by a *location*: a path (or ``sqlite:///abs/path``) for a SQLite file, a
``postgresql://`` (or ``postgres://``) URL for PostgreSQL (:mod:`ledger.postgres`; the
tables go in the schema ``ledger`` unless ``?schema=NAME`` says otherwise). The logic of
:mod:`ledger.store`, :mod:`ledger.queries` and :mod:`ledger.verify` is written once, in
SQL both stores run (``?`` placeholders and SQLite's ``INDEXED BY`` hints, which
:class:`ledger.postgres.Connection` translates; ``ON CONFLICT`` upserts, which SQLite has
had since 3.24); a :class:`Dialect` holds the few things that cannot be: how a connection
is opened, how a write transaction begins, how a batch of rows goes in, how a body's FHIR
id is found, how a long read is streamed.
"""

from __future__ import annotations

import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from functools import lru_cache
from itertools import chain
from pathlib import Path
from typing import Any

from . import postgres
from .errors import StoreError
from .location import sqlite_path
from .schema import (
    PG_SCHEMA,
    RESOURCE_ID,
    SCHEMA,
    SCHEMA_INDEXES,
    SCHEMA_INDEXES_PG,
    SCHEMA_PG,
    SEALING_COLUMNS,
    SEALING_PG,
    resource_id_of,
)
from .sqlite import MAX_INTEGER, connect, open_wal, storage_failure

#: A ledger's location: a SQLite file's path, or a PostgreSQL URL.
Location = Path | str
#: A store connection: what ``LedgerReader.conn`` is on each store.
Connection = sqlite3.Connection | postgres.Connection


def location_of(value: Path | str) -> Location:
    """``value`` (a path, ``sqlite:`` + a path, or a PostgreSQL URL: the syntax of
    :func:`ledger.location.sqlite_path`) as a location: a Path for a SQLite file, the URL
    itself for PostgreSQL. StoreError for anything else."""
    if not isinstance(value, Path | str):
        raise StoreError(f"a ledger location is a path or a URL, not {value!r}")
    path = sqlite_path(value)
    return path if path is not None else value


def describe(location: Path | str) -> str:
    """``location`` for messages: a path as it is, a URL without its password."""
    return postgres.redacted(location) if isinstance(location, str) else str(location)


def pg_url(location: str) -> postgres.Url:
    return postgres.Url(location, default_schema=PG_SCHEMA)


#: Rows one INSERT statement carries at most, and the smallest block worth a statement of
#: its own: a batch goes in as blocks of 256, 128, ... 8 rows (each a cached statement), the
#: last few rows through ``executemany``. Measured on SQLite on the entries, records and
#: bodies rows of batches of 1000 records: 8.6 us of SQLite CPU a record with
#: ``executemany`` (one statement execution per row), 6.0 us in blocks; bench/ledger.py's
#: "records + bodies" row went from 11.4 to 9.7 us CPU an entry with this and the row
#: building in LedgerWriter._append.
_BLOCK_ROWS = 256
_SMALLEST_BLOCK = 8


def insert_values(
    conn: Connection, table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> None:
    """``INSERT INTO table (columns) VALUES ...`` of every row, in few statements."""
    if not rows:
        return
    start, left = 0, len(rows)
    block = _BLOCK_ROWS
    while block >= _SMALLEST_BLOCK:
        if left >= block:
            sql = _insert_sql(table, tuple(columns), block)
            while left >= block:
                conn.execute(sql, list(chain.from_iterable(rows[start : start + block])))
                start += block
                left -= block
        block >>= 1
    if left:
        conn.executemany(_insert_sql(table, tuple(columns), 1), rows[start:])


@lru_cache(maxsize=64)
def _insert_sql(table: str, columns: tuple[str, ...], rows: int) -> str:
    row = "(" + ",".join("?" * len(columns)) + ")"
    return f"INSERT INTO {table} ({','.join(columns)}) VALUES " + ",".join([row] * rows)


class Dialect(ABC):
    """One store's ways (see the module's docstring): :data:`SQLITE` and :data:`POSTGRES`."""

    name = ""
    #: The driver's exceptions a statement may raise and :meth:`failure` maps (none on
    #: PostgreSQL, whose connections raise the named errors themselves).
    errors: tuple[type[Exception], ...] = ()
    #: Whether a writer calls its ``fence`` in each write transaction.
    fences = False
    #: Rows a page of :meth:`pages` (and a fetch of :meth:`stream`) holds on PostgreSQL;
    #: None: one statement, whose cursor streams.
    page: int | None = None
    #: A body's FHIR id, as SQL over the ``bodies`` table aliased ``b``.
    resource_id = ""
    #: The columns of a ``bodies`` row as :meth:`body_rows` makes it.
    body_columns: tuple[str, ...] = ("idx", "payload", "salt", "key_id", "resource")

    @abstractmethod
    def open_reader(self, location: Location) -> Connection:
        """A connection that reads the ledger at ``location`` (StoreError without one)."""

    @abstractmethod
    def open_writer(self, location: Location, *, max_page_count: int | None) -> Connection:
        """A connection that writes it, its tables made if missing."""

    @abstractmethod
    def identity(self, location: Location) -> str:
        """The same text for two locations of the same ledger."""

    def failure(self, what: str, exc: Exception) -> StoreError:
        """The named error for one of :attr:`errors`."""
        return StoreError(f"{what}: {exc}")

    def blob(self, column: str) -> str:
        """``column`` read as bytes whatever a tampered row holds."""
        return column

    def body_rows(self, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """``bodies`` rows of :attr:`body_columns` from (index, payload, salt, key id,
        resource) rows."""
        return rows

    @abstractmethod
    def write_lock(self, conn: Connection) -> AbstractContextManager[Any]:
        """The lock a writer holds from its BEGIN to its COMMIT."""

    @abstractmethod
    def insert(
        self, conn: Connection, table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
    ) -> None:
        """A batch's rows of one table, inside the writer's transaction."""

    @abstractmethod
    def after_erasure(self, conn: Connection) -> None:
        """What follows a committed erasure: the erased rows' old bytes made reclaimable."""

    @abstractmethod
    def begin(self, conn: Connection) -> None:
        """Open a write transaction."""

    @abstractmethod
    def commit(self, conn: Connection) -> None:
        """Commit it."""

    @abstractmethod
    def rollback(self, conn: Connection) -> None:
        """Roll back the transaction open, if any; never raises."""

    @abstractmethod
    def snapshot(self, conn: Connection) -> AbstractContextManager[None]:
        """Every read inside sees the same committed state (a verify, a copy)."""

    def stream(self, conn: Connection, sql: str, params: Sequence[Any] = ()) -> Iterator[list[Any]]:
        """The rows of ``sql``, a list at a time, inside :meth:`snapshot` (a verify's walk,
        a copy): however many rows, memory holds one list."""
        cursor = conn.execute(sql, params)
        # 1024 rows a fetch: 0.7 us an entry less than 4096 in the verify's walk (fewer rows
        # of 18 values each alive at once stay in the CPU's caches).
        while rows := cursor.fetchmany(1024):
            yield rows

    def pages(self, conn: Connection, sql: str, params: Sequence[Any]) -> Iterator[list[Any]]:
        """The rows of ``sql`` in pages, outside a transaction (a hub's replay of the
        leaves of a kind). ``sql`` reads rows in the order of its first column, an integer
        key: it ends ``key > ? ORDER BY key LIMIT ?`` (or reads its driving table so), whose
        two values this adds to ``params``. On SQLite one statement streams; on PostgreSQL
        each page is a statement of its own, from after the last key of the one before (a
        client-side cursor would hold the whole result in memory, and a server-side one
        needs a transaction, which a reader's caller may leave open)."""
        if self.page is None:
            yield from self.stream(conn, sql, [*params, -1, MAX_INTEGER])
            return
        after = -1
        while True:  # bounded: each page starts past the last key of the one before
            rows = conn.execute(sql, [*params, after, self.page]).fetchall()
            if rows:
                yield rows
            if len(rows) < self.page:
                return
            after = int(rows[-1][0])


class SqliteDialect(Dialect):
    name = "sqlite"
    errors = (sqlite3.Error,)
    resource_id = RESOURCE_ID.replace("payload", "b.payload")

    def write_lock(self, conn: Connection) -> AbstractContextManager[Any]:
        return threading.RLock()

    def insert(
        self, conn: Connection, table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
    ) -> None:
        insert_values(conn, table, columns, rows)

    def begin(self, conn: Connection) -> None:
        # IMMEDIATE takes the write lock at once: a write transaction never has to upgrade
        # a read lock (which can fail with SQLITE_BUSY whatever the busy timeout).
        conn.execute("BEGIN IMMEDIATE")

    def commit(self, conn: Connection) -> None:
        conn.execute("COMMIT")

    def rollback(self, conn: Connection) -> None:
        if conn.in_transaction:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass  # the connection is gone, and with it the transaction

    @contextmanager
    def snapshot(self, conn: Connection) -> Iterator[None]:
        # A deferred transaction's first read fixes what every later one sees (WAL).
        conn.execute("BEGIN")
        try:
            yield
        finally:
            self.rollback(conn)

    def open_reader(self, location: Location) -> Connection:
        path = Path(location)
        if not path.exists():
            raise StoreError(f"no ledger at {path}")
        if path.is_dir():
            raise StoreError(f"{path} is a directory, not a ledger file")
        try:
            return connect(path, readonly=True)
        except sqlite3.Error as exc:
            raise storage_failure(f"cannot open ledger {path}", exc) from None

    def open_writer(self, location: Location, *, max_page_count: int | None) -> Connection:
        path = Path(location)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create {path.parent}: {exc.strerror}") from None
        if path.is_dir():
            raise StoreError(f"{path} is a directory, not a ledger file")
        try:
            # A record is acknowledged only after its transaction is durable: FULL.
            conn = open_wal(path, SCHEMA, synchronous="FULL", max_page_count=max_page_count)
        except sqlite3.Error as exc:
            raise StoreError(f"{path} is not a usable ledger: {exc}") from None
        try:
            # "2" -> "3": the columns of sealing, then the indexes over them. Each ALTER is
            # a statement of its own (SQLite has no ADD COLUMN IF NOT EXISTS); the one
            # writer runs them, under its lock file.
            for table, column, kind in SEALING_COLUMNS:
                present = {str(r[1]) for r in conn.execute(f"PRAGMA table_info({table})")}
                if column not in present:
                    conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
            conn.executescript(SCHEMA_INDEXES)
        except sqlite3.Error as exc:
            conn.close()
            raise StoreError(f"{path} cannot be brought to ledger schema 3: {exc}") from None
        except BaseException:
            conn.close()
            raise
        return conn

    def identity(self, location: Location) -> str:
        return f"sqlite:{Path(location).resolve()}"

    def failure(self, what: str, exc: Exception) -> StoreError:
        assert isinstance(exc, sqlite3.Error)
        return storage_failure(what, exc)

    def blob(self, column: str) -> str:
        # SQLite's columns take any type: a tampered one may hold text or a number.
        return f"CAST({column} AS BLOB)"

    def after_erasure(self, conn: Connection) -> None:
        """Copy the WAL into the file and truncate it: the erased pages' old images go
        (secure_delete zeroed them in the file). Readers in the middle of a read can keep
        the WAL from being reset; the next erasure tries again, and the data is committed
        either way."""
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        except sqlite3.Error:
            pass


class PostgresDialect(Dialect):
    name = "postgresql"
    fences = True
    # A page of a replay of leaves, and a fetch of a verify's walk or a copy: 1000 rows.
    page = 1000
    resource_id = "b.resource_id"
    body_columns = ("idx", "payload", "salt", "key_id", "resource", "resource_id")

    def open_reader(self, location: Location) -> Connection:
        url = pg_url(str(location))
        conn = postgres.connect(
            url,
            application="swiftchain-ledger-reader",
            create_schema=False,
            failures=f"ledger {url}",
        )
        try:
            # Resolved through search_path (the ledger's schema): NULL without the table.
            (meta,) = conn.execute("SELECT to_regclass('meta')").fetchone()
        except BaseException:
            conn.close()
            raise
        if meta is None:
            conn.close()
            raise StoreError(f"no ledger at {url}")
        return conn

    def open_writer(self, location: Location, *, max_page_count: int | None) -> Connection:
        url = pg_url(str(location))
        conn = postgres.connect(
            url, application="swiftchain-ledger-writer", failures=f"ledger {url}"
        )
        try:
            # A record is acknowledged only after its commit is durable (the server's
            # default, but not left to a server's configuration), on every session the
            # connection opens.
            conn.on_reconnect.append(_durable_commits)
            _durable_commits(conn)
            conn.create_tables(SCHEMA_PG)
            # "2" -> "3" when a column of sealing is missing (an ALTER TABLE takes the
            # table's exclusive lock even when it changes nothing: not on every open).
            (columns,) = conn.execute(
                "SELECT count(*) FROM information_schema.columns"
                " WHERE table_schema = current_schema() AND column_name IN ('key_id', 'resource')"
                " AND table_name IN ('bodies', 'openings', 'origins')"
            ).fetchone()
            missing = int(columns) < len(SEALING_COLUMNS)
            conn.create_tables((SEALING_PG if missing else "") + SCHEMA_INDEXES_PG)
        except BaseException:
            conn.close()
            raise
        return conn

    def identity(self, location: Location) -> str:
        return f"postgresql:{pg_url(str(location)).identity()}"

    def body_rows(self, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        # A body in the open has its FHIR id in the open too, as before; a sealed one has
        # its digest in ``resource`` alone.
        return [(*row, resource_id_of(row[1]) if row[3] is None else None) for row in rows]

    def after_erasure(self, conn: Connection) -> None:
        """VACUUM the tables an erasure deleted or changed rows of (as ledger.tables does for
        the hub's other stores): the dead rows' space is free for reuse. Their bytes may stay
        in the pages until reused, and in the server's WAL and backups: what encrypting the
        bodies under erasable keys closes (docs/storage.md). A failure is no failure of the
        committed erasure; the next one vacuums again."""
        try:
            conn.execute("VACUUM bodies, openings, origins, records")
        except StoreError:
            pass

    def insert(
        self, conn: Connection, table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
    ) -> None:
        """COPY: bench/pg_append.py, batches of 1000 signed records (entries, records and
        bodies rows) in one transaction each, synchronous_commit=on, PostgreSQL 15 on the
        same 2-core machine, median of 30 batches, three runs (wall ms a batch / CPU ms of
        the writer's process): COPY 20.5-44.7 / 9.2-14.2; executemany (pipelined) 43.5-97.2
        / 35.1-43.0; multi-row INSERTs in blocks of 256 ... 8 rows, as on SQLite, 73.9-133.6
        / 52.5-73.7 (psycopg binds each of a block's 2560 values on its own). COPY was the
        fastest in every run, by 2x or more."""
        if rows:
            assert isinstance(conn, postgres.Connection)
            conn.copy_rows(table, columns, rows)

    def write_lock(self, conn: Connection) -> AbstractContextManager[Any]:
        # The connection's own, which each of its statements takes: another thread's read
        # waits for the transaction instead of running inside it.
        assert isinstance(conn, postgres.Connection)
        return conn.lock

    def begin(self, conn: Connection) -> None:
        assert isinstance(conn, postgres.Connection)
        conn.begin()

    def commit(self, conn: Connection) -> None:
        assert isinstance(conn, postgres.Connection)
        conn.commit()

    def rollback(self, conn: Connection) -> None:
        assert isinstance(conn, postgres.Connection)
        conn.rollback()

    def stream(self, conn: Connection, sql: str, params: Sequence[Any] = ()) -> Iterator[list[Any]]:
        # A server-side cursor: one plan runs through the tables once (merge joins of their
        # primary keys for the verify's walk), where pages of their own would each plan
        # their joins anew, and could scan a joined table from its start every time.
        assert isinstance(conn, postgres.Connection)
        return conn.stream(sql, params, rows=self.page or 1000)

    @contextmanager
    def snapshot(self, conn: Connection) -> Iterator[None]:
        assert isinstance(conn, postgres.Connection)
        with conn.lock:
            conn.begin("ISOLATION LEVEL REPEATABLE READ READ ONLY")
            try:
                yield
            finally:
                self.rollback(conn)


def _durable_commits(conn: postgres.Connection) -> None:
    conn.execute("SET synchronous_commit = on")


SQLITE = SqliteDialect()
POSTGRES = PostgresDialect()


def dialect_of(location: Location) -> Dialect:
    return POSTGRES if isinstance(location, str) and postgres.is_url(location) else SQLITE


#: What a PostgreSQL writer calls inside each write transaction (:class:`LedgerWriter`).
Fence = Callable[[postgres.Connection], None]
