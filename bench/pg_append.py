"""How a batch's rows go into a PostgreSQL ledger: COPY, multi-row INSERTs or executemany.

Appends batches of 1000 signed records (entries + records + bodies rows, one transaction
each, synchronous_commit=on) to a new ledger through each way in turn, interleaved, and
prints the median wall and CPU time of a batch. The figures are quoted in
ledger/dialect.py (PostgresDialect.insert), which uses the fastest.

    .venv/bin/python bench/pg_append.py [--url postgresql://postgres@127.0.0.1/postgres]
        [--batches N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import types
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from ledger import dialect  # noqa: E402
from ledger.store import LedgerWriter, NewEntry  # noqa: E402
from tests.support.ledger_builder import LedgerBuilder, record_entry  # noqa: E402

BATCH = 1000
Insert = Callable[[Any, str, Sequence[str], Sequence[tuple[Any, ...]]], None]


def _copy(conn: Any, table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
    if rows:
        conn.copy_rows(table, columns, rows)


def _values(conn: Any, table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
    dialect.insert_values(conn, table, columns, rows)


def _many(conn: Any, table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
    if rows:
        marks = ",".join("?" * len(columns))
        conn.executemany(f"INSERT INTO {table} ({','.join(columns)}) VALUES ({marks})", rows)


WAYS: dict[str, Insert] = {"COPY": _copy, "multi-row INSERT": _values, "executemany": _many}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--batches", type=int, default=15, help="batches per way")
    args = parser.parse_args()
    name = "swiftchain_bench_" + uuid.uuid4().hex[:8]
    base = args.url.rpartition("/")[0]
    with psycopg.connect(args.url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        run(f"{base}/{name}", args.batches)
    finally:
        with psycopg.connect(args.url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run(url: str, batches: int) -> None:
    builder = LedgerBuilder(url)
    builder.register_source()
    records = list(builder.records(BATCH * batches * len(WAYS)))
    pending = [
        [record_entry(r) for r in records[i : i + BATCH]] for i in range(0, len(records), BATCH)
    ]
    writer = builder.writer
    wall: dict[str, list[float]] = {way: [] for way in WAYS}
    cpu: dict[str, list[float]] = {way: [] for way in WAYS}
    original = dialect.POSTGRES.insert
    try:
        for n, batch in enumerate(pending):
            way = list(WAYS)[n % len(WAYS)]
            dialect.POSTGRES.insert = types.MethodType(  # type: ignore[method-assign]
                lambda _self, *a, _f=WAYS[way]: _f(*a), dialect.POSTGRES
            )
            w, c = _timed(writer, batch)
            wall[way].append(w)
            cpu[way].append(c)
    finally:
        dialect.POSTGRES.insert = original  # type: ignore[method-assign]
    mode = writer.conn.execute("SHOW synchronous_commit").fetchone()[0]
    version = writer.conn.execute("SHOW server_version").fetchone()[0]
    print(f"PostgreSQL {version}, synchronous_commit={mode}, {batches} batches of {BATCH} each")
    for way in WAYS:
        print(
            f"  {way:18} {statistics.median(wall[way]) * 1e3:7.1f} ms a batch (wall),"
            f" {statistics.median(cpu[way]) * 1e3:6.1f} ms CPU of this process"
        )
    builder.close()


def _timed(writer: LedgerWriter, batch: list[NewEntry]) -> tuple[float, float]:
    t0, c0 = time.perf_counter(), time.process_time()
    writer.append(batch)
    return time.perf_counter() - t0, time.process_time() - c0


if __name__ == "__main__":
    main()
