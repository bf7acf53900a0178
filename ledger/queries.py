"""The named reads the hub makes of the ledger, as methods every ``LedgerReader`` has: the
leaves of one entry kind (to replay the registry, the consents, the audit index), a person's
records or a type's records with the bodies still held (the data routes), the held bodies due
for erasure, and the tail of the log (the dashboard).

Nothing outside ``ledger/`` writes SQL on the ledger's tables; callers get these typed rows,
never a connection or a cursor, which is also what lets PostgreSQL stand in for SQLite: the
SQL here runs on both (:mod:`ledger.dialect`). Each query is one indexed read, and values
only ever travel as SQL parameters.

Sealed values (schema "3": :mod:`ledger.sealing`) are read with their key ids and opened
with the keys of one call to the key store a query; a value whose key is destroyed is left
out, as an erased one.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .datakeys import DataKey, body_parts, resource_digest
from .dialect import Dialect
from .entries import ENTRY_KINDS
from .errors import InvalidEnvelope, RangeError, StoreError
from .schema import resource_id_of
from .sealed import Opening, opened
from .sealing import keys_of, opened_value
from .sqlite import check_integer
from .suite import Suite

if TYPE_CHECKING:
    from .keystore import KeyStore


@dataclass(frozen=True)
class HeldRecord:
    """A record whose body is still held, as the data routes answer with it."""

    index: int
    id: str
    source: str
    consent: str | None
    observed_at: str
    payload: bytes
    """JCS(payload): exactly the bytes the record's commitment covers."""
    subject: str | None = None
    """The record's subject, where the query asked for it (:meth:`LedgerQueries.resource`)."""


#: What :meth:`LedgerQueries.subject_matches` gives of each match: (index, consent).
SubjectMatch = tuple[int, str | None]
#: The most records :meth:`LedgerQueries.held_records` reads at once (a page of a search is
#: at most 100; SQLite allows 32766 parameters).
MAX_HELD_RECORDS = 1000


@dataclass(frozen=True)
class HeldBody:
    """A body still held: its entry, its record id and observation time (what an
    ``erasure`` entry names and what retention is measured from)."""

    index: int
    record: str
    observed_at: str


@dataclass(frozen=True)
class TailEntry:
    """One log entry with what is indexed about it; ``payload`` only for non-personal
    records of the types asked for (:meth:`LedgerQueries.tail` never reads another body)."""

    index: int
    kind: str
    leaf: bytes
    leaf_hash: bytes
    created_at: float
    pilot: str | None = None
    source: str | None = None
    type: str | None = None
    observed_at: str | None = None
    payload: bytes | None = None
    opening: bytes | None = None
    """The stored opening of an ``access`` entry (for the operator's view of decisions)."""


def _check_count(value: object, what: str) -> int:
    count = check_integer(value, what)
    # SQLite reads a negative LIMIT as no limit at all: never let one through.
    if count < 0:
        raise RangeError(f"{what} must not be negative, not {count}")
    return count


def _check_text(value: object, what: str, *, optional: bool = False) -> None:
    if not (isinstance(value, str) or (optional and value is None)):
        raise RangeError(f"{what} must be a string, not {value!r}")


def _observed_between(since: str | None, until: str | None) -> tuple[str, list[str]]:
    """The ``observed_at`` bounds of a record search: from ``since`` (inclusive) to
    ``until`` (exclusive); either may be absent."""
    _check_text(since, "since", optional=True)
    _check_text(until, "until", optional=True)
    where, args = "", []
    if since is not None:
        where += " AND r.observed_at >= ?"
        args.append(since)
    if until is not None:
        where += " AND r.observed_at < ?"
        args.append(until)
    return where, args


_HELD_RECORD = (
    "SELECT r.idx, r.id, r.source, r.consent, r.observed_at, b.payload, {key}"
    " FROM records r JOIN bodies b ON b.idx = r.idx"
)
#: :meth:`LedgerQueries.subject_matches`: the subject index alone (covering, on a ledger
#: made since it holds pilot and consent).
_SUBJECT_MATCHES = (
    "SELECT r.idx, r.consent FROM records r INDEXED BY records_by_subject"
    " WHERE r.subject = ? AND r.type = ? AND r.pilot = ?{where}"
    " ORDER BY r.observed_at, r.idx LIMIT ?"
)
_HELD_RECORD_BY_SUBJECT = _HELD_RECORD.replace(
    "records r", "records r INDEXED BY records_by_subject", 1
)

_TAIL = """
SELECT e.idx, e.kind, e.leaf, e.leaf_hash, e.created_at,
       r.pilot, r.source, r.type, r.observed_at, b.payload, {key}{opening}
FROM entries AS e
LEFT JOIN records AS r ON r.idx = e.idx
LEFT JOIN bodies AS b ON b.idx = e.idx AND r.subject IS NULL AND r.type IN ({types}){join}
WHERE e.idx >= ? AND e.idx < ?
ORDER BY e.idx
"""
_TAIL_OPENING = ", o.opening, {key}"
_TAIL_JOIN = "\nLEFT JOIN openings AS o ON o.idx = e.idx AND e.kind = 'access'"


class LedgerQueries:
    """The hub's reads (a part of :class:`ledger.store.LedgerReader`)."""

    #: A ``sqlite3.Connection`` or a ``ledger.postgres.Connection`` (:data:`ledger.dialect.
    #: Connection`), each taking the SQL here; typed loosely so that code that knows which
    #: store it opened (the hub's lease, on PostgreSQL) uses its own side without a cast.
    conn: Any
    dialect: Dialect
    #: Whether the file has the openings table (schema "2"); a "1" file holds v1 leaves only.
    sealed: bool
    #: Whether the file has key ids (schema "3"); before, every value is in the open.
    keyed: bool
    #: The log's crypto suite (its commitments' hash).
    suite: Suite
    #: The key store sealed values open with (None: a read meeting one raises StoreError).
    keys: KeyStore | None

    @property
    def where(self) -> str:
        """Where the ledger is, for messages."""
        raise NotImplementedError

    def key_column(self, alias: str) -> str:
        """``alias.key_id`` as SQL, or NULL on a ledger from before key ids."""
        return f"{alias}.key_id" if self.keyed else "NULL"

    def _keys(self, key_ids: Iterable[Any]) -> Mapping[int, DataKey]:
        return keys_of(self.keys, key_ids, self.where)

    def _held(self, rows: list[Any]) -> list[HeldRecord]:
        """HeldRecords of (index, id, source, consent, observed_at, payload, key id[,
        subject]) rows, their payloads opened; those whose keys are destroyed left out."""
        keys = self._keys(row[6] for row in rows)
        held = []
        for row in rows:
            payload = _payload(keys, row[0], row[6], row[5])
            if payload is not None:
                subject = row[7] if len(row) > 7 else None
                held.append(HeldRecord(row[0], row[1], row[2], row[3], row[4], payload, subject))
        return held

    def opening(self, index: int) -> Opening | None:
        """The opening of entry ``index``'s ``person`` commitment, or None (a v1 leaf, a leaf
        about nobody's personal fields, or one erased or forgotten)."""
        return self.openings([index]).get(index)

    def openings(self, indexes: Collection[int]) -> dict[int, Opening]:
        """The held openings of the entries at ``indexes``."""
        wanted = [check_integer(i, "index") for i in indexes]
        if not self.sealed or not wanted:
            return {}
        found: dict[int, Opening] = {}
        for chunk in range(0, len(wanted), 500):
            part = wanted[chunk : chunk + 500]
            rows = self.conn.execute(
                f"SELECT idx, opening, {self.key_column('openings')} FROM openings"
                f" WHERE idx IN ({','.join('?' * len(part))})",
                part,
            ).fetchall()
            keys = self._keys(row[2] for row in rows)
            for index, raw, key_id in rows:
                plain = opened_value(keys, "openings", int(index), key_id, raw)
                if plain is not None:
                    found[int(index)] = _decoded(plain)
        return found

    def blinded(self, tag: str) -> list[tuple[int, bytes]]:
        """(index, box) of the blinded openings filed under ``tag``, in log order."""
        _check_text(tag, "tag")
        if not self.sealed:
            return []
        rows = self.conn.execute(
            "SELECT idx, box FROM blinded WHERE tag = ? ORDER BY idx", (tag,)
        ).fetchall()
        return [(int(i), bytes(box)) for i, box in rows]

    def blinded_among(self, indexes: Collection[int]) -> set[int]:
        """Those of ``indexes`` whose opening is held blinded (an erased person's)."""
        wanted = sorted({check_integer(i, "index") for i in indexes})
        if not self.sealed or not wanted:
            return set()
        found: set[int] = set()
        for chunk in range(0, len(wanted), 500):
            part = wanted[chunk : chunk + 500]
            rows = self.conn.execute(
                f"SELECT idx FROM blinded WHERE idx IN ({','.join('?' * len(part))})", part
            )
            found.update(int(i) for (i,) in rows)
        return found

    def blinded_tags(self) -> set[str]:
        """The tags of every erased person with blinded openings."""
        if not self.sealed:
            return set()
        return {str(t) for (t,) in self.conn.execute("SELECT DISTINCT tag FROM blinded")}

    def origin(self, index: int) -> bytes | None:
        """A relayed record's ``body.origin`` (JSON) while its body is held."""
        if not self.sealed:
            return None
        index = check_integer(index, "index")
        row = self.conn.execute(
            f"SELECT origin, {self.key_column('origins')} FROM origins WHERE idx = ?", (index,)
        ).fetchone()
        if row is None:
            return None
        return opened_value(self._keys([row[1]]), "origins", index, row[1], row[0])

    def opened_leaves(self, kind: str) -> Iterator[tuple[int, dict[str, Any]]]:
        """(index, leaf as its readers know it) of every entry of ``kind``: a v2 leaf with its
        held opening's fields in place of ``person`` (:func:`ledger.sealed.opened`)."""
        if kind not in ENTRY_KINDS:
            raise RangeError(f"unknown entry kind {kind!r}; one of {', '.join(ENTRY_KINDS)}")
        if not self.sealed:
            for index, leaf in self.leaves(kind):
                yield index, json.loads(leaf)
            return
        # Each page's entries first, then their openings: a join of the whole tables ahead
        # of the LIMIT could read the openings from the first each page (PostgreSQL merges).
        for rows in self.dialect.pages(
            self.conn,
            f"SELECT e.idx, e.leaf, o.opening, {self.key_column('o')}"
            " FROM (SELECT idx, leaf FROM entries"
            " WHERE kind = ? AND idx > ? ORDER BY idx LIMIT ?) e"
            " LEFT JOIN openings o ON o.idx = e.idx ORDER BY e.idx",
            (kind,),
        ):
            keys = self._keys(row[3] for row in rows)
            for index, leaf, raw, key_id in rows:
                plain = (
                    opened_value(keys, "openings", int(index), key_id, raw)
                    if raw is not None
                    else None
                )
                held = _decoded(plain) if plain is not None else None
                yield int(index), opened(json.loads(leaf), held, self.suite)

    def leaves(self, kind: str) -> Iterator[tuple[int, bytes]]:
        """(index, leaf) of every entry of ``kind``, in log order, streamed."""
        if kind not in ENTRY_KINDS:
            raise RangeError(f"unknown entry kind {kind!r}; one of {', '.join(ENTRY_KINDS)}")
        pages = self.dialect.pages(
            self.conn,
            "SELECT idx, leaf FROM entries WHERE kind = ? AND idx > ? ORDER BY idx LIMIT ?",
            (kind,),
        )
        return ((int(index), bytes(leaf)) for rows in pages for index, leaf in rows)

    def subject_records(
        self,
        *,
        pilot: str,
        subject: str,
        data_type: str,
        since: str | None,
        until: str | None,
        limit: int,
    ) -> list[HeldRecord]:
        """A person's records of one type whose bodies are still held (erased ones are
        gone), in time order; at most ``limit``."""
        for value, what in ((pilot, "pilot"), (subject, "subject"), (data_type, "data type")):
            _check_text(value, what)
        where, args = _observed_between(since, until)
        rows = self.conn.execute(
            _HELD_RECORD_BY_SUBJECT.format(key=self.key_column("b"))
            + " WHERE r.subject = ? AND r.type = ? AND r.pilot = ?"
            + where
            + " ORDER BY r.observed_at, r.idx LIMIT ?",
            [subject, data_type, pilot, *args, _check_count(limit, "limit")],
        ).fetchall()
        return self._held(rows)

    def subject_matches(
        self,
        *,
        pilot: str,
        subject: str,
        data_type: str,
        since: str | None,
        until: str | None,
        limit: int,
    ) -> list[SubjectMatch]:
        """The same records as :meth:`subject_records`, in the same order, as (index,
        consent) alone: what a search needs of every match to count and page them; the
        bodies of the page it serves come from :meth:`held_records`.

        Read from the subject index alone, not joined to the bodies: an erasure takes the
        subject off the record's row in the commit that deletes its body, so a record in the
        subject index is one whose body is held. The index covers the query (schema.py):
        one or two index pages a search, where the join with the table and the bodies read
        two pages a match, each again after every commit (the reader's page cache starts
        over): ~440 -> ~110 us at 100 matches a person under load (bench/query.py)."""
        for value, what in ((pilot, "pilot"), (subject, "subject"), (data_type, "data type")):
            _check_text(value, what)
        where, args = _observed_between(since, until)
        matches: list[SubjectMatch] = self.conn.execute(
            _SUBJECT_MATCHES.format(where=where),
            [subject, data_type, pilot, *args, _check_count(limit, "limit")],
        ).fetchall()
        return matches

    def held_payloads(self, indexes: Sequence[int]) -> list[tuple[int, bytes]]:
        """(index, payload) of the records at ``indexes`` whose bodies are still held, in
        the order asked: the bodies table alone, one page a record where
        :meth:`held_records` reads two (at most :data:`MAX_HELD_RECORDS`)."""
        wanted = _indexes(indexes)
        if not wanted:
            return []
        rows = self.conn.execute(
            f"SELECT idx, payload, {self.key_column('bodies')} FROM bodies"
            f" WHERE idx IN ({','.join('?' * len(wanted))})",
            wanted,
        ).fetchall()
        keys = self._keys(row[2] for row in rows)
        found = {}
        for index, payload, key_id in rows:
            plain = _payload(keys, int(index), key_id, payload)
            if plain is not None:
                found[int(index)] = plain
        return [(i, found[i]) for i in wanted if i in found]

    def held_records(self, indexes: Sequence[int]) -> list[HeldRecord]:
        """The records at ``indexes`` whose bodies are still held, in the order asked (one
        primary-key read each, in one query; at most :data:`MAX_HELD_RECORDS`)."""
        wanted = _indexes(indexes)
        if not wanted:
            return []
        rows = self.conn.execute(
            _HELD_RECORD.format(key=self.key_column("b"))
            + f" WHERE r.idx IN ({','.join('?' * len(wanted))})",
            wanted,
        ).fetchall()
        found = {record.index: record for record in self._held(rows)}
        return [found[i] for i in wanted if i in found]

    def resource(self, *, pilot: str, data_type: str, resource_id: str) -> HeldRecord | None:
        """The newest held record of one type in a pilot whose resource has the FHIR ``id``
        ``resource_id``, or else whose record id it is (a resource stored without an id is
        named by its record's); with its subject. One indexed read each."""
        for value, what in ((pilot, "pilot"), (data_type, "data type"), (resource_id, "id")):
            _check_text(value, what)
        key = self.key_column("b")
        columns = (
            f"SELECT r.idx, r.id, r.source, r.consent, r.observed_at, b.payload, {key}, r.subject"
        )
        # CROSS JOIN: SQLite's way of keeping the join in this order (bodies by their id
        # first); on both stores an inner join, its condition in the WHERE clause.
        rows = self.conn.execute(
            columns + " FROM bodies b INDEXED BY bodies_by_resource_id CROSS JOIN records r"
            f" WHERE r.idx = b.idx AND {self.dialect.resource_id} = ?"
            + (" AND b.key_id IS NULL" if self.keyed else "")
            + " AND r.pilot = ? AND r.type = ? ORDER BY r.idx DESC LIMIT 1",
            (resource_id, pilot, data_type),
        ).fetchall()
        if self.keyed and self.keys is not None:
            # Sealed bodies by the digest of their id; the newest whose opened body has
            # that id (a 16-byte digest's collision is checked, never trusted), if newer.
            sealed = self.conn.execute(
                columns + " FROM bodies b INDEXED BY bodies_by_resource CROSS JOIN records r"
                " WHERE r.idx = b.idx AND b.resource = ? AND r.pilot = ? AND r.type = ?"
                " ORDER BY r.idx DESC LIMIT 8",
                (
                    resource_digest(self.keys.index_key, pilot, data_type, resource_id),
                    pilot,
                    data_type,
                ),
            ).fetchall()
            for held in self._held(sealed):
                if resource_id_of(held.payload) == resource_id:
                    if not rows or held.index > int(rows[0][0]):
                        return held
                    break
        found = self._held(rows)
        if found:
            return found[0]
        rows = self.conn.execute(
            columns + " FROM records r JOIN bodies b ON b.idx = r.idx"
            " WHERE r.id = ? AND r.pilot = ? AND r.type = ?",
            (resource_id, pilot, data_type),
        ).fetchall()
        found = self._held(rows)
        return found[0] if found else None

    def type_records(
        self,
        *,
        pilot: str,
        data_type: str,
        since: str | None,
        until: str | None,
        after: int,
        limit: int,
    ) -> list[HeldRecord]:
        """Records of one type in a pilot with their bodies, in log order from the cursor
        ``after`` (the last index of the previous page; -1 for the first); at most ``limit``."""
        _check_text(pilot, "pilot")
        _check_text(data_type, "data type")
        where, args = _observed_between(since, until)
        rows = self.conn.execute(
            _HELD_RECORD.format(key=self.key_column("b"))
            + " WHERE r.pilot = ? AND r.type = ? AND r.idx > ?"
            + where
            + " ORDER BY r.idx LIMIT ?",
            [pilot, data_type, check_integer(after, "after"), *args, _check_count(limit, "limit")],
        ).fetchall()
        return self._held(rows)

    def bodies_of_consent(self, pilot: str, subject: str, consent: str) -> list[HeldBody]:
        """The held bodies of ``subject``'s records that name ``consent``, in log order
        (through the subject index: records carry no consent index)."""
        for value, what in ((pilot, "pilot"), (subject, "subject"), (consent, "consent")):
            _check_text(value, what)
        rows = self.conn.execute(
            "SELECT r.idx, r.id, r.observed_at FROM records r INDEXED BY records_by_subject"
            " JOIN bodies b ON b.idx = r.idx"
            " WHERE r.subject = ? AND r.pilot = ? AND r.consent = ? ORDER BY r.idx",
            (subject, pilot, consent),
        ).fetchall()
        return [HeldBody(int(i), str(rid), str(at)) for i, rid, at in rows]

    def oldest_bodies(self, pilot: str, data_type: str, limit: int) -> list[HeldBody]:
        """The oldest held bodies of one type in a pilot, oldest observation first; at most
        ``limit``."""
        _check_text(pilot, "pilot")
        _check_text(data_type, "data type")
        rows = self.conn.execute(
            "SELECT r.idx, r.id, r.observed_at FROM records r JOIN bodies b ON b.idx = r.idx"
            " WHERE r.pilot = ? AND r.type = ? ORDER BY r.observed_at LIMIT ?",
            (pilot, data_type, _check_count(limit, "limit")),
        ).fetchall()
        return [HeldBody(int(i), str(rid), str(at)) for i, rid, at in rows]

    def tail(self, start: int, end: int, *, bodies_of: Collection[str]) -> list[TailEntry]:
        """Entries ``[start, end)`` with their record columns, and the bodies of
        non-personal records (no subject) of the types ``bodies_of`` only."""
        check_integer(start, "start")
        check_integer(end, "end")
        if not 0 <= start <= end:
            raise RangeError(f"tail range [{start}, {end}) is negative or reversed")
        types = list(bodies_of)
        for t in types:
            _check_text(t, "data type")
        sealed = self.sealed
        sql = _TAIL.format(
            # "IN ()" is SQLite's alone; "IN (NULL)" holds for no row on both stores.
            types=",".join("?" * len(types)) or "NULL",
            key=self.key_column("b"),
            opening=_TAIL_OPENING.format(key=self.key_column("o")) if sealed else "",
            join=_TAIL_JOIN if sealed else "",
        )
        rows = self.conn.execute(sql, [*types, start, end]).fetchall()
        keys = self._keys(k for row in rows for k in row[10::2])
        tail = []
        for row in rows:
            index = int(row[0])
            payload = _payload(keys, index, row[10], row[9]) if row[9] is not None else None
            opening = None
            if sealed and row[11] is not None:
                opening = opened_value(keys, "openings", index, row[12], row[11])
            tail.append(
                TailEntry(
                    *(row[0], row[1], row[2], row[3], row[4]),
                    *(row[5], row[6], row[7], row[8]),
                    payload=payload,
                    opening=opening,
                )
            )
        return tail


def _indexes(indexes: Sequence[int]) -> list[int]:
    if len(indexes) > MAX_HELD_RECORDS:
        raise RangeError(f"at most {MAX_HELD_RECORDS} records at once, not {len(indexes)}")
    return [check_integer(i, "index") for i in indexes]


def _payload(keys: Mapping[int, DataKey], index: int, key_id: Any, stored: Any) -> bytes | None:
    """A body's JCS(payload) from its stored row (None if its key is destroyed)."""
    plain = opened_value(keys, "bodies", index, key_id, stored)
    if plain is None or key_id is None:
        return plain
    return body_parts(plain)[0]


def _decoded(raw: bytes) -> Opening:
    try:
        return Opening.decode(raw)
    except InvalidEnvelope as exc:
        raise StoreError(f"a stored opening is not one: {exc.detail}") from None
