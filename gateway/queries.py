"""The record queries of the data routes, on the hub's own read connection.

They run on the event loop on purpose: each is one indexed range read (records by subject
or by type and time, joined to the bodies still held), well under a millisecond, cheaper
than a hop to a thread. Values only ever travel as SQL parameters.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    index: int
    id: str
    source: str
    consent: str | None
    observed_at: str
    payload: bytes


def _bounds(since: str | None, until: str | None) -> tuple[str, list[str]]:
    where, args = "", []
    if since is not None:
        where += " AND r.observed_at >= ?"
        args.append(since)
    if until is not None:
        where += " AND r.observed_at < ?"
        args.append(until)
    return where, args


def subject_records(
    conn: sqlite3.Connection,
    *,
    pilot: str,
    subject: str,
    data_type: str,
    since: str | None,
    until: str | None,
    limit: int,
) -> list[Row]:
    """A person's records of one type with their bodies (erased ones are gone), in time
    order; at most ``limit``."""
    where, args = _bounds(since, until)
    rows = conn.execute(
        "SELECT r.idx, r.id, r.source, r.consent, r.observed_at, b.payload"
        " FROM records r JOIN bodies b ON b.idx = r.idx"
        " WHERE r.subject = ? AND r.type = ? AND r.pilot = ?" + where + ""
        " ORDER BY r.observed_at, r.idx LIMIT ?",
        [subject, data_type, pilot, *args, limit],
    ).fetchall()
    return [Row(*r) for r in rows]


def type_records(
    conn: sqlite3.Connection,
    *,
    pilot: str,
    data_type: str,
    since: str | None,
    until: str | None,
    after: int,
    limit: int,
) -> list[Row]:
    """Records of one type in a pilot (non-personal data), by time, from cursor ``after``."""
    where, args = _bounds(since, until)
    rows = conn.execute(
        "SELECT r.idx, r.id, r.source, r.consent, r.observed_at, b.payload"
        " FROM records r JOIN bodies b ON b.idx = r.idx"
        " WHERE r.pilot = ? AND r.type = ? AND r.idx > ?" + where + ""
        " ORDER BY r.idx LIMIT ?",
        [pilot, data_type, after, *args, limit],
    ).fetchall()
    return [Row(*r) for r in rows]


def bodies_of_consent(
    conn: sqlite3.Connection, pilot: str, subject: str, consent: str
) -> list[tuple[int, str]]:
    """(index, record id) of every record of ``subject`` naming ``consent`` whose body is
    still held (through the subject index: records carry no consent index)."""
    rows = conn.execute(
        "SELECT r.idx, r.id FROM records r JOIN bodies b ON b.idx = r.idx"
        " WHERE r.subject = ? AND r.pilot = ? AND r.consent = ? ORDER BY r.idx",
        (subject, pilot, consent),
    ).fetchall()
    return [(int(i), str(rid)) for i, rid in rows]


def oldest_bodies(
    conn: sqlite3.Connection, pilot: str, data_type: str, limit: int
) -> list[tuple[int, str, str]]:
    """(index, record id, observed_at) of the oldest held bodies of a type, oldest first."""
    rows = conn.execute(
        "SELECT r.idx, r.id, r.observed_at FROM records r JOIN bodies b ON b.idx = r.idx"
        " WHERE r.pilot = ? AND r.type = ? ORDER BY r.observed_at LIMIT ?",
        (pilot, data_type, limit),
    ).fetchall()
    return [(int(i), str(rid), str(at)) for i, rid, at in rows]
