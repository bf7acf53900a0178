"""The ledger's store: entries with their exact leaf bytes, node hashes, checkpoints, and
erasable record bodies, in a SQLite file or a PostgreSQL database (:mod:`ledger.dialect`
says which a location names, and holds what differs).

One writer (the hub's sequencer) appends batches in single durable transactions (SQLite:
WAL, synchronous=FULL; PostgreSQL: synchronous_commit=on); readers use their own
connections (SQLite: read-only; PostgreSQL: autocommit, so each statement sees the latest
commits). The hub's own reads (records of a subject, leaves of a kind, the tail, ...) are
in :mod:`ledger.queries`; every reader has them.

Given a key store (:mod:`ledger.keystore`), the writer seals every body, opening and origin
it stores under its scope's data key (:mod:`ledger.sealing`), and every reader opens them;
an erasure destroys the keys nothing held is sealed under any more (:meth:`LedgerWriter.
append`), so that the copies of the erased values left anywhere (PostgreSQL's dead rows,
its WAL, a backup) are ciphertext no one can open.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from . import postgres
from .datakeys import ENTRY_TYPES, DataKey, Scope, body_parts, body_plaintext, resource_digest
from .datakeys import seal as seal_value
from .dialect import Connection, Dialect, Fence, Location, dialect_of
from .dialect import describe as describe  # where a ledger is, for callers of the store
from .dialect import location_of as location_of
from .envelope import SignedRecord
from .errors import FencedError, LedgerError, RangeError, StorageError, StoreError, SuiteError
from .hashing import HASH_SIZE, LEAF_PREFIX
from .keystore import KeyStore
from .queries import LedgerQueries
from .schema import READABLE_SCHEMAS, SCHEMA_VERSION, TABLES, resource_id_of
from .sealed import Opening, subject_tag
from .sealed import blind as blind_for
from .sealing import check_triples, entry_scope, keys_of, opened_value
from .sqlite import MAX_INTEGER, check_integer
from .suite import DEFAULT_SUITE, Suite, suite_named
from .tree import (
    Frontier,
    Node,
    consistency_ranges,
    fold_right,
    hashes_for_ranges,
    inclusion_ranges,
    range_nodes,
)

log = logging.getLogger("swiftchain.ledger.store")

#: Largest range one entries() call returns.
MAX_ENTRIES_PAGE = 1000
#: The ``meta`` key under which a hub with witnesses keeps the newest checkpoint that met its
#: trust policy's quorum, with the cosignatures (the ``checkpoints`` rows hold the hub's own).
QUORUM_META = "quorum_checkpoint"
#: The ``meta`` key naming the log's crypto suite (:mod:`ledger.suite`), set at creation.
SUITE_META = "suite"


@dataclass(frozen=True)
class RecordColumns:
    """The header fields the store indexes records by (copied from the signed header)."""

    id: str
    pilot: str
    source: str
    seq: int
    type: str
    subject: str | None
    consent: str | None
    observed_at: str
    key: str


@dataclass(frozen=True)
class NewEntry:
    kind: str
    leaf: bytes
    sig: str | None = None
    record: RecordColumns | None = None
    payload: bytes | None = None
    """JCS(payload) of a record's body, stored off-log."""
    salt: str | None = None
    opening: Opening | None = None
    """The opening of a v2 leaf's ``person`` commitment, stored off-log."""
    origin: bytes | None = None
    """A relayed record's ``body.origin`` (JSON), stored off-log with its body."""
    blinded_for: tuple[str, str] | None = None
    """(pilot, subject): store ``opening`` blinded for that erased person, not in the open."""

    @classmethod
    def of_record(cls, record: SignedRecord, leaf: bytes, payload: bytes) -> NewEntry:
        """A record's entry: its leaf (JCS(header)), its index columns (the subject and
        Consent from its opening), its body, opening and device origin off the log."""
        h, origin = record.header, record.body.origin
        return cls(
            "record",
            leaf,
            sig=record.sig,
            record=RecordColumns(
                h.id,
                h.pilot,
                h.source,
                h.seq,
                h.type,
                record.subject,
                record.consent,
                h.observed_at,
                h.key,
            ),
            payload=payload,
            salt=record.body.salt,
            opening=record.opening(),
            origin=origin.model_dump_json().encode() if origin is not None else None,
        )


@dataclass(frozen=True)
class Blinded:
    """An entry's opening as :func:`ledger.sealed.blind` sealed it, with its tag."""

    index: int
    tag: str
    box: bytes


@dataclass(frozen=True, init=False)
class Entry:
    index: int
    kind: str
    leaf: bytes
    leaf_hash: bytes
    sig: str | None

    def __init__(self, index: int, kind: str, leaf: bytes, leaf_hash: bytes, sig: str | None):
        # Straight into __dict__: a frozen dataclass's own __init__ sets each field through
        # object.__setattr__, 0.44 us an entry against 0.24 here, and every append returns
        # one per entry. Still frozen (its __setattr__ refuses), equal and hashable by value.
        fields = self.__dict__
        fields["index"] = index
        fields["kind"] = kind
        fields["leaf"] = leaf
        fields["leaf_hash"] = leaf_hash
        fields["sig"] = sig


@dataclass(frozen=True)
class StoredCheckpoint:
    size: int
    root: bytes
    note: str
    created_at: float


#: Scopes a writer keeps built (:meth:`LedgerWriter._batch_keys`), ~300 bytes each.
_SCOPES_KEPT = 65536
#: Values one ``IN (...)`` list of a batched lookup carries (SQLite's bound-parameter limit
#: is 32766 since 3.32, 999 before).
_LOOKUP_PART = 500


def _parts(values: list[Any]) -> Iterator[list[Any]]:
    for start in range(0, len(values), _LOOKUP_PART):
        yield values[start : start + _LOOKUP_PART]


def _delete(c: Connection, table: str, indexes: list[int]) -> set[int]:
    """Delete the rows of ``table`` at ``indexes``; the key ids they were sealed under."""
    released: set[int] = set()
    for part in _parts(sorted(set(indexes))):
        rows = c.execute(
            f"DELETE FROM {table} WHERE idx IN ({','.join('?' * len(part))}) RETURNING key_id",
            part,
        ).fetchall()
        released.update(int(k) for (k,) in rows if k is not None)
    return released


def _still_sealed_under(c: Connection, key_ids: set[int]) -> set[int]:
    """Those of ``key_ids`` some stored value is still sealed under (one indexed probe a
    key and table)."""
    used: set[int] = set()
    for part in _parts(sorted(key_ids)):
        marks = ",".join("?" * len(part))
        sql = " UNION ".join(
            f"SELECT key_id FROM {table} WHERE key_id IN ({marks})"
            for table in ("bodies", "openings", "origins")
        )
        used.update(int(k) for (k,) in c.execute(sql, part * 3).fetchall())
    return used


class LedgerReader(LedgerQueries):
    """Read access to a ledger (a SQLite file or a PostgreSQL database: ``location``, a
    path or a URL, :func:`location_of`) on a connection of its own.

    ``conn`` is for ``ledger/`` alone: code elsewhere reads through these methods and the
    named queries of :class:`ledger.queries.LedgerQueries`.

    ``keys``: the key store the ledger's sealed values open with (the caller's to close);
    without it a read that meets a sealed value raises StoreError saying so.
    """

    def __init__(
        self,
        location: Path | str,
        *,
        keys: KeyStore | None = None,
        _conn: Connection | None = None,
    ) -> None:
        self.location: Location = location_of(location)
        self.dialect: Dialect = dialect_of(self.location)
        self.keys = keys
        #: The log's crypto suite (``meta`` ``suite``; a log from before suites is
        #: ``ed25519-sha256``): its tree hash, commitments and signatures.
        self.suite: Suite = DEFAULT_SUITE
        if _conn is not None:
            self.conn = _conn  # the writer's, which makes the schema itself
            self.sealed = True
            self.keyed = True
            return
        self.conn = self.dialect.open_reader(self.location)
        try:
            self._check_schema()
            self.suite = self._stored_suite()
        except BaseException:
            self.conn.close()
            raise

    @property
    def path(self) -> Path:
        """The SQLite file; StoreError for a PostgreSQL ledger, which has none."""
        if isinstance(self.location, Path):
            return self.location
        raise StoreError(f"{self.where} is a PostgreSQL ledger, not a file")

    @property
    def where(self) -> str:
        """The location for messages (a URL without its password)."""
        return describe(self.location)

    def _check_schema(self) -> None:
        try:
            row = self.conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        except self.dialect.errors as exc:
            raise StoreError(f"{self.where} is not a Swiftchain ledger: {exc}") from None
        if row is None or row[0] not in READABLE_SCHEMAS:
            raise StoreError(f"{self.where} is not a Swiftchain ledger (schema {row})")
        #: A schema "1" file has no openings (every leaf in it is v1).
        self.sealed = row[0] != "1"
        #: A schema "1" or "2" file has no key ids (every value in it is in the open).
        self.keyed = row[0] not in ("1", "2")

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _stored_suite(self) -> Suite:
        try:
            return suite_named(self.meta(SUITE_META))
        except SuiteError as exc:
            raise StoreError(f"{self.where}: {exc}") from None

    # -- metadata -------------------------------------------------------------------------
    def meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def size(self) -> int:
        row = self.conn.execute("SELECT max(idx) FROM entries").fetchone()
        return 0 if row[0] is None else int(row[0]) + 1

    # -- nodes, roots and proofs -----------------------------------------------------------
    def nodes(self, wanted: Sequence[Node]) -> dict[Node, bytes]:
        """Stored hashes of the given complete subtrees (level 0 = leaf hashes)."""
        if not wanted:
            return {}
        by_row: dict[int, list[Node]] = {}
        for lvl, i in wanted:
            by_row.setdefault(((i + 1) << lvl) - 1, []).append((lvl, i))
        marks = ",".join("?" * len(by_row))
        found: dict[Node, bytes] = {}
        for row, lh, blob in self.conn.execute(
            f"SELECT idx, leaf_hash, nodes FROM entries WHERE idx IN ({marks})", list(by_row)
        ):
            for lvl, i in by_row[row]:
                h = lh if lvl == 0 else blob[(lvl - 1) * HASH_SIZE : lvl * HASH_SIZE]
                if len(h) == HASH_SIZE:
                    found[(lvl, i)] = h
        return found

    def _check_size(self, size: int, what: str = "size") -> None:
        check_integer(size, what)
        current = self.size()
        if not 0 <= size <= current:
            raise RangeError(f"{what} {size} is outside the log (0..{current})")

    def root(self, size: int) -> bytes:
        """MTH of the first ``size`` entries, from O(log n) stored nodes."""
        self._check_size(size)
        tree = self.suite.tree
        if size == 0:
            return tree.empty_root
        nodes = range_nodes(0, size)
        found = self.nodes(nodes)
        return fold_right([found[n] for n in nodes], tree)

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        self._check_size(size)
        check_integer(index, "index")
        if not 0 <= index < size:
            raise RangeError(f"index {index} is outside a tree of size {size}")
        return hashes_for_ranges(inclusion_ranges(index, size), self.nodes, self.suite.tree)

    def consistency_proof(self, first: int, second: int) -> list[bytes]:
        self._check_size(second, "second")
        check_integer(first, "first")
        if not 0 < first <= second:
            raise RangeError(f"no consistency proof from size {first} to size {second}")
        return hashes_for_ranges(consistency_ranges(first, second), self.nodes, self.suite.tree)

    # -- entries ---------------------------------------------------------------------------
    def entries(self, start: int, end: int) -> list[Entry]:
        check_integer(start, "start")
        check_integer(end, "end")
        if not 0 <= start <= end or end - start > MAX_ENTRIES_PAGE:
            raise RangeError(f"entries range [{start}, {end}) is empty, reversed or too long")
        rows = self.conn.execute(
            "SELECT idx, kind, leaf, leaf_hash, sig FROM entries"
            " WHERE idx >= ? AND idx < ? ORDER BY idx",
            (start, end),
        ).fetchall()
        return [Entry(*row) for row in rows]

    def entry(self, index: int) -> Entry:
        check_integer(index, "index")
        rows = self.entries(index, index + 1) if 0 <= index < MAX_INTEGER else []
        if not rows:
            raise RangeError(f"no entry at index {index}")
        return rows[0]

    # -- records and bodies ----------------------------------------------------------------
    def record_index(self, record_id: str) -> int | None:
        row = self.conn.execute("SELECT idx FROM records WHERE id = ?", (record_id,)).fetchone()
        return None if row is None else int(row[0])

    def seq_index(self, pilot: str, source: str, seq: int) -> int | None:
        row = self.conn.execute(
            "SELECT idx FROM records WHERE pilot = ? AND source = ? AND seq = ?",
            (pilot, source, seq),
        ).fetchone()
        return None if row is None else int(row[0])

    def known_records(self, ids: Iterable[str]) -> dict[str, int]:
        """The log index of each of ``ids`` that a record on the log has (the others are
        left out): :meth:`record_index` for a whole batch, in one query per 500 ids."""
        wanted = list(dict.fromkeys(ids))
        for record_id in wanted:
            if not isinstance(record_id, str):
                raise RangeError(f"a record id is a string, not {record_id!r}")
        found: dict[str, int] = {}
        for part in _parts(wanted):
            marks = ",".join("?" * len(part))
            for record_id, index in self.conn.execute(
                f"SELECT id, idx FROM records WHERE id IN ({marks})", part
            ):
                found[str(record_id)] = int(index)
        return found

    def used_seqs(self, seqs: Iterable[tuple[str, str, int]]) -> set[tuple[str, str, int]]:
        """Those of the (pilot, source, seq) keys that a record on the log already has:
        :meth:`seq_index` for a whole batch, in one query per source and 500 seqs."""
        by_source: dict[tuple[str, str], list[int]] = {}
        for key in seqs:
            try:
                pilot, source, seq = key
            except (TypeError, ValueError):
                raise RangeError(f"a seq key is (pilot, source, seq), not {key!r}") from None
            if not isinstance(pilot, str) or not isinstance(source, str):
                raise RangeError(f"a seq key's pilot and source are strings, not {key!r}")
            by_source.setdefault((pilot, source), []).append(check_integer(seq, "seq"))
        used: set[tuple[str, str, int]] = set()
        for (pilot, source), numbers in by_source.items():
            for part in _parts(list(dict.fromkeys(numbers))):
                marks = ",".join("?" * len(part))
                for (seq,) in self.conn.execute(
                    f"SELECT seq FROM records WHERE pilot = ? AND source = ? AND seq IN ({marks})",
                    [pilot, source, *part],
                ):
                    used.add((pilot, source, int(seq)))
        return used

    def body(self, index: int) -> dict[str, Any] | None:
        """``{"payload": ..., "salt": ...}`` of a record, or None once erased (its row
        deleted, or its key destroyed)."""
        check_integer(index, "index")
        row = self.conn.execute(
            f"SELECT payload, salt, {self.key_column('bodies')} FROM bodies WHERE idx = ?",
            (index,),
        ).fetchone()
        if row is None:
            return None
        payload, salt, key_id = row
        if key_id is None:
            return {"payload": json.loads(payload), "salt": salt}
        keys = keys_of(self.keys, [key_id], self.where)
        plain = opened_value(keys, "bodies", index, key_id, payload)
        if plain is None:
            return None
        raw, salt = body_parts(plain)
        return {"payload": json.loads(raw), "salt": salt}

    # -- checkpoints -----------------------------------------------------------------------
    def quorum_checkpoint(self) -> str | None:
        """The newest checkpoint that met the witnesses' quorum, cosigned (None without)."""
        return self.meta(QUORUM_META)

    def latest_checkpoint(self) -> StoredCheckpoint | None:
        row = self.conn.execute(
            "SELECT size, root, note, created_at FROM checkpoints ORDER BY size DESC LIMIT 1"
        ).fetchone()
        return None if row is None else StoredCheckpoint(*row)

    def checkpoint_within(self, low: int, high: int) -> StoredCheckpoint | None:
        """The largest stored checkpoint with ``low < size <= high`` (a reader catching up
        in steps ends each on a signed tree head, so each step is verified against one)."""
        check_integer(low, "low")
        check_integer(high, "high")
        if not 0 <= low <= high:
            raise RangeError(f"checkpoint sizes ({low}, {high}] are negative or reversed")
        row = self.conn.execute(
            "SELECT size, root, note, created_at FROM checkpoints"
            " WHERE size > ? AND size <= ? ORDER BY size DESC LIMIT 1",
            (low, high),
        ).fetchone()
        return None if row is None else StoredCheckpoint(*row)

    def checkpoints(self) -> Iterator[StoredCheckpoint]:
        for row in self.conn.execute(
            "SELECT size, root, note, created_at FROM checkpoints ORDER BY size"
        ):
            yield StoredCheckpoint(*row)


class LedgerWriter(LedgerReader):
    """The single writer: appends batches in one durable transaction each.

    ``fence`` (PostgreSQL only; ignored on SQLite, where the file lock is the single-writer
    guarantee) is called with the writer's connection inside every write transaction, right
    after ``BEGIN`` and before any write: it raises :class:`ledger.errors.FencedError` to
    refuse it (:mod:`ledger.lease` checks there that this process still holds the log's
    lease), and the transaction is rolled back and the FencedError raised as it is. That
    includes opening's own writes (a new ledger's schema version and origin), so the lease
    is held before the writer opens; creating the tables (``CREATE ... IF NOT EXISTS``,
    which changes nothing on an existing ledger) is not fenced.
    ``max_page_count`` caps a SQLite file (a disk quota); a PostgreSQL server has its own.

    ``keys``: the key store to seal under (module docstring); without one, values are
    stored in the open, as before schema "3". The writer must be the only process that
    destroys keys in it (:mod:`ledger.keystore`). Opening destroys the keys an erasure
    committed and a crash kept from being destroyed.
    """

    def __init__(
        self,
        location: Path | str,
        *,
        origin: str | None = None,
        suite: Suite | None = None,
        max_page_count: int | None = None,
        fence: Fence | None = None,
        keys: KeyStore | None = None,
    ) -> None:
        location = location_of(location)
        dialect = dialect_of(location)
        conn = dialect.open_writer(location, max_page_count=max_page_count)
        super().__init__(location, keys=keys, _conn=conn)
        self._fence = fence if dialect.fences else None
        #: Whether a write failed on the storage: its commit may have landed all the same
        #: (a connection lost after COMMIT was sent), so the next append first reads the
        #: tree back from what is committed.
        self._unsure = False
        # The writer's connection is used from the sequencer's executor thread and from
        # checkpoint signing; one lock keeps their transactions apart (on PostgreSQL the
        # connection's own, which its every statement takes).
        self._lock = dialect.write_lock(conn)
        #: Keys an erasure committed to destroy that the key store has not destroyed yet
        #: (``doomed_keys``): none is sealed under again.
        self._doomed: set[int] = set()
        self._scopes: dict[tuple[Any, ...], Scope | None] = {}
        try:
            self._open(origin, suite)
            with self._lock:
                self._doomed = self._noted_doomed()
                if self._doomed:
                    self._destroy_doomed()
        except BaseException:
            conn.close()
            raise

    def _open(self, origin: str | None, suite: Suite | None) -> None:
        where = self.where
        try:
            existing = self.meta("schema")
            if existing not in (None, *READABLE_SCHEMAS):
                raise StoreError(f"{where} has ledger schema {existing}, not {SCHEMA_VERSION}")
            stored_suite = self.meta(SUITE_META)
            # A log written before suites is an ed25519-sha256 one.
            if stored_suite is None and suite is not None and suite is not DEFAULT_SUITE:
                if super().size():
                    raise StoreError(f"{where} is an {DEFAULT_SUITE.name} log, not {suite.name}")
            if (
                existing != SCHEMA_VERSION
                or (origin is not None and self.meta("origin") is None)
                or stored_suite is None
            ):
                with self._lock, self._write(f"{where} is not a usable ledger"):
                    # The suite is fixed when the log is created, and never changes.
                    self.conn.execute(
                        "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
                        (SUITE_META, (suite or DEFAULT_SUITE).name),
                    )
                    # "1" -> "2": the schema script created the tables that are new in "2";
                    # "2" -> "3": the dialect's opening added the columns of sealing.
                    self._set_meta("schema", SCHEMA_VERSION)
                    if origin is not None:
                        self.conn.execute(
                            "INSERT INTO meta (key, value) VALUES ('origin', ?)"
                            " ON CONFLICT (key) DO NOTHING",
                            (origin,),
                        )
            if origin is not None and (stored := self.meta("origin")) != origin:
                raise StoreError(f"{where} is the log of {stored!r}, not {origin!r}")
            self.suite = self._stored_suite()
            if suite is not None and self.suite is not suite:
                raise StoreError(
                    f"{where} is an {self.suite.name} log, not {suite.name}: a log's crypto"
                    " suite is fixed when it is created"
                )
            self.reload()
        except self.dialect.errors as exc:
            raise self.dialect.failure(f"{where} is not a usable ledger", exc) from None

    def reload(self) -> None:
        """Take the size and the tree's frontier from the stored nodes, as opening does
        (after another writer may have appended: a lease taken over)."""
        with self._lock:
            try:
                size = super().size()
                self.frontier = Frontier.from_nodes(size, self.nodes, self.suite.tree)
            except self.dialect.errors as exc:
                raise self.dialect.failure(f"cannot read the tree of {self.where}", exc) from None
            self._size = size
            self._unsure = False

    @contextmanager
    def _write(self, what: str, *, fenced: bool = True) -> Iterator[Connection]:
        """One write transaction, for a caller holding ``_lock``: BEGIN, the fence, the
        caller's statements, COMMIT. On any failure, ROLLBACK and a named error: the
        fence's FencedError as it is, a storage failure as StorageError or StoreError
        saying ``what`` failed, anything else as it is."""
        c, dialect = self.conn, self.dialect
        try:
            dialect.begin(c)
            if fenced and self._fence is not None:
                assert isinstance(c, postgres.Connection)
                self._fence(c)
            yield c
            dialect.commit(c)
        except FencedError:
            dialect.rollback(c)
            raise
        except StoreError as exc:
            # A PostgreSQL connection's failures come named already (ledger.postgres).
            dialect.rollback(c)
            self._unsure = self._unsure or isinstance(exc, StorageError)
            raise type(exc)(f"{what}: {exc}") from None
        except dialect.errors as exc:
            dialect.rollback(c)
            failure = dialect.failure(what, exc)
            self._unsure = self._unsure or isinstance(failure, StorageError)
            raise failure from None
        except BaseException:
            dialect.rollback(c)
            raise

    def _set_meta(self, key: str, value: str) -> None:
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def set_meta(self, key: str, value: str) -> None:
        with self._lock, self._write(f"cannot set {key} in {self.where}"):
            self._set_meta(key, value)

    def append(
        self,
        batch: Sequence[NewEntry],
        *,
        erase: Sequence[int] = (),
        forget: Sequence[int] = (),
        blind: Sequence[Blinded] = (),
        erase_scopes: Sequence[tuple[str, str, str]] = (),
        retire: Sequence[tuple[str, str, str]] = (),
    ) -> list[Entry]:
        """Append ``batch`` in one durable transaction, in which also the records at
        ``erase`` lose their bodies, openings and origins (and their index its subject and
        Consent), the entries at ``forget`` their openings, and the entries of ``blind``
        have their openings replaced by the blinded ones.

        With a key store, the keys of the values deleted that nothing held is sealed under
        any more are destroyed after the commit (noted in ``doomed_keys`` in it), and so
        are, whatever they still hold, every key of each (pilot, subject, Consent) of
        ``erase_scopes`` with that person's ``@access`` key (a withdrawal with erasure),
        and the keys of each (pilot, data type, day) of ``retire`` for days before that
        day which hold nothing (retention's backstop: :meth:`ledger.keystore.KeyStore.
        ids_of`).

        Returns the stored entries with their indexes. On any failure nothing is written and
        the in-memory tree is unchanged. After an erasure on SQLite the WAL is checkpointed
        and truncated, so that no copy of an erased page stays in it.
        """
        try:
            check_triples(erase_scopes, "an erased scope is (pilot, subject, consent) strings")
            check_triples(retire, "a retired day is (pilot, data type, day) strings")
            return self._append(batch, erase, forget, blind, erase_scopes, retire)
        except (TypeError, AttributeError, ValueError, OverflowError, LedgerError) as exc:
            if isinstance(exc, StoreError):
                raise
            raise StoreError(f"append of a malformed batch: {exc}") from None

    def _append(
        self,
        batch: Sequence[NewEntry],
        erase: Sequence[int],
        forget: Sequence[int],
        blind: Sequence[Blinded],
        erase_scopes: Sequence[tuple[str, str, str]],
        retire: Sequence[tuple[str, str, str]],
    ) -> list[Entry]:
        erased = [check_integer(i, "erased index") for i in erase]
        blinded = [(check_integer(b.index, "blinded index"), b.tag, b.box) for b in blind]
        forgotten = [check_integer(i, "forgotten index") for i in forget]
        forgotten += [row[0] for row in blinded]
        now = time.time()
        dialect = self.dialect
        keys = self.keys
        # The hot path (group commit): hash the batch in one comprehension, extend
        # the tree in one call, and build rows without per-entry helper calls.
        digest = self.suite.tree.digest
        leaf_hashes = [digest(LEAF_PREFIX + e.leaf) for e in batch]
        # Under the lock from the frontier copy to the commit, so that two callers cannot
        # number their entries from the same size.
        with self._lock:
            if self._unsure:
                self.reload()
            if self._doomed:
                self._destroy_doomed()  # before anything is sealed again (none under those)
            frontier = self.frontier.copy()
            start = frontier.size
            closed = frontier.extend(leaf_hashes)
            entry_rows = [
                (index, e.kind, e.leaf, lh, nodes, e.sig, now)
                for index, e, lh, nodes in zip(
                    range(start, frontier.size), batch, leaf_hashes, closed, strict=True
                )
            ]
            # Entries with more than a leaf (records, sealed entries), found in one pass.
            extra = [
                (index, e)
                for index, e in enumerate(batch, start)
                if e.record is not None
                or e.payload is not None
                or e.opening is not None
                or e.origin is not None
            ]
            record_rows = [
                (
                    index,
                    r.id,
                    r.pilot,
                    r.source,
                    r.seq,
                    r.type,
                    r.subject,
                    r.consent,
                    r.observed_at,
                    r.key,
                )
                for index, e in extra
                if (r := e.record) is not None
            ]
            key_of = self._batch_keys(extra) if keys is not None else {}
            body_rows, opening_rows, origin_rows = self._sealed_rows(extra, key_of)
            blinded += [
                (
                    index,
                    subject_tag(*e.blinded_for),
                    blind_for(
                        e.opening, pilot=e.blinded_for[0], subject=e.blinded_for[1], index=index
                    ),
                )
                for index, e in extra
                if e.opening is not None and e.blinded_for is not None
            ]
            # What a withdrawal destroys whatever it holds, and the backstop's candidates,
            # listed before the transaction (the key store is another database).
            scope_ids: set[int] = set()
            retired: set[int] = set()
            if keys is not None:
                for pilot, subject, consent in erase_scopes:
                    scope_ids.update(keys.ids_of_scope(pilot, subject, consent))
                    scope_ids.update(
                        keys.ids_of_scope(pilot, subject, None, types=[ENTRY_TYPES["access"]])
                    )
                for pilot, data_type, day in retire:
                    retired.update(keys.ids_of(pilot, data_type, day))
            doomed: set[int] = set()
            with self._write(f"append of {len(batch)} entries failed") as c:
                dialect.insert(c, "entries", TABLES["entries"], entry_rows)
                dialect.insert(c, "records", TABLES["records"], record_rows)
                dialect.insert(c, "bodies", dialect.body_columns, dialect.body_rows(body_rows))
                dialect.insert(c, "openings", TABLES["openings"], opening_rows)
                dialect.insert(c, "origins", TABLES["origins"], origin_rows)
                released: set[int] = set()
                if erased:
                    released |= _delete(c, "bodies", erased)
                    released |= _delete(c, "origins", erased)
                    c.executemany(
                        "UPDATE records SET subject = NULL, consent = NULL WHERE idx = ?",
                        [(i,) for i in erased],
                    )
                if erased or forgotten:
                    released |= _delete(c, "openings", erased + forgotten)
                if blinded:
                    c.executemany(
                        "INSERT INTO blinded (idx, tag, box) VALUES (?,?,?) ON CONFLICT (idx)"
                        " DO UPDATE SET tag = excluded.tag, box = excluded.box",
                        blinded,
                    )
                candidates = released | retired
                if candidates:
                    doomed = candidates - _still_sealed_under(c, candidates)
                doomed |= scope_ids
                if doomed:
                    c.executemany(
                        "INSERT INTO doomed_keys (key_id) VALUES (?) ON CONFLICT DO NOTHING",
                        [(k,) for k in sorted(doomed)],
                    )
            self.frontier = frontier
            self._size = frontier.size
            if erased or forgotten:
                dialect.after_erasure(self.conn)
            if doomed:
                self._doomed |= doomed
                self._destroy_doomed()
        return [Entry(row[0], row[1], row[2], row[3], row[5]) for row in entry_rows]

    def _batch_keys(self, extra: list[tuple[int, NewEntry]]) -> dict[int, DataKey]:
        """The data key of each entry of ``extra`` with values to seal, by index: the keys
        of the batch's scopes in one call to the key store (those missing made durably
        first: a value is sealed only under a key that is on disk)."""
        assert self.keys is not None
        scopes: dict[int, Scope] = {}
        # One Scope a distinct (pilot, subject, Consent, type, day), kept across batches
        # (building one checks its parts: ~3 us, where a person's readings of a day come in
        # many batches). A value, so never stale; the keys are the key store's to cache.
        made = self._scopes
        if len(made) > _SCOPES_KEPT:
            made.clear()
        for index, e in extra:
            if e.payload is None and e.origin is None and (e.opening is None or e.blinded_for):
                continue
            r = e.record
            if r is not None:
                part = (r.pilot, r.subject, r.consent, r.type, r.observed_at[:10])
                if part not in made:
                    made[part] = entry_scope(
                        e.kind,
                        e.leaf,
                        pilot=r.pilot,
                        subject=r.subject,
                        consent=r.consent,
                        data_type=r.type,
                        observed_at=r.observed_at,
                        opening=e.opening,
                    )
                scope = made[part]
            else:
                scope = entry_scope(
                    e.kind,
                    e.leaf,
                    pilot=None,
                    subject=None,
                    consent=None,
                    data_type=None,
                    observed_at=None,
                    opening=e.opening,
                )
            if scope is not None:
                scopes[index] = scope
        if not scopes:
            return {}
        found = self.keys.keys_for(scopes.values())
        key_of = {index: found[scope] for index, scope in scopes.items()}
        if self._doomed and not self._doomed.isdisjoint(k.id for k in found.values()):
            # The key store kept them (it did not answer the destroy): nothing is sealed
            # under a key that is to go.
            raise StorageError(
                f"the key store {self.keys.where} has not destroyed the keys of an erasure yet;"
                " nothing is sealed under them meanwhile"
            )
        return key_of

    def _sealed_rows(
        self, extra: list[tuple[int, NewEntry]], key_of: dict[int, DataKey]
    ) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        """The batch's bodies, openings and origins rows: sealed under ``key_of``'s key for
        their entry, or in the open (key_id NULL)."""
        index_key = self.keys.index_key if self.keys is not None else b""
        bodies: list[tuple[Any, ...]] = []
        openings: list[tuple[Any, ...]] = []
        origins: list[tuple[Any, ...]] = []
        for index, e in extra:
            key = key_of.get(index)
            if e.payload is not None:
                if key is None:
                    bodies.append((index, e.payload, e.salt, None, None))
                else:
                    r = e.record
                    named = resource_id_of(e.payload) if r is not None else None
                    resource = (
                        resource_digest(index_key, r.pilot, r.type, named)
                        if r is not None and named is not None
                        else None
                    )
                    sealed = seal_value(
                        key, "bodies", index, body_plaintext(e.payload, e.salt or "")
                    )
                    bodies.append((index, sealed, "", key.id, resource))
            if e.opening is not None and e.blinded_for is None:
                raw = e.opening.encode()
                if key is None:
                    openings.append((index, raw, None))
                else:
                    openings.append((index, seal_value(key, "openings", index, raw), key.id))
            if e.origin is not None:
                if key is None:
                    origins.append((index, e.origin, None))
                else:
                    origins.append((index, seal_value(key, "origins", index, e.origin), key.id))
        return bodies, openings, origins

    def _noted_doomed(self) -> set[int]:
        try:
            return {int(k) for (k,) in self.conn.execute("SELECT key_id FROM doomed_keys")}
        except self.dialect.errors as exc:
            raise self.dialect.failure(f"cannot read {self.where}", exc) from None

    def _destroy_doomed(self) -> None:
        """Destroy the keys noted in ``doomed_keys`` (a caller holding ``_lock``), then
        forget them there. The ledger committed their erasure first, so a crash or a key
        store that does not answer leaves them noted, to be destroyed by the next erasure or
        opening (destroying twice is harmless); nothing is sealed under them meanwhile."""
        if self.keys is None or not self._doomed:
            return  # a writer without a key store leaves them for one with it
        ids = sorted(self._doomed)
        try:
            self.keys.destroy(ids)
        except StoreError as exc:
            log.warning("the keys of an erasure are not destroyed yet (%s); retried", exc)
            return
        try:
            with self._write(f"cannot forget the destroyed keys in {self.where}") as c:
                for part in _parts(ids):
                    c.execute(
                        f"DELETE FROM doomed_keys WHERE key_id IN ({','.join('?' * len(part))})",
                        part,
                    )
        except StoreError as exc:
            # Destroyed all the same: only the note stays, for the next time.
            log.warning("%s", exc)
        self._doomed.clear()

    def add_checkpoint(self, size: int, root: bytes, note: str) -> None:
        check_integer(size, "checkpoint size")
        with self._lock, self._write(f"cannot store checkpoint at size {size}") as c:
            c.execute(
                "INSERT INTO checkpoints (size, root, note, created_at) VALUES (?,?,?,?)"
                " ON CONFLICT (size) DO NOTHING",
                (size, root, note, time.time()),
            )

    def store_cosigned(self, size: int, root: bytes, note: str, *, quorum: bool) -> None:
        """Keep ``note``, the checkpoint of ``size`` and ``root`` with the witnesses'
        cosignatures, as that size's stored checkpoint (a row already there with another
        root is never replaced); with ``quorum``, also as the newest that met the trust
        policy's quorum."""
        check_integer(size, "checkpoint size")
        with self._lock, self._write(f"cannot store the cosigned checkpoint {size}") as c:
            c.execute(
                "INSERT INTO checkpoints (size, root, note, created_at) VALUES (?,?,?,?)"
                " ON CONFLICT (size) DO UPDATE SET note = excluded.note"
                " WHERE checkpoints.root = excluded.root",
                (size, root, note, time.time()),
            )
            if quorum:
                self._set_meta(QUORUM_META, note)

    @contextmanager
    def filling(self, what: str) -> Iterator[Callable[[str, Sequence[str], list[Any]], None]]:
        """One write transaction that fills this ledger, which must be empty (StoreError if
        it is not), with the rows of another's tables (:mod:`ledger.copy`): yields
        ``insert(table, columns, rows)``, columns as :data:`ledger.schema.TABLES` has them
        (``meta`` rows but the schema version's replace the opening's own, the suite
        included). The suite and the tree are read back after the commit."""
        dialect = self.dialect
        with self._lock:
            with self._write(what) as c:
                for table in TABLES:
                    where = (
                        f" WHERE key NOT IN ('schema', '{SUITE_META}')" if table == "meta" else ""
                    )
                    if c.execute(f"SELECT 1 FROM {table}{where} LIMIT 1").fetchone() is not None:
                        raise StoreError(
                            f"{self.where} is not empty (its {table} table has rows);"
                            " a ledger is copied into a new one only"
                        )

                def insert(table: str, columns: Sequence[str], rows: list[Any]) -> None:
                    if table == "meta":
                        for key, value in rows:
                            if key != "schema":
                                self._set_meta(key, value)
                    elif table == "bodies":
                        dialect.insert(c, table, dialect.body_columns, dialect.body_rows(rows))
                    else:
                        dialect.insert(c, table, columns, rows)

                yield insert
            self.suite = self._stored_suite()
            self.reload()

    def size(self) -> int:
        return self._size

    def current_root(self) -> bytes:
        return self.frontier.root()
