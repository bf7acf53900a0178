"""The PostgreSQL server a benchmark runs the hub on: the machine's (loopback only), a
database of the bench's own on it (created, then dropped; ``synchronous_commit=on`` for
every session in it), and the CPU of the server processes serving that database.

A hub on PostgreSQL does part of its work in the server's backends (parsing, index
upkeep, the WAL flush at COMMIT) where a SQLite hub does it in its own processes, so a
bench reads the backends' CPU beside the hub's: ``/proc/<pid>/stat`` of every backend
connected to the bench's database (the server runs on this machine).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import conninfo

from bench.cpu import cpu_seconds

#: The machine's server, as these machines run it (trust auth on loopback).
URL = os.environ.get("SWIFTCHAIN_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
LOOPBACK = ("127.0.0.1", "::1", "localhost")


class NoServer(Exception):
    """No PostgreSQL answers at the URL given: the bench says so and skips its PG rounds."""


def require_loopback(url: str) -> str:
    """``url`` if it names a server on this machine (loopback or a Unix socket)."""
    host = str(conninfo.conninfo_to_dict(url).get("host") or "localhost")
    if any(h not in LOOPBACK and not h.startswith("/") for h in host.split(",")):
        raise SystemExit(f"the benchmarks run against loopback only, not {host}")
    return url


def with_database(url: str, name: str) -> str:
    """``url`` naming database ``name`` instead of its own."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


@dataclass(frozen=True)
class Server:
    url: str
    version: str
    synchronous_commit: str
    """The server's own default (postgresql.conf), before the bench's database pins it."""

    def describe(self) -> str:
        default = f"server default synchronous_commit={self.synchronous_commit}"
        return f"PostgreSQL {self.version} ({default})"


def server(url: str = URL) -> Server:
    """The server at ``url``, or NoServer saying why not."""
    require_loopback(url)
    try:
        with psycopg.connect(url, connect_timeout=5, autocommit=True) as conn:
            version = conn.execute("SHOW server_version").fetchone()
            sync = conn.execute("SHOW synchronous_commit").fetchone()
    except psycopg.Error as exc:
        why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise NoServer(f"no PostgreSQL at {url}: {why}") from None
    return Server(url, str(version[0] if version else "?"), str(sync[0] if sync else "?"))


def create_database(url: str, name: str, template: str | None = None) -> str:
    """Database ``name`` on the server at ``url`` (a copy of ``template`` if given), its
    sessions pinned to ``synchronous_commit=on``; its URL. Checked by a session of its own."""
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if template is None:
            admin.execute(f'CREATE DATABASE "{name}"')
        else:
            # FILE_COPY (PostgreSQL 15): the template's files copied after one checkpoint,
            # not every block written to the WAL as the default WAL_LOG does.
            admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}" STRATEGY FILE_COPY')
        # The ledger's writer sets it on its own sessions (ledger/dialect.py); pinned here
        # for every other session too (access store, dead letters), whatever the server's
        # postgresql.conf says: the figures are of durable commits.
        admin.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = on')
    db_url = with_database(url, name)
    with psycopg.connect(db_url, autocommit=True) as conn:
        row = conn.execute("SHOW synchronous_commit").fetchone()
    if row is None or row[0] != "on":
        raise SystemExit(f"database {name}: synchronous_commit is {row}, not on")
    return db_url


def drop_database(url: str, name: str) -> None:
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def database_exists(url: str, name: str) -> bool:
    with psycopg.connect(url, autocommit=True) as admin:
        return (
            admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            is not None
        )


@contextmanager
def fresh_database(url: str, prefix: str, template: str | None = None) -> Iterator[str]:
    """A new database of this run's own (``<prefix>_<random>``): its URL; dropped after."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    db_url = create_database(url, name, template)
    try:
        yield db_url
    finally:
        drop_database(url, name)


def backends_cpu(db_url: str) -> dict[int, float]:
    """CPU seconds (utime + stime) of every server process connected to ``db_url``'s
    database, by pid (this reading's own session left out)."""
    name = conninfo.conninfo_to_dict(db_url)["dbname"]
    with psycopg.connect(db_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        ).fetchall()
    found = {}
    for (pid,) in rows:
        try:
            found[int(pid)] = cpu_seconds(int(pid))
        except OSError:
            continue  # gone meanwhile, or not a local server
    return found


def backends_cpu_between(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds the backends spent between two readings: the hub's sessions are
    long-lived; one that opened in between counts whole (its set-up too), one that came
    and went between the readings is not seen."""
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


def add_store_options(parser: Any, ledger: str) -> None:
    """``--store``, ``--pg-url`` and ``--store-rounds``, as bench/ingest.py and bench/query.py
    take them; ``ledger`` says what the SQLite and PostgreSQL ledgers are."""
    parser.add_argument(
        "--store",
        choices=["sqlite", "postgresql", "alternate"],
        default="sqlite",
        help=f"the hub's ledger: {ledger}, or both in turn (sqlite, pg, sqlite, pg) with their"
        " ratio",
    )
    parser.add_argument(
        "--pg-url",
        default=URL,
        help=f"the PostgreSQL server the database is made on (loopback only; {URL})",
    )
    parser.add_argument(
        "--store-rounds", type=int, default=2, help="with --store alternate: rounds of each"
    )


def server_or_skip(url: str, json_path: Any, what: str) -> Any:
    """The server at ``url``, or None after saying why the PostgreSQL rounds of ``what`` are
    skipped (on the console and, with ``json_path``, as the bench's one figure): a machine
    without PostgreSQL is said in the report, not a failed benchmark."""
    try:
        found = server(url)
    except NoServer as exc:
        print(f"{exc}: the PostgreSQL rounds skipped")
        if json_path:
            from bench.figures import Figure, write_figures

            write_figures(json_path, [Figure(what, f"skipped: {exc}")])
        return None
    print(f"{found.describe()} at {url}", flush=True)
    return found
