"""A whole ledger copied to another location, every byte kept: between a SQLite file and a
PostgreSQL database either way, or between two of a kind (``swiftchain ledger copy``).

Every row of every table goes across as it is stored: the entries (leaf, leaf hash, node
hashes, signature, creation time), the records' index rows, bodies, openings, blinded
openings, origins, checkpoints and ``meta`` (but its schema version, which is the
destination's own: a schema "1" file becomes a "2" ledger, as a writer would make it).
A PostgreSQL destination computes its bodies' resource ids (:func:`ledger.schema.
resource_id_of`); SQLite has them in an index of its own.

Sealed values (schema "3") go across as the ciphertext they are, with their key ids, the
digests of their FHIR ids and the keys noted for destruction: the copy reads them with the
source's key store only (the same one, not a copy of it: a destroy must reach every
ledger sealed under its keys). A source from before "3" has no key ids: its rows go across
in the open, as they are.

The source is read in one snapshot (a hub may keep appending to it meanwhile), a thousand
rows at a time (a server-side cursor on PostgreSQL), so memory stays bounded whatever the
ledger's size; the destination, which must be empty, is filled in one transaction: a copy
that fails leaves it as empty as it was, to be started again. The roots of both at the
source's newest checkpoint are compared after the commit.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .dialect import dialect_of
from .errors import StoreError
from .schema import KEYED_TABLES, SEALED_TABLES, SEALING_COLUMNS, TABLES
from .store import LedgerReader, LedgerWriter, describe, location_of


@dataclass
class CopyReport:
    source: str
    destination: str
    rows: dict[str, int] = field(default_factory=dict)
    """Rows copied, by table."""
    size: int = 0
    """Entries copied."""
    checked_size: int = 0
    """The size the roots were compared at: the newest checkpoint's, else the whole log's."""
    source_root: bytes = b""
    destination_root: bytes = b""
    checkpoint_root: bytes | None = None
    """The root the newest checkpoint signs (None without one)."""

    @property
    def ok(self) -> bool:
        return self.source_root == self.destination_root and self.checkpoint_root in (
            None,
            self.source_root,
        )


def same_ledger(first: Path | str, second: Path | str) -> bool:
    """Whether two locations name the same ledger (another spelling, a link included)."""
    one, other = location_of(first), location_of(second)
    if isinstance(one, Path) and isinstance(other, Path) and one.exists() and other.exists():
        return os.path.samefile(one, other)
    return dialect_of(one).identity(one) == dialect_of(other).identity(other)


def copy_ledger(
    source: Path | str,
    destination: Path | str,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> CopyReport:
    """Copy the ledger at ``source`` into the empty ``destination`` (either a path or a
    PostgreSQL URL); ``progress(done, total)`` counts rows. StoreError if the source cannot
    be read, the destination is the source or is not empty, or a write fails (then the
    destination is left as it was)."""
    src, dst = location_of(source), location_of(destination)
    report = CopyReport(describe(src), describe(dst))
    with LedgerReader(src) as reader:
        if same_ledger(src, dst):
            raise StoreError(f"{report.destination} is the source ledger itself")
        with reader.dialect.snapshot(reader.conn):
            tables = {
                table: columns
                for table, columns in TABLES.items()
                if (reader.sealed or table not in SEALED_TABLES)
                and (reader.keyed or table not in KEYED_TABLES)
            }
            total = 0
            for table in tables:
                (count,) = reader.conn.execute(f"SELECT count(*) FROM {table}").fetchone()
                total += int(count)
            done = 0
            if progress:
                progress(done, total)
            with LedgerWriter(dst) as writer:
                with writer.filling(f"copy of {report.source} into {report.destination}") as put:
                    for table, columns in tables.items():
                        copied = 0
                        for rows in _pages(reader, table, columns):
                            put(table, columns, rows)
                            copied += len(rows)
                            done += len(rows)
                            if progress:
                                progress(done, total)
                        report.rows[table] = copied
                report.size = writer.size()
            latest = reader.latest_checkpoint()
            report.checked_size = latest.size if latest is not None else reader.size()
            report.checkpoint_root = bytes(latest.root) if latest is not None else None
            report.source_root = reader.root(report.checked_size)
    with LedgerReader(dst) as copy:
        report.destination_root = copy.root(report.checked_size)
    return report


#: The columns a ledger from before schema "3" lacks, read as NULL from one.
_KEYED_COLUMNS = {(table, column) for table, column, _ in SEALING_COLUMNS}


def _pages(reader: LedgerReader, table: str, columns: tuple[str, ...]) -> Iterator[list[Any]]:
    """A table's rows in the order of its key, a list at a time."""
    read = ["NULL" if not reader.keyed and (table, c) in _KEYED_COLUMNS else c for c in columns]
    sql = f"SELECT {', '.join(read)} FROM {table} ORDER BY {columns[0]}"
    return reader.dialect.stream(reader.conn, sql)
