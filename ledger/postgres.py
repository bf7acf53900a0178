"""How every PostgreSQL store of the project is reached: the ledger, the hub's access and
dead-letter stores and the data-key store. The PostgreSQL counterpart of
:mod:`ledger.sqlite`; each owner maps the errors to its own exception type.

A store is named by a URL (``postgresql://user@host:5432/city``, libpq's URI syntax,
https://www.postgresql.org/docs/15/libpq-connect.html#LIBPQ-CONNSTRING). One query
parameter is ours, not libpq's: ``schema=NAME`` puts the store's tables in that PostgreSQL
schema (each store has a default of its own, so a ledger, its access store and its
dead letters can share one database without their tables meeting).

The driver is psycopg 3 (bench/pg_drivers.py measured it beside asyncpg for the batched
append): its synchronous API is what the stores are written against on SQLite too (the
sequencer's writer runs in an executor thread, readers answer on their caller's thread),
and its ``COPY`` and pipelined ``executemany`` are as fast as asyncpg's on the append.

:class:`Connection` lets the queries of :mod:`ledger.queries` run unchanged on both stores:
they are written with ``?`` placeholders and SQLite's planner hints (``INDEXED BY``), which
it rewrites once per statement text into psycopg's ``%s`` and drops.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .errors import StorageError, StoreError

try:  # psycopg is needed only for a PostgreSQL store: a SQLite hub runs without it.
    import psycopg
    from psycopg import errors as pg_errors
except ImportError:  # pragma: no cover - exercised where psycopg is not installed
    psycopg = None  # type: ignore[assignment]
    pg_errors = None  # type: ignore[assignment]

SCHEMES = ("postgresql", "postgres")
#: A PostgreSQL schema name we create and put in ``search_path`` (lower case, as unquoted
#: identifiers are folded to it).
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def is_url(location: object) -> bool:
    """Whether ``location`` names a PostgreSQL store (``postgresql://`` or ``postgres://``)."""
    return isinstance(location, str) and location.split("://", 1)[0].lower() in SCHEMES


class Url:
    """A parsed store URL: the libpq connection string, and the schema of the store's tables."""

    def __init__(self, url: str, *, default_schema: str) -> None:
        if not is_url(url):
            raise StoreError(f"not a PostgreSQL URL: {redacted(url)}")
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        schema = default_schema
        rest = []
        for key, value in query:
            if key == "schema":
                schema = value
            else:
                rest.append((key, value))
        if not _SCHEMA_NAME.fullmatch(schema):
            raise StoreError(
                f"schema {schema!r} in {redacted(url)} is not a lower-case SQL name"
                " (letters, digits, _)"
            )
        self.schema = schema
        self.conninfo = urlunsplit(parts._replace(query=urlencode(rest)))
        self.text = url

    def __str__(self) -> str:
        return redacted(self.text)

    def with_schema(self, schema: str) -> Url:
        """The same server and database, another schema."""
        return Url(self.text, default_schema=schema)._forced(schema)

    def _forced(self, schema: str) -> Url:
        self.schema = schema
        return self

    def identity(self) -> str:
        """Server, database and schema: equal for two URLs naming the same store."""
        parts = urlsplit(self.conninfo)
        return f"{parts.hostname}:{parts.port or 5432}{parts.path}#{self.schema}"


def redacted(url: str) -> str:
    """``url`` without its password, for messages and logs."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unreadable URL>"
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def driver() -> Any:
    if psycopg is None:
        raise StoreError(
            "a PostgreSQL store needs psycopg 3: pip install 'psycopg[binary]'"
        ) from None
    return psycopg


def connect(
    url: Url,
    *,
    application: str,
    autocommit: bool = True,
    create_schema: bool = True,
    failures: str | None = None,
) -> Connection:
    """A connection to ``url`` with ``search_path`` set to its schema (created if missing,
    unless ``create_schema`` is false: a reader creates nothing).

    Autocommit, as on SQLite: writes are single statements or explicit transactions
    (:meth:`Connection.begin` ... :meth:`Connection.commit`). With ``failures``, a psycopg
    error of a statement comes out as :func:`failure` of that text (see :class:`Connection`)."""
    return Connection(
        _open(url, application, autocommit, create_schema),
        url,
        application,
        autocommit,
        create_schema=create_schema,
        failures=failures,
    )


def _open(url: Url, application: str, autocommit: bool, create_schema: bool = True) -> Any:
    pg = driver()
    try:
        raw = pg.connect(
            url.conninfo,
            autocommit=autocommit,
            application_name=application,
            connect_timeout=10,
        )
    except pg.Error as exc:
        raise failure(f"cannot connect to {url}", exc) from None
    try:
        if create_schema:
            try:
                raw.execute(f'CREATE SCHEMA IF NOT EXISTS "{url.schema}"')
            except (pg.errors.UniqueViolation, pg.errors.DuplicateSchema):
                pass  # another process made it at the same moment (IF NOT EXISTS is not atomic)
        raw.execute(f'SET search_path TO "{url.schema}"')
    except pg.Error as exc:
        raw.close()
        raise failure(f"cannot use schema {url.schema} of {url}", exc) from None
    return raw


def _ddl_lock(raw: Any, schema: str) -> None:
    """Take the transaction-scoped advisory lock of ``schema``'s DDL: ``CREATE ... IF NOT
    EXISTS`` is no guard against a concurrent ``CREATE`` of the same name (both pass the
    check, one fails on a catalog's unique index), and a hub's processes start at once."""
    digest = hashlib.sha256(f"swiftchain.ddl:{schema}".encode()).digest()
    raw.execute(
        "SELECT pg_advisory_xact_lock(%s)", (int.from_bytes(digest[:8], "big", signed=True),)
    )


@lru_cache(maxsize=1024)
def _hints_dropped(sql: str) -> str:
    """``sql`` without SQLite's planner hints (``INDEXED BY``), which PostgreSQL lacks."""
    return re.sub(r"\s+INDEXED BY \w+", "", sql)


@lru_cache(maxsize=1024)
def translated(sql: str) -> str:
    """``sql`` (written for SQLite) as psycopg takes it with parameters: ``%`` escaped,
    ``?`` -> ``%s``, hints dropped. No statement of ours has a ``?`` in a literal."""
    return _hints_dropped(sql).replace("%", "%%").replace("?", "%s")


#: The first words of the statements that open a transaction and of those that end one
#: (PostgreSQL's spellings: BEGIN, START TRANSACTION; COMMIT, END, ABORT, ROLLBACK, but
#: ROLLBACK TO a savepoint, which ends none).
_BEGINS = frozenset({"BEGIN", "START"})
_ENDS = frozenset({"COMMIT", "END", "ABORT", "ROLLBACK"})


def _first_word(sql: str) -> str:
    head = sql.lstrip()[:40].upper()
    word = head.split(None, 1)[0].rstrip(";") if head else ""
    if word == "ROLLBACK" and " TO " in f"{head} ":
        return "ROLLBACK TO"
    return word


class Connection:
    """A psycopg connection behind the part of ``sqlite3.Connection``'s interface the stores
    use: ``execute`` (returning a cursor to iterate or fetch from), ``executemany``,
    ``in_transaction``, ``close``. A lock serialises its users (psycopg's own lock does too,
    but a transaction spans several calls): each statement takes it, and a transaction's
    owner holds it from ``begin`` to ``commit``, so that another thread's statement never
    runs inside (or aborts) someone else's transaction.

    A connection the server dropped (a restart, a failover of the server, an ended session)
    is opened again by the next call made outside a transaction: the call that found it
    broken raises (the caller's write is not done), the next one reconnects. A call inside
    a transaction (from a ``BEGIN``, by :meth:`begin` or :meth:`execute`, to its ``COMMIT``
    or ``ROLLBACK``) never reconnects: the transaction is gone, and its owner must start
    over; on a new session its next statements would run, and commit, one by one. ``on_reconnect``
    callbacks run after each reconnection (the lease records the new session).

    ``failures``: when set, a psycopg error of ``execute``, ``executemany``, ``copy_rows``,
    ``begin`` or ``commit`` is raised as ``failure(failures, exc)`` (StorageError or
    StoreError), so that callers that know nothing of psycopg (the ledger's readers) still
    raise named errors. A cursor's rows are fetched by ``execute`` itself (psycopg's
    client-side cursors), so iterating one does not reach the server and cannot fail."""

    def __init__(
        self,
        raw: Any,
        url: Url,
        application: str = "swiftchain",
        autocommit: bool = True,
        *,
        create_schema: bool = True,
        failures: str | None = None,
    ) -> None:
        self.raw = raw
        self.url = url
        self.application = application
        self.autocommit = autocommit
        self.create_schema = create_schema
        self.failures = failures
        self.lock = threading.RLock()
        self.on_reconnect: list[Callable[[Connection], None]] = []
        self._closed = False
        self._transaction = False

    def _live(self) -> Any:
        raw = self.raw
        if (raw.closed or raw.broken) and not self._closed:
            # (A broken connection's transaction status reads UNKNOWN, not INTRANS: hence
            # the flag of our own.)
            if self._transaction or (
                raw.info.transaction_status == driver().pq.TransactionStatus.INTRANS
            ):
                return raw  # let the call fail: a transaction cannot survive a reconnection
            with contextlib.suppress(Exception):
                raw.close()
            self.raw = raw = _open(self.url, self.application, self.autocommit, self.create_schema)
            for callback in list(self.on_reconnect):
                callback(self)
        return raw

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        with self.lock:
            # Whether a transaction is open, from the statements that open and end one.
            word = _first_word(sql)
            if word in _ENDS:
                self._transaction = False
            try:
                if not params:
                    # Without parameters psycopg sends the text as it is: no placeholders,
                    # no %%.
                    cursor = self._live().execute(_hints_dropped(sql))
                else:
                    cursor = self._live().execute(translated(sql), params)
            except driver().Error as exc:
                if self.failures is None:
                    raise
                raise failure(self.failures, exc) from None
            if word in _BEGINS:
                self._transaction = True
            return cursor

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        with self.lock:
            try:
                with self._live().cursor() as cur:
                    cur.executemany(translated(sql), rows)
            except driver().Error as exc:
                if self.failures is None:
                    raise
                raise failure(self.failures, exc) from None

    def copy_rows(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        """``COPY table (columns) FROM STDIN`` of ``rows``: the bulk path of an append."""
        with self.lock:
            try:
                with self._live().cursor() as cur:
                    with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                        for row in rows:
                            copy.write_row(row)
            except driver().Error as exc:
                if self.failures is None:
                    raise
                raise failure(self.failures, exc) from None

    def stream(
        self, sql: str, params: Sequence[Any] = (), *, rows: int = 1000
    ) -> Iterator[list[Any]]:
        """The rows of ``sql`` in lists of ``rows``, through a server-side cursor: the
        server keeps the result, one query plan runs through it once, and this process
        holds a list at a time. Inside a transaction only (:meth:`begin`), which holds the
        lock meanwhile; the cursor goes with its end."""
        if not self._transaction:
            raise StoreError("a server-side cursor needs a transaction (begin() first)")
        with self.lock:
            try:
                with self._live().cursor(name=f"swiftchain_stream_{id(self)}") as cur:
                    if params:
                        cur.execute(translated(sql), params)
                    else:
                        cur.execute(_hints_dropped(sql))
                    while batch := cur.fetchmany(rows):
                        yield batch
            except driver().Error as exc:
                if self.failures is None:
                    raise
                raise failure(self.failures, exc) from None

    @property
    def in_transaction(self) -> bool:
        return bool(self.raw.info.transaction_status != driver().pq.TransactionStatus.IDLE)

    def begin(self, options: str = "") -> None:
        """``BEGIN`` (with ``options``, such as ``ISOLATION LEVEL REPEATABLE READ``)."""
        self.execute(f"BEGIN {options}".strip())

    def commit(self) -> None:
        # Committed, or failed: either way no transaction is open on this session any more
        # (a COMMIT that fails on a live connection rolls back).
        self.execute("COMMIT")

    def rollback(self) -> None:
        with self.lock:
            self._transaction = False
            try:
                self.raw.execute("ROLLBACK")
            except driver().Error:
                pass  # the connection is gone: so is the transaction

    def create_tables(self, script: str) -> None:
        """Run ``script`` (``CREATE ... IF NOT EXISTS`` statements, no placeholders) in one
        transaction, serialised with every other process doing so in this schema."""
        with self.lock:
            try:
                raw = self._live()
                with raw.transaction():
                    _ddl_lock(raw, self.url.schema)
                    raw.execute(script)
            except driver().Error as exc:
                if self.failures is None:
                    raise
                raise failure(self.failures, exc) from None

    def backend_pid(self) -> int:
        return int(self._live().info.backend_pid)

    @property
    def closed(self) -> bool:
        return bool(self.raw.closed)

    def close(self) -> None:
        self._closed = True
        self.raw.close()


#: SQLSTATE classes and codes that blame the server or the network, not the request: a
#: later retry may work (https://www.postgresql.org/docs/15/errcodes-appendix.html):
#: 08 connection exception, 53 insufficient resources (disk full, out of memory),
#: 57P01-57P03 admin shutdown / crash shutdown / cannot connect now, 40001/40P01
#: serialization failure and deadlock, 55P03 lock not available.
_RETRYABLE_CLASSES = ("08", "53", "58")
_RETRYABLE_CODES = frozenset({"57P01", "57P02", "57P03", "40001", "40P01", "55P03", "57014"})


def failure(what: str, exc: Exception) -> StoreError:
    """The named error for a failed PostgreSQL call: StorageError when a retry may work."""
    code = getattr(exc, "sqlstate", None)
    pg = psycopg
    transient = pg is not None and isinstance(exc, pg.OperationalError | pg.InterfaceError)
    if isinstance(code, str) and (code[:2] in _RETRYABLE_CLASSES or code in _RETRYABLE_CODES):
        transient = True
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return (StorageError if transient else StoreError)(f"{what}: {detail}")


def errors() -> tuple[type[Exception], ...]:
    """The exception types a psycopg call raises (for ``except``)."""
    return (driver().Error,)
