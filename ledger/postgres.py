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
from collections.abc import Callable, Iterable, Sequence
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


def connect(url: Url, *, application: str, autocommit: bool = True) -> Connection:
    """A connection to ``url`` with ``search_path`` set to its schema (created if missing).

    Autocommit, as on SQLite: writes are single statements or explicit transactions
    (:meth:`Connection.transaction`)."""
    return Connection(_open(url, application, autocommit), url, application, autocommit)


def _open(url: Url, application: str, autocommit: bool) -> Any:
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


class Connection:
    """A psycopg connection behind the part of ``sqlite3.Connection``'s interface the stores
    use: ``execute`` (returning a cursor to iterate or fetch from), ``executemany``,
    ``in_transaction``, ``close``. A lock serialises its users (psycopg's own lock does too,
    but a transaction spans several calls).

    A connection the server dropped (a restart, a failover of the server, an ended session)
    is opened again by the next call made outside a transaction: the call that found it
    broken raises (the caller's write is not done), the next one reconnects. A call inside
    a transaction never reconnects: the transaction is gone, and its owner must start over.
    ``on_reconnect`` callbacks run after each reconnection (the lease records the new
    session)."""

    def __init__(
        self, raw: Any, url: Url, application: str = "swiftchain", autocommit: bool = True
    ) -> None:
        self.raw = raw
        self.url = url
        self.application = application
        self.autocommit = autocommit
        self.lock = threading.RLock()
        self.on_reconnect: list[Callable[[Connection], None]] = []
        self._closed = False

    def _live(self) -> Any:
        raw = self.raw
        if (raw.closed or raw.broken) and not self._closed:
            if raw.info.transaction_status == driver().pq.TransactionStatus.INTRANS:
                return raw  # let the call fail: a transaction cannot survive a reconnection
            with contextlib.suppress(Exception):
                raw.close()
            self.raw = raw = _open(self.url, self.application, self.autocommit)
            for callback in list(self.on_reconnect):
                callback(self)
        return raw

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        if not params:
            # Without parameters psycopg sends the text as it is: no placeholders, no %%.
            return self._live().execute(_hints_dropped(sql))
        return self._live().execute(translated(sql), params)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        with self._live().cursor() as cur:
            cur.executemany(translated(sql), rows)

    def copy_rows(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        """``COPY table (columns) FROM STDIN`` of ``rows``: the bulk path of an append."""
        with self._live().cursor() as cur:
            with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)

    @property
    def in_transaction(self) -> bool:
        return bool(self.raw.info.transaction_status != driver().pq.TransactionStatus.IDLE)

    def begin(self) -> None:
        self._live().execute("BEGIN")

    def commit(self) -> None:
        self.raw.execute("COMMIT")

    def rollback(self) -> None:
        try:
            self.raw.execute("ROLLBACK")
        except driver().Error:
            pass  # the connection is gone: so is the transaction

    def create_tables(self, script: str) -> None:
        """Run ``script`` (``CREATE ... IF NOT EXISTS`` statements, no placeholders) in one
        transaction, serialised with every other process doing so in this schema."""
        raw = self._live()
        with raw.transaction():
            _ddl_lock(raw, self.url.schema)
            raw.execute(script)

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
