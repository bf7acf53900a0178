"""The dashboard's SQL: small, index-driven queries on a reader connection of its own.

Bodies are joined only for non-personal records of the city types the charts draw: a
personal record's body is never read by the dashboard at all.
"""

from __future__ import annotations

import sqlite3

from ledger.store import StoredCheckpoint

from .tally import CITY_TYPES, TailRow

_TYPES = ",".join(f"'{t}'" for t in CITY_TYPES)  # our own constants, not input

_TAIL = f"""
SELECT e.idx, e.kind, e.leaf, e.leaf_hash, e.created_at,
       r.pilot, r.source, r.type, r.observed_at, b.payload
FROM entries AS e
LEFT JOIN records AS r ON r.idx = e.idx
LEFT JOIN bodies AS b ON b.idx = e.idx AND r.subject IS NULL AND r.type IN ({_TYPES})
WHERE e.idx >= ? AND e.idx < ?
ORDER BY e.idx
"""


def tail(conn: sqlite3.Connection, start: int, end: int) -> list[TailRow]:
    """Entries ``[start, end)`` with what the tally needs of each."""
    return [TailRow(*row) for row in conn.execute(_TAIL, (start, end))]


def stored_checkpoint_within(
    conn: sqlite3.Connection, low: int, high: int
) -> StoredCheckpoint | None:
    """The largest stored checkpoint with ``low < size <= high`` (a catch-up step ends on a
    signed tree head, so each step is verified against one)."""
    row = conn.execute(
        "SELECT size, root, note, created_at FROM checkpoints"
        " WHERE size > ? AND size <= ? ORDER BY size DESC LIMIT 1",
        (low, high),
    ).fetchone()
    return None if row is None else StoredCheckpoint(*row)
