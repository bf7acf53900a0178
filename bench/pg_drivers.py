"""PostgreSQL drivers for the ledger's batched append, beside pgbench on the same server.

An append is a group commit: one transaction per batch of records, each record three rows
(``entries``, ``records``, ``bodies``, the ledger's tables with their indexes, TEXT
``COLLATE "C"``). Each method below writes the same pre-built rows, batches of 1000 and of
100, ``synchronous_commit=on``, into a database of this run's own (created, then dropped):

- psycopg 3 ``executemany`` (pipelined by psycopg itself since 3.1);
- psycopg 3 multi-row ``INSERT ... VALUES (...), (...)`` in blocks of 256 rows;
- psycopg 3 ``COPY FROM STDIN``, text (``write_row``, what ``ledger.postgres.Connection
  .copy_rows`` does) and binary;
- asyncpg ``executemany`` and ``copy_records_to_table`` (binary COPY).

The yardstick is pgbench (the C client shipped with the server), doing the same append:
one client, one transaction per batch, every record's three rows as single-row prepared
INSERTs sent in one pipeline (``\\startpipeline``), the bytes as parameters of the sizes
ours have. That is what a lean client does with the same rows over the same protocol, so
*ours / pgbench* says what the Python driver costs or saves; a ratio above 1 means a
better statement shape (COPY, multi-row) than pgbench's row-at-a-time INSERTs. A second
pgbench script inserts the same rows with ``INSERT ... SELECT FROM generate_series`` (no
rows on the wire at all): the server's own ceiling for these tables and indexes, durable.

Why not pgbench's small-transaction rate (single-row INSERT transactions, N clients): an
append commits once per 1000 records, so the commit (WAL flush) rate is not what bounds
it; that ratio would say how much batching buys, not how well a driver writes a batch.

Methods run alternately (every method, then pgbench, then again: round 2), each on freshly
truncated tables after a ``CHECKPOINT``, to share the machine's noise fairly. Client CPU is
``time.process_time`` (pgbench's: its rusage as our child); server CPU is the backend's
utime + stime from ``/proc/<pg_backend_pid()>/stat`` (a local server only; pgbench's backend
is found by its application_name and read until it exits, connection set-up included).

    .venv/bin/python -m bench.pg_drivers [--url URL] [--records N] [--rounds 2] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import hashlib
import itertools
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import asyncpg  # type: ignore[import-untyped]  # noqa: E402
import psycopg  # noqa: E402
from psycopg import conninfo  # noqa: E402

from bench.cpu import cpu_seconds  # noqa: E402
from bench.figures import Figure, ratio_text, write_figures  # noqa: E402

URL = "postgresql://postgres@127.0.0.1:5432/postgres"
BATCHES = (1000, 100)
#: Rows per statement of the multi-row INSERT (x 11 parameters for records: < 65,535).
BLOCK = 256
LOOPBACK = ("127.0.0.1", "::1", "localhost")
PGBENCH_TIMEOUT_S = 300.0
#: Records a pgbench pipeline sends before it waits for their results: pgbench 15 reads
#: none until ``\\endpipeline``, and its client CPU a record grew ~10-fold from 100 to 1000
#: records a pipeline (59 us against 5 us), which would make the yardstick, not the server,
#: the bound. One more round trip per 100 records is nothing on loopback.
PIPELINE = 100

ENTRY_COLUMNS = ("idx", "kind", "leaf", "leaf_hash", "nodes", "sig", "created_at")
RECORD_COLUMNS = (
    "idx", "id", "pilot", "source", "seq", "type", "subject", "consent", "observed_at", "key",
)  # fmt: skip
BODY_COLUMNS = ("idx", "payload", "salt")
TABLES = (
    ("entries", ENTRY_COLUMNS, ("int8", "text", "bytea", "bytea", "bytea", "text", "float8")),
    ("records", RECORD_COLUMNS, ("int8", *["text"] * 3, "int8", *["text"] * 5)),
    ("bodies", BODY_COLUMNS, ("int8", "bytea", "text")),
)

DDL = """
CREATE TABLE entries (
    idx BIGINT PRIMARY KEY,
    kind TEXT COLLATE "C" NOT NULL,
    leaf BYTEA NOT NULL,
    leaf_hash BYTEA NOT NULL,
    nodes BYTEA NOT NULL,
    sig TEXT COLLATE "C",
    created_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE records (
    idx BIGINT PRIMARY KEY,
    id TEXT COLLATE "C" NOT NULL UNIQUE,
    pilot TEXT COLLATE "C" NOT NULL,
    source TEXT COLLATE "C" NOT NULL,
    seq BIGINT NOT NULL,
    type TEXT COLLATE "C" NOT NULL,
    subject TEXT COLLATE "C",
    consent TEXT COLLATE "C",
    observed_at TEXT COLLATE "C" NOT NULL,
    key TEXT COLLATE "C" NOT NULL,
    UNIQUE (pilot, source, seq)
);
CREATE INDEX records_by_type ON records (pilot, type, observed_at);
CREATE INDEX records_by_subject ON records (subject, type, pilot, observed_at, consent)
    WHERE subject IS NOT NULL;
CREATE TABLE bodies (
    idx BIGINT PRIMARY KEY,
    payload BYTEA NOT NULL,
    salt TEXT COLLATE "C" NOT NULL
);
"""

Row = tuple[Any, ...]


@dataclass(frozen=True)
class Rows:
    """The three tables' rows of ``n`` records, made before any clock starts."""

    entries: list[Row]
    records: list[Row]
    bodies: list[Row]

    def batches(self, size: int) -> Iterator[tuple[list[Row], list[Row], list[Row]]]:
        for start in range(0, len(self.entries), size):
            end = start + size
            yield self.entries[start:end], self.records[start:end], self.bodies[start:end]


def closed_levels(idx: int) -> int:
    """Complete subtrees the leaf at ``idx`` closes: the trailing 1 bits of ``idx``."""
    return ((idx + 1) & -(idx + 1)).bit_length() - 1


def make_rows(n: int) -> Rows:
    """Rows the sizes of the ledger's: leaf ~350 B, nodes 32 B a closed level (0-640 B),
    an Ed25519 signature in base64url (86 chars), a ~200 B body, no subject or consent."""
    rng = random.Random(7)
    entries, records, bodies = [], [], []
    now = time.time()
    for i in range(n):
        leaf = rng.randbytes(350)
        nodes = rng.randbytes(32 * min(closed_levels(i), 20))
        sig = rng.randbytes(64).hex()[:86]
        entries.append((i, "record", leaf, hashlib.sha256(leaf).digest(), nodes, sig, now + i))
        seconds, micros = divmod(i, 1_000_000)
        records.append(
            (
                i,
                str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "cardio",
                "hospital-a/ehr",
                i,
                "fhir.Observation",
                None,
                None,
                f"2026-05-01T08:{seconds // 60 % 60:02d}:{seconds % 60:02d}.{micros:06d}Z",
                "ed25519:hospital-a-ehr-2026",
            )
        )
        bodies.append((i, rng.randbytes(200), rng.randbytes(16).hex()[:22]))
    return Rows(entries, records, bodies)


def insert_sql(table: str, columns: Sequence[str], rows: int, mark: Callable[[int], str]) -> str:
    marks = ", ".join(
        "(" + ", ".join(mark(r * len(columns) + c) for c in range(len(columns))) + ")"
        for r in range(rows)
    )
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES {marks}"


# -- psycopg 3 ------------------------------------------------------------------------


def psycopg_executemany(conn: psycopg.Connection[Any], batch: Sequence[list[Row]]) -> None:
    with conn.cursor() as cur:
        for (table, columns, _), rows in zip(TABLES, batch, strict=True):
            cur.executemany(insert_sql(table, columns, 1, lambda _: "%s"), rows)


def psycopg_multirow(conn: psycopg.Connection[Any], batch: Sequence[list[Row]]) -> None:
    # A RawCursor takes PostgreSQL's own $n placeholders: psycopg caches the conversion of
    # %s only for statements of <= 50 parameters, and re-parsing one of 2,560 in Python
    # every block cost ~50 us of client CPU a record (psycopg 3.3, _queries.py).
    with psycopg.RawCursor(conn) as cur:
        for (table, columns, _), rows in zip(TABLES, batch, strict=True):
            for start in range(0, len(rows), BLOCK):
                block = rows[start : start + BLOCK]
                sql = multirow_sql(table, columns, len(block))
                cur.execute(sql, list(itertools.chain.from_iterable(block)))


@functools.lru_cache(maxsize=64)
def multirow_sql(table: str, columns: tuple[str, ...], rows: int) -> str:
    return insert_sql(table, columns, rows, lambda k: f"${k + 1}")


def psycopg_copy_text(conn: psycopg.Connection[Any], batch: Sequence[list[Row]]) -> None:
    with conn.cursor() as cur:
        for (table, columns, _), rows in zip(TABLES, batch, strict=True):
            with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)


def psycopg_copy_binary(conn: psycopg.Connection[Any], batch: Sequence[list[Row]]) -> None:
    with conn.cursor() as cur:
        for (table, columns, types), rows in zip(TABLES, batch, strict=True):
            sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)"
            with cur.copy(sql) as copy:
                copy.set_types(list(types))
                for row in rows:
                    copy.write_row(row)


# -- asyncpg ----------------------------------------------------------------------------


async def asyncpg_executemany(conn: asyncpg.Connection, batch: Sequence[list[Row]]) -> None:
    for (table, columns, _), rows in zip(TABLES, batch, strict=True):
        await conn.executemany(insert_sql(table, columns, 1, lambda k: f"${k + 1}"), rows)


async def asyncpg_copy(conn: asyncpg.Connection, batch: Sequence[list[Row]]) -> None:
    for (table, columns, _), rows in zip(TABLES, batch, strict=True):
        await conn.copy_records_to_table(table, records=rows, columns=list(columns))


SyncMethod = Callable[[psycopg.Connection[Any], Sequence[list[Row]]], None]
AsyncMethod = Callable[[asyncpg.Connection, Sequence[list[Row]]], Any]
SYNC: dict[str, SyncMethod] = {
    "psycopg executemany": psycopg_executemany,
    f"psycopg multi-row INSERT ({BLOCK})": psycopg_multirow,
    "psycopg COPY text": psycopg_copy_text,
    "psycopg COPY binary": psycopg_copy_binary,
}
ASYNC: dict[str, AsyncMethod] = {
    "asyncpg executemany": asyncpg_executemany,
    "asyncpg copy_records_to_table": asyncpg_copy,
}
PGBENCH_PIPELINE = "pgbench, pipelined single-row INSERTs"
#: The method ledger.postgres.Connection.copy_rows uses for the ledger's appends.
LEDGER_METHOD = "psycopg COPY text"
PGBENCH_SERVER = "pgbench, INSERT ... SELECT generate_series"


@dataclass
class Run:
    """One method's append of all records at one batch size."""

    records_per_s: float
    client_us: float
    server_us: float | None


@dataclass
class Results:
    """Every run, by (method, batch): one Run a round."""

    runs: dict[tuple[str, int], list[Run]] = field(default_factory=dict)

    def add(self, method: str, batch: int, run: Run) -> None:
        self.runs.setdefault((method, batch), []).append(run)


def require_loopback(url: str) -> str:
    """``url`` if it names a server on this machine (loopback or a Unix socket)."""
    host = str(conninfo.conninfo_to_dict(url).get("host") or "localhost")
    if any(h not in LOOPBACK and not h.startswith("/") for h in host.split(",")):
        raise SystemExit(f"bench.pg_drivers runs only against loopback, not {host}")
    return url


class Database:
    """A fresh database of this run's own on the server at ``url``; dropped on exit."""

    def __init__(self, url: str) -> None:
        params = conninfo.conninfo_to_dict(require_loopback(url))
        self.admin = url
        self.name = f"swiftchain_pg_drivers_{os.getpid()}"
        self.params = {**params, "dbname": self.name}
        self.conninfo = conninfo.make_conninfo("", **self.params)

    def __enter__(self) -> Database:
        with psycopg.connect(self.admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}"')
            conn.execute(f'CREATE DATABASE "{self.name}"')
            # pgbench's sessions take it from the database too.
            conn.execute(f'ALTER DATABASE "{self.name}" SET synchronous_commit = on')
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            conn.execute(DDL)
        return self

    def __exit__(self, *exc: object) -> None:
        with psycopg.connect(self.admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')

    def asyncpg_kwargs(self) -> dict[str, Any]:
        p = self.params
        return {
            "host": p.get("host", "localhost"),
            "port": int(str(p.get("port") or 5432)),
            "user": p.get("user", "postgres"),
            "password": p.get("password"),
            "database": self.name,
        }

    def reset(self) -> None:
        """Empty tables, a fresh checkpoint: each run starts on the same footing."""
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            conn.execute("TRUNCATE entries, records, bodies")
            conn.execute("CHECKPOINT")

    def check(self, n: int) -> None:
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            counts = [conn.execute(f"SELECT count(*) FROM {t}").fetchone() for t, _, _ in TABLES]
        if any(c is None or c[0] != n for c in counts):
            raise SystemExit(f"expected {n} rows in every table, found {counts}")


def process_cpu(pid: int) -> float | None:
    try:
        return cpu_seconds(pid)
    except OSError:
        return None  # not a local server (or not ours to read)


def _run(n: int, elapsed: float, client: float, server: tuple[float | None, float | None]) -> Run:
    before, after = server
    server_us = None if before is None or after is None else (after - before) / n * 1e6
    return Run(n / elapsed, client / n * 1e6, server_us)


def run_sync(db: Database, method: SyncMethod, rows: Rows, batch: int) -> Run:
    db.reset()
    with psycopg.connect(db.conninfo, application_name="bench.pg_drivers") as conn:
        assert conn.execute("SHOW synchronous_commit").fetchone() == ("on",)
        pid = conn.info.backend_pid
        batches = list(rows.batches(batch))
        server, cpu, started = process_cpu(pid), time.process_time(), time.perf_counter()
        for one in batches:
            method(conn, one)
            conn.commit()
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        server_after = process_cpu(pid)
    db.check(len(rows.entries))
    return _run(len(rows.entries), elapsed, cpu, (server, server_after))


async def _run_async(db: Database, method: AsyncMethod, rows: Rows, batch: int) -> Run:
    conn = await asyncpg.connect(**db.asyncpg_kwargs())
    try:
        assert await conn.fetchval("SHOW synchronous_commit") == "on"
        pid = conn.get_server_pid()
        batches = list(rows.batches(batch))
        server, cpu, started = process_cpu(pid), time.process_time(), time.perf_counter()
        for one in batches:
            async with conn.transaction():
                await method(conn, one)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        server_after = process_cpu(pid)
    finally:
        await conn.close()
    return _run(len(rows.entries), elapsed, cpu, (server, server_after))


def run_async(db: Database, method: AsyncMethod, rows: Rows, batch: int) -> Run:
    db.reset()
    run = asyncio.run(_run_async(db, method, rows, batch))
    db.check(len(rows.entries))
    return run


# -- pgbench ----------------------------------------------------------------------------


def pgbench_binary() -> str:
    found = shutil.which("pgbench") or "/usr/lib/postgresql/15/bin/pgbench"
    if not Path(found).exists():
        raise SystemExit("pgbench not found (Debian: apt install postgresql-client)")
    return found


def pipeline_script(batch: int) -> str:
    """One transaction of ``batch`` records, each three prepared single-row INSERTs, sent
    in one pipeline; ``:n`` (kept across a client's transactions) numbers the records."""
    lines = [f"\\set n :n + {batch}", "BEGIN;"]
    for k in range(batch):
        if k % PIPELINE == 0:
            lines += ["\\endpipeline"] if k else []
            lines += ["\\startpipeline"]
        lines += [
            f"\\set i :n + {k}",
            "INSERT INTO entries (idx, kind, leaf, leaf_hash, nodes, sig, created_at) VALUES"
            " (:i, 'record', :leaf, :hash, :nodes, :sig, :i);",
            "INSERT INTO records (idx, id, pilot, source, seq, type, subject, consent,"
            " observed_at, key) VALUES (:i, :i || '-' || md5(:i::text), 'cardio',"
            " 'hospital-a/ehr', :i, 'fhir.Observation', NULL, NULL,"
            " '2026-05-01T08:' || lpad(:i::text, 12, '0') || 'Z', :key);",
            "INSERT INTO bodies (idx, payload, salt) VALUES (:i, :payload, :salt);",
        ]
    lines += ["\\endpipeline", "COMMIT;"]
    return "\n".join(lines) + "\n"


def server_script(batch: int) -> str:
    """The same rows made by the server itself (nothing on the wire): its own ceiling."""
    rows = "FROM generate_series(:first::bigint, :last::bigint) AS i"
    return f"""\\set n :n + {batch}
\\set first :n
\\set last :n + {batch - 1}
BEGIN;
INSERT INTO entries (idx, kind, leaf, leaf_hash, nodes, sig, created_at)
    SELECT i, 'record', :leaf::bytea, :hash::bytea, :nodes::bytea, :sig, i {rows};
INSERT INTO records (idx, id, pilot, source, seq, type, subject, consent, observed_at, key)
    SELECT i, i || '-' || md5(i::text), 'cardio', 'hospital-a/ehr', i, 'fhir.Observation',
        NULL, NULL, '2026-05-01T08:' || lpad(i::text, 12, '0') || 'Z', :key {rows};
INSERT INTO bodies (idx, payload, salt) SELECT i, :payload::bytea, :salt {rows};
COMMIT;
"""


def pgbench_values(rows: Rows) -> dict[str, str]:
    """Parameters the sizes of ours (a mean record's), bytea in its hex text form."""
    _, _, leaf, leaf_hash, _, sig, _ = rows.entries[0]
    body = rows.bodies[0]
    return {
        "leaf": "\\x" + leaf.hex(),
        "hash": "\\x" + leaf_hash.hex(),
        "nodes": "\\x" + bytes(32).hex(),  # one closed level: the mean over a log
        "sig": sig,
        "key": str(rows.records[0][9]),
        "payload": "\\x" + body[1].hex(),
        "salt": str(body[2]),
    }


def run_pgbench(db: Database, script: str, rows: Rows, batch: int) -> Run:
    """pgbench's append of ``rows`` after one batch of warm-up, on one connection.

    pgbench has no loops: a script of 1000 records is 3000 commands, parsed by pgbench
    (~1.4 s of its CPU) and prepared on the server (~150 ms of the backend's CPU) before and
    in its first transaction; ours prepare 3 statements. That set-up is not the append, so
    the rate is over the transactions after the first (pgbench's per-transaction log), and
    the CPU is from a reading taken as the first one ended to the end."""
    db.reset()
    n = len(rows.entries)
    app = f"bench.pg_drivers.pgbench.{uuid.uuid4().hex[:8]}"
    # The warm-up transaction writes idx -batch .. -1, the others 0 .. n-1.
    values = {**pgbench_values(rows), "n": str(-2 * batch)}
    with tempfile.TemporaryDirectory(prefix="pg_drivers-") as tmp:
        path = Path(tmp) / "append.sql"
        path.write_text(script)
        cmd = [pgbench_binary(), "-n", "-M", "prepared", "-c", "1", "-j", "1"]
        cmd += ["-t", str(n // batch + 1), "-f", str(path), "-l", "--log-prefix", f"{tmp}/log"]
        cmd += [x for k, v in values.items() for x in ("-D", f"{k}={v}")]
        cmd.append(conninfo.make_conninfo(db.conninfo, application_name=app))
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        #: (wall clock, pgbench's CPU, its backend's CPU) every 10 ms while it runs.
        samples: list[tuple[float, float | None, float | None]] = []
        backend = None
        with watcher(db) as find_pid:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            deadline = time.monotonic() + PGBENCH_TIMEOUT_S
            while proc.poll() is None and time.monotonic() < deadline:
                now, client_cpu = time.time(), process_cpu(proc.pid)
                # pgbench opens a first, short connection of the same name before its own.
                server_cpu = process_cpu(backend) if backend else None
                if server_cpu is None:
                    backend = find_pid(app)
                    server_cpu = process_cpu(backend) if backend else None
                samples.append((now, client_cpu, server_cpu))
                time.sleep(0.01)
            if proc.poll() is None:
                proc.kill()
            out = (proc.communicate()[0] or b"").decode()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        logs = list(Path(tmp).glob("log.*"))
        if proc.returncode != 0 or len(logs) != 1:
            raise SystemExit(f"pgbench failed ({proc.returncode}):\n{out[-2000:]}")
        # A line a transaction: client_id transaction_no latency_us script_no epoch_s us.
        log = [line.split() for line in logs[0].read_text().splitlines()]
    db.check(n + batch)
    latencies = [int(f[2]) / 1e6 for f in log]
    warmed = int(log[0][4]) + int(log[0][5]) / 1e6
    at_warm = [s for s in samples if s[0] <= warmed]
    base = at_warm[-1] if at_warm else (0.0, 0.0, 0.0)
    client = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    server_end = next((s[2] for s in reversed(samples) if s[2] is not None), None)
    # No reading of the backend yet when the warm-up ended (a short one): count from its
    # start, 0 s, so its connection set-up too.
    server = None if server_end is None else (server_end - (base[2] or 0.0)) / n * 1e6
    return Run(n / sum(latencies[1:]), (client - (base[1] or 0.0)) / n * 1e6, server)


@contextmanager
def watcher(db: Database) -> Iterator[Callable[[str], int | None]]:
    """A function finding the pid of the backend of an application_name, on one connection."""
    with psycopg.connect(db.conninfo, autocommit=True) as conn:

        def find(app: str) -> int | None:
            row = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (app,)
            ).fetchone()
            return int(row[0]) if row else None

        yield find


# -- the bench --------------------------------------------------------------------------


def measure(url: str, n: int, rounds: int, batches: Sequence[int] = BATCHES) -> Results:
    """Every method and both pgbench scripts at every batch size, ``rounds`` times over."""
    rows = make_rows(n)
    results = Results()
    with Database(url) as db:
        for round_ in range(1, rounds + 1):
            for batch in batches:
                print(f"== round {round_}, batches of {batch}", flush=True)
                for name, sync in SYNC.items():
                    results.add(name, batch, report(name, run_sync(db, sync, rows, batch)))
                for name, method in ASYNC.items():
                    results.add(name, batch, report(name, run_async(db, method, rows, batch)))
                for name, script in (
                    (PGBENCH_PIPELINE, pipeline_script(batch)),
                    (PGBENCH_SERVER, server_script(batch)),
                ):
                    results.add(name, batch, report(name, run_pgbench(db, script, rows, batch)))
    return results


def report(name: str, run: Run) -> Run:
    server = "-" if run.server_us is None else f"{run.server_us:.1f}"
    print(
        f"   {name:<42} {run.records_per_s:>9,.0f} records/s  client {run.client_us:5.1f} us"
        f"  server {server} us",
        flush=True,
    )
    return run


def _rounds(runs: list[Run], value: Callable[[Run], float | None], fmt: str) -> str:
    return " / ".join("-" if (v := value(r)) is None else format(v, fmt) for r in runs)


def table(results: Results) -> str:
    head = ("method", "batch", "records/s", "client us/rec", "server us/rec", "/ pgbench")
    lines = [f"| {' | '.join(head)} |", "|" + "---|" * len(head)]
    for (method, batch), runs in results.runs.items():
        yard = results.runs[(PGBENCH_PIPELINE, batch)]
        pairs = zip(runs, yard, strict=True)
        ratio = " / ".join(f"{r.records_per_s / y.records_per_s:.2f}" for r, y in pairs)
        lines.append(
            f"| {method} | {batch} | {_rounds(runs, lambda r: r.records_per_s, ',.0f')} | "
            f"{_rounds(runs, lambda r: r.client_us, '.1f')} | "
            f"{_rounds(runs, lambda r: r.server_us, '.1f')} | {ratio} |"
        )
    return "\n".join(lines)


def mean_rate(runs: list[Run]) -> float:
    return sum(r.records_per_s for r in runs) / len(runs)


def figures(results: Results) -> list[Figure]:
    """Rows for bench/report.py: every method at every batch size, its rounds ``a / b``
    beside pgbench's pipelined INSERTs of the same rows in the same round, and the ratio."""
    out = []
    for (method, batch), runs in results.runs.items():
        if method == PGBENCH_PIPELINE:
            continue
        yard = results.runs[(PGBENCH_PIPELINE, batch)]
        ratios = [r.records_per_s / y.records_per_s for r, y in zip(runs, yard, strict=True)]
        writer = " (the ledger's writer's)" if method == LEDGER_METHOD else ""
        out.append(
            Figure(
                f"PostgreSQL append, {method}{writer}, batches of {batch}, "
                "synchronous_commit=on, beside pgbench's pipelined single-row INSERTs",
                f"{_rounds(runs, lambda r: r.records_per_s, ',.0f')} records/s "
                f"({_rounds(runs, lambda r: r.client_us, '.1f')} us client, "
                f"{_rounds(runs, lambda r: r.server_us, '.1f')} us server CPU/record)",
                target="report",
                value=sum(ratios) / len(ratios),
                unit="x pgbench",
                beside=f"{_rounds(yard, lambda r: r.records_per_s, ',.0f')} records/s "
                f"({_rounds(yard, lambda r: r.server_us, '.1f')} us server CPU/record)",
                ratio=ratio_text(ratios),
            )
        )
    return out


def report_rows(url: str = URL, records: int = 20_000, rounds: int = 2) -> list[Figure]:
    """What ``make bench`` reads (bench/report.py): every method's figures, measured now."""
    return figures(measure(url, records, rounds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=URL, help=f"server (loopback only; default {URL})")
    parser.add_argument("--records", type=int, default=20_000, help="records per run")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batches", default=",".join(map(str, BATCHES)))
    parser.add_argument("--json", type=Path, help="also write the figures here (for make bench)")
    args = parser.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    if args.records <= 0 or args.rounds <= 0 or any(b <= 0 or args.records % b for b in batches):
        parser.error("--records must be a positive multiple of every batch size")
    try:
        with psycopg.connect(require_loopback(args.url), connect_timeout=10) as conn:
            version = conn.execute("SHOW server_version").fetchone()
    except psycopg.OperationalError as exc:
        # A machine without PostgreSQL: said in the report, not a failed benchmark.
        why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"no PostgreSQL at {args.url}: {why}")
        if args.json:
            write_figures(args.json, [Figure("PostgreSQL append", f"skipped: {why}")])
        return
    print(
        f"PostgreSQL {version[0] if version else '?'}, psycopg {psycopg.__version__} "
        f"(libpq {psycopg.pq.version()}), asyncpg {asyncpg.__version__}, "
        f"{args.records:,} records a run, load average {os.getloadavg()[0]:.2f} at start",
        flush=True,
    )
    results = measure(args.url, args.records, args.rounds, batches)
    print()
    print(table(results))
    for batch in batches:
        ours = {m: mean_rate(r) for (m, b), r in results.runs.items() if b == batch}
        drivers = {m: v for m, v in ours.items() if not m.startswith("pgbench")}
        best = max(drivers, key=drivers.__getitem__)
        slowest = min(drivers, key=drivers.__getitem__)
        print(
            f"\nbatches of {batch}: fastest {best} ({drivers[best]:,.0f}/s, "
            f"{drivers[best] / drivers[slowest]:.2f} x the slowest, {slowest}); "
            f"{drivers[best] / ours[PGBENCH_PIPELINE]:.2f} x {PGBENCH_PIPELINE}, "
            f"{drivers[best] / ours[PGBENCH_SERVER]:.2f} x {PGBENCH_SERVER}"
        )
    print(
        f"\nload average {os.getloadavg()[0]:.2f} at end (other work on this machine skews rates)"
    )
    if args.json:
        write_figures(args.json, figures(results))


if __name__ == "__main__":
    main()
