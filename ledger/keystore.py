"""The data-key store: where the keys of :mod:`ledger.datakeys` live, apart from the data.

One row a key: its opaque id, the scope it covers -- pilot, a keyed digest of (pilot,
subject, Consent) (:func:`ledger.datakeys.person_tag`: the store names no one either), data
type, day -- and the key itself. Destroying a key deletes its row, and then makes sure no
copy of the row is left where this store can reach:

- SQLite (a file of its own, ``<ledger>.keys``, mode 0600): WAL with ``synchronous=FULL``,
  ``secure_delete`` on (a deleted row's bytes are overwritten with zeros, in its page and
  in freed pages), and after every destroy ``wal_checkpoint(TRUNCATE)``, so the zeroed pages
  reach the file and the WAL holding the old ones is emptied. The forensic tests scan the
  file and its WAL for destroyed keys' bytes.
- PostgreSQL (``postgresql://...``, schema ``keys`` by default): a deleted row is a dead
  tuple until VACUUM, and even then its bytes may stay: measured on PostgreSQL 15, a plain
  ``VACUUM`` compacts each page, which overwrites a dead tuple with the live ones below it,
  but the page's last-inserted tuple is left in the freed hole (tests: the last key on each
  page survived VACUUM + CHECKPOINT in the heap file; ``VACUUM FULL`` rewrote the table
  and it was gone). And every WAL segment, archive and base backup keeps the insert. So on
  PostgreSQL the keys are always stored *wrapped* under a master key the operator keeps
  outside the database (``key_store_master_key``: a file, or one a KMS writes): the heap, WAL
  and backups hold only wrapped keys, and a destroyed one is gone as soon as its row is, for
  whoever does not hold an older copy *and* the master key. A destroy is followed by a plain
  ``VACUUM`` of the keys table (its space reused, most dead bytes overwritten); ``compact``
  runs ``VACUUM FULL`` (an exclusive lock while the table is rewritten) for an operator who
  wants no wrapped copy left in the live heap either.

  Wrapping is optional on SQLite, and recommended wherever the key file is backed up: a
  backup of an unwrapped key store holds every key destroyed since. Rotating the master key
  (re-wrapping every row, then destroying the old master) is what makes older backups of
  the key store unreadable; it is not implemented here.

A key is durable before it is returned (committed with ``synchronous=FULL``, or
``synchronous_commit=on`` set on the session): the ledger seals under it only after.
Creation is idempotent and safe across processes: ``INSERT ... ON CONFLICT DO NOTHING``,
then the row read back, so two writers of one scope get one key.

Measured on the development machine (2 cores; PostgreSQL 15 on loopback), for 1,000 scopes
of one day (a batch's): made in 23-37 ms on SQLite (one commit), 66 ms on PostgreSQL; found
in the cache in ~1 ms (what an append of scopes seen before costs); read cold by scope in
13 ms / 28 ms and by id in 6 ms / 19 ms; 100 keys destroyed in 3-4 ms, with the checkpoint
or VACUUM of a small table. Wrapping adds nothing measurable.

Destroy only through the process that seals (the ledger's writer): another process's cache
of scope keys would outlive the destroy and seal new values under a key no longer stored.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from . import postgres
from .datakeys import (
    KEY_BYTES,
    NO_DAY,
    DataKey,
    Scope,
    check_key_id,
    derive,
    load_master_key,
    new_key_id,
    person_tag,
    unwrap,
    wrap,
)
from .errors import RangeError, SealError, StoreError
from .sqlite import BUSY_TIMEOUT_MS, open_wal, storage_failure

log = logging.getLogger("swiftchain.ledger.keystore")

FORMAT = b"1"
#: The PostgreSQL schema of the key store's tables unless its URL names another.
PG_SCHEMA_NAME = "keys"
#: Keys an LRU cache keeps in memory (by id for reads, by scope for appends): ~250 bytes each
#: with its cipher object.
CACHE_KEYS = 16384
#: Rows one statement reads or deletes at most (SQLite's old parameter limit is 999).
_PART = 200
#: Fresh ids tried for one scope before giving up (a taken id is one chance in 10^12).
_ID_TRIES = 4
#: How long a truncating checkpoint waits for the key store's readers to finish (ms); the
#: connection's usual busy timeout is longer, for writes.
_CHECKPOINT_WAIT_MS = 1000

_COLUMNS = "id, pilot, person, type, day, secret, created_at"
_SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS keys (
    id INTEGER PRIMARY KEY,
    pilot TEXT NOT NULL,
    person TEXT NOT NULL,
    type TEXT NOT NULL,
    day TEXT NOT NULL,
    secret BLOB NOT NULL,
    created_at REAL NOT NULL,
    UNIQUE (pilot, person, type, day)
);
CREATE INDEX IF NOT EXISTS keys_by_day ON keys (pilot, type, day);
"""
_PG_SCHEMA = (
    _SQLITE_SCHEMA.replace("INTEGER PRIMARY KEY", "BIGINT PRIMARY KEY")
    .replace("BLOB", "BYTEA")
    .replace("REAL", "DOUBLE PRECISION")
)


def _parts(values: Sequence[Any], size: int = _PART) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


class KeyStore:
    """The key store on SQLite or PostgreSQL (:meth:`open`); thread-safe."""

    #: Where the store is, for messages (a path, or a URL without its password).
    where: str

    def __init__(self, conn: Any, where: str, master: bytes | None, cache: int) -> None:
        self.conn = conn
        self.where = where
        self._master = AESGCM(master) if master is not None else None
        self._cache = max(1, cache)
        self._by_id: OrderedDict[int, DataKey] = OrderedDict()
        self._by_scope: OrderedDict[Scope, DataKey] = OrderedDict()
        self._lock = threading.RLock()
        #: A destroy whose copies could not all be scrubbed yet (the next one tries again).
        self.scrub_pending = False
        secret = self._init_meta()
        self._tag_key = derive(secret, b"person-tag")
        self._index_key = derive(secret, b"resource-index")

    @staticmethod
    def open(
        location: Path | str, *, master_key: Path | bytes | None = None, cache: int = CACHE_KEYS
    ) -> KeyStore:
        """The key store at ``location``: a PostgreSQL URL, else a SQLite file's path (made
        if missing). ``master_key``: the operator's master key (a file of
        :func:`ledger.datakeys.write_master_key`, or its 32 bytes) the keys are wrapped
        under; required on PostgreSQL. A store made with wrapping opens only with it, and
        one made without only without."""
        master = _master_bytes(master_key)
        if postgres.is_url(location):
            return PgKeyStore.connect(str(location), master, cache)
        return SqliteKeyStore.connect(Path(location), master, cache)

    # -- the backend's part --------------------------------------------------------------------
    def _errors(self) -> tuple[type[Exception], ...]:
        raise NotImplementedError

    def _failure(self, what: str, exc: Exception) -> StoreError:
        raise NotImplementedError

    def _begin(self) -> None:
        raise NotImplementedError

    def _scrub(self) -> bool:
        """After a destroy: remove the copies of deleted rows this store can reach; whether
        it could."""
        raise NotImplementedError

    def compact(self) -> None:
        """Rewrite the key store whole (no dead row's bytes left in its live files)."""
        raise NotImplementedError

    # -- common --------------------------------------------------------------------------------
    @contextmanager
    def _guard(self, what: str) -> Iterator[None]:
        try:
            yield
        except self._errors() as exc:
            self._rollback()
            raise self._failure(f"{what} in key store {self.where}", exc) from None

    @contextmanager
    def _transaction(self, what: str) -> Iterator[None]:
        with self._guard(what):
            self._begin()
            try:
                yield
            except BaseException:
                self._rollback()
                raise
            self.conn.execute("COMMIT")

    def _rollback(self) -> None:
        try:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
        except self._errors():
            pass  # the connection is gone, and its transaction with it

    def _init_meta(self) -> bytes:
        """Make or check the store's meta rows; return its secret (unwrapped)."""
        wrapping = b"aes-256-gcm" if self._master is not None else b"none"
        secret = os.urandom(KEY_BYTES)
        fresh = {
            b"format": FORMAT,
            b"wrapping": wrapping,
            b"secret": self._wrapped(b"secret", secret),
        }
        with self._transaction("cannot set up"):
            self.conn.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT DO NOTHING",
                [(k.decode(), v) for k, v in fresh.items()],
            )
            stored = {str(k): bytes(v) for k, v in self.conn.execute("SELECT key, value FROM meta")}
        if stored.get("format") != FORMAT:
            raise StoreError(f"{self.where} is key store format {stored.get('format')!r}, not 1")
        if stored.get("wrapping") != wrapping:
            if self._master is None:
                raise StoreError(
                    f"{self.where} holds keys wrapped under a master key: give key_store_master_key"
                )
            raise StoreError(
                f"{self.where} holds unwrapped keys; it cannot be opened with a master key"
            )
        try:
            return self._unwrapped(b"secret", stored["secret"])
        except SealError:
            raise StoreError(f"{self.where} was made with another master key") from None

    def _wrapped(self, label: bytes, secret: bytes) -> bytes:
        return secret if self._master is None else wrap(self._master, label, secret)

    def _unwrapped(self, label: bytes, stored: bytes) -> bytes:
        if self._master is None:
            if len(stored) != KEY_BYTES:
                raise SealError(f"a stored key is {len(stored)} bytes, not {KEY_BYTES}")
            return stored
        return unwrap(self._master, label, stored)

    def _key(self, key_id: int, stored: bytes) -> DataKey:
        try:
            return DataKey(key_id, self._unwrapped(b"key %d" % key_id, bytes(stored)))
        except SealError as exc:
            raise SealError(f"key {key_id} in {self.where}: {exc}") from None

    def _remember(self, key: DataKey, scope: Scope | None = None) -> None:
        self._by_id[key.id] = key
        self._by_id.move_to_end(key.id)
        while len(self._by_id) > self._cache:
            self._by_id.popitem(last=False)
        if scope is not None:
            self._by_scope[scope] = key
            self._by_scope.move_to_end(scope)
            while len(self._by_scope) > self._cache:
                self._by_scope.popitem(last=False)

    def _forget(self, ids: Collection[int]) -> None:
        gone = set(ids)
        for key_id in gone:
            self._by_id.pop(key_id, None)
        for scope in [s for s, k in self._by_scope.items() if k.id in gone]:
            del self._by_scope[scope]

    def _row_scope(self, scope: Scope) -> tuple[str, str, str, str]:
        if not isinstance(scope, Scope):
            raise RangeError(f"a key's scope is a Scope, not {scope!r}")
        tag = person_tag(self._tag_key, scope.pilot, scope.subject, scope.consent)
        return (scope.pilot, tag, scope.data_type, scope.day)

    @property
    def wrapped(self) -> bool:
        """Whether the keys are stored wrapped under a master key."""
        return self._master is not None

    @property
    def index_key(self) -> bytes:
        """The ledger-wide key of :func:`ledger.datakeys.resource_digest`."""
        return self._index_key

    def key_for(self, scope: Scope, *, create: bool) -> DataKey | None:
        """The key of ``scope``; with ``create``, made (durably) if it has none."""
        return self.keys_for([scope], create=create).get(scope)

    def keys_for(self, scopes: Iterable[Scope], *, create: bool = True) -> dict[Scope, DataKey]:
        """The keys of ``scopes`` (a batch's), those missing made in one durable commit with
        ``create``, else left out."""
        wanted = list(dict.fromkeys(scopes))
        found: dict[Scope, DataKey] = {}
        with self._lock:
            cached = self._by_scope
            for scope in wanted:
                if (key := cached.get(scope)) is not None:
                    cached.move_to_end(scope)
                    found[scope] = key
            if len(found) == len(wanted):
                return found  # the hot path: a batch of scopes seen before
            rows = {s: self._row_scope(s) for s in wanted if s not in found}
            found.update(self._read_scopes(rows))
            for _ in range(_ID_TRIES):
                missing = {s: row for s, row in rows.items() if s not in found}
                if not create or not missing:
                    break
                self._create(missing)
                found.update(self._read_scopes(missing))
            if create and len(found) < len(wanted):
                raise StoreError(f"cannot make a key in {self.where}: its ids keep being taken")
        return found

    def _read_scopes(self, rows: dict[Scope, tuple[str, str, str, str]]) -> dict[Scope, DataKey]:
        # By (pilot, type, day) with the persons in a list: one search of the unique index a
        # person (a list of row values was a scan of it on SQLite 3.40).
        groups: dict[tuple[str, str, str], dict[str, Scope]] = {}
        for scope, (pilot, person, data_type, day) in rows.items():
            groups.setdefault((pilot, data_type, day), {})[person] = scope
        found: dict[Scope, DataKey] = {}
        with self._guard("cannot read keys"):
            for (pilot, data_type, day), persons in groups.items():
                for part in _parts(list(persons)):
                    cursor = self.conn.execute(
                        "SELECT id, person, secret FROM keys WHERE pilot = ? AND type = ?"
                        f" AND day = ? AND person IN ({','.join('?' * len(part))})",
                        [pilot, data_type, day, *part],
                    )
                    for key_id, person, stored in cursor.fetchall():
                        scope = persons[str(person)]
                        key = self._key(int(key_id), stored)
                        self._remember(key, scope)
                        found[scope] = key
        return found

    def _create(self, rows: dict[Scope, tuple[str, str, str, str]]) -> None:
        now = time.time()
        new = []
        for row in rows.values():
            key_id = new_key_id()
            secret = os.urandom(KEY_BYTES)
            new.append((key_id, *row, self._wrapped(b"key %d" % key_id, secret), now))
        # Any conflict does nothing: the scope's key another writer made meanwhile (read
        # back next), or an id taken already (a fresh one is tried).
        with self._transaction(f"cannot make {len(new)} keys"):
            self.conn.executemany(
                f"INSERT INTO keys ({_COLUMNS}) VALUES (?,?,?,?,?,?,?) ON CONFLICT DO NOTHING",
                new,
            )

    def keys(self, ids: Iterable[int]) -> dict[int, DataKey]:
        """The keys of ``ids`` still held (a destroyed one is left out)."""
        wanted = [check_key_id(i) for i in dict.fromkeys(ids)]
        found: dict[int, DataKey] = {}
        with self._lock:
            for key_id in wanted:
                if (key := self._by_id.get(key_id)) is not None:
                    self._by_id.move_to_end(key_id)
                    found[key_id] = key
            missing = [i for i in wanted if i not in found]
            with self._guard("cannot read keys"):
                for part in _parts(missing):
                    cursor = self.conn.execute(
                        f"SELECT id, secret FROM keys WHERE id IN ({','.join('?' * len(part))})",
                        list(part),
                    )
                    for key_id, stored in cursor.fetchall():
                        key = self._key(int(key_id), stored)
                        self._remember(key)
                        found[key.id] = key
        return found

    def destroy(self, ids: Iterable[int]) -> list[int]:
        """Destroy the keys of ``ids``; returns those that were held."""
        wanted = [check_key_id(i) for i in dict.fromkeys(ids)]
        if not wanted:
            return []
        destroyed: list[int] = []
        with self._lock:
            with self._transaction(f"cannot destroy {len(wanted)} keys"):
                for part in _parts(wanted):
                    cursor = self.conn.execute(
                        f"DELETE FROM keys WHERE id IN ({','.join('?' * len(part))}) RETURNING id",
                        list(part),
                    )
                    destroyed += [int(i) for (i,) in cursor.fetchall()]
            self._destroyed(destroyed)
        return destroyed

    def _scope_where(
        self,
        pilot: str,
        subject: str | None,
        consent: str | None,
        types: Collection[str] | None,
    ) -> tuple[str, list[str]] | None:
        """The WHERE clause of (pilot, subject, consent)'s keys (of ``types``); None for none."""
        Scope(pilot, subject, consent, "-", NO_DAY)  # checks the arguments' types
        if types is not None and not all(isinstance(t, str) for t in types):
            raise RangeError(f"types are strings, not {types!r}")
        tag = person_tag(self._tag_key, pilot, subject, consent)
        sql, args = " WHERE pilot = ? AND person = ?", [pilot, tag]
        if types is not None:
            if not types:
                return None
            sql += f" AND type IN ({','.join('?' * len(types))})"
            args += list(types)
        return sql, args

    def ids_of_scope(
        self,
        pilot: str,
        subject: str | None,
        consent: str | None,
        *,
        types: Collection[str] | None = None,
    ) -> list[int]:
        """The ids of (pilot, subject, consent)'s keys, of every type and day (of ``types``
        alone if given), oldest day first: what a withdrawal will destroy, listed before the
        ledger commits it (the ledger notes the ids to destroy, never the person)."""
        where = self._scope_where(pilot, subject, consent, types)
        if where is None:
            return []
        with self._lock, self._guard("cannot list a scope's keys"):
            rows = self.conn.execute(
                "SELECT id FROM keys" + where[0] + " ORDER BY day, id", where[1]
            ).fetchall()
        return [int(i) for (i,) in rows]

    def destroy_scope(
        self,
        pilot: str,
        subject: str | None,
        consent: str | None,
        *,
        types: Collection[str] | None = None,
    ) -> list[int]:
        """Destroy every key of (pilot, subject, consent), of every type and day (of the
        ``types`` alone if given); returns their ids."""
        where = self._scope_where(pilot, subject, consent, types)
        if where is None:
            return []
        with self._lock:
            with self._transaction("cannot destroy a scope's keys"):
                cursor = self.conn.execute(
                    "DELETE FROM keys" + where[0] + " RETURNING id", where[1]
                )
                destroyed = [int(i) for (i,) in cursor.fetchall()]
            self._destroyed(destroyed)
        return destroyed

    def _destroyed(self, ids: list[int]) -> None:
        self._forget(ids)
        if ids or self.scrub_pending:
            self.scrub_pending = not self._scrub()

    def scrub(self) -> bool:
        """Try again what a destroy could not finish (:attr:`scrub_pending`); whether done."""
        with self._lock:
            if self.scrub_pending:
                self.scrub_pending = not self._scrub()
            return not self.scrub_pending

    def ids_of(self, pilot: str, data_type: str, day_before: str) -> list[int]:
        """The ids of (pilot, data type)'s keys of every person for days before
        ``day_before`` (YYYY-MM-DD), oldest first: retention's backstop."""
        Scope(pilot, None, None, data_type, day_before)
        with self._lock, self._guard("cannot list keys"):
            rows = self.conn.execute(
                "SELECT id FROM keys WHERE pilot = ? AND type = ? AND day < ? AND day <> ?"
                " ORDER BY day, id",
                (pilot, data_type, day_before, NO_DAY),
            ).fetchall()
        return [int(i) for (i,) in rows]

    def close(self) -> None:
        with self._lock:
            self._by_id.clear()
            self._by_scope.clear()
            try:
                self.conn.close()
            except self._errors():
                pass

    def __enter__(self) -> KeyStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _master_bytes(master_key: Path | bytes | None) -> bytes | None:
    if master_key is None or isinstance(master_key, bytes):
        if master_key is not None and len(master_key) != KEY_BYTES:
            raise RangeError(f"a master key is {KEY_BYTES} bytes")
        return master_key
    return load_master_key(Path(master_key))


class SqliteKeyStore(KeyStore):
    """The key store in a SQLite file of its own."""

    path: Path

    @classmethod
    def connect(cls, path: Path, master: bytes | None, cache: int) -> SqliteKeyStore:
        if path.is_dir():
            raise StoreError(f"{path} is a directory, not a key store")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Made 0600 before SQLite opens it; its -wal and -shm take the file's mode.
            os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
            for file in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
                if file.exists():
                    os.chmod(file, 0o600)
        except OSError as exc:
            raise StoreError(f"cannot make key store {path}: {exc.strerror}") from None
        try:
            # open_wal sets secure_delete on: a destroyed key's bytes are zeroed in the file.
            conn = open_wal(path, _SQLITE_SCHEMA, synchronous="FULL")
        except sqlite3.Error as exc:
            raise storage_failure(f"{path} is not a usable key store", exc) from None
        try:
            store = cls(conn, str(path), master, cache)
        except BaseException:
            conn.close()
            raise
        store.path = path
        return store

    def _errors(self) -> tuple[type[Exception], ...]:
        return (sqlite3.Error,)

    def _failure(self, what: str, exc: Exception) -> StoreError:
        assert isinstance(exc, sqlite3.Error)
        return storage_failure(what, exc)

    def _begin(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def _scrub(self) -> bool:
        # The zeroed pages into the file, and the WAL that held the old ones emptied
        # (https://sqlite.org/pragma.html#pragma_wal_checkpoint). A reader in the middle of
        # a read keeps the WAL from being reset: waited out (the busy handler), for a while.
        try:
            self.conn.execute(f"PRAGMA busy_timeout = {_CHECKPOINT_WAIT_MS}")
            try:
                busy, _, _ = self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            finally:
                self.conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        except sqlite3.Error:
            busy = 1
        if busy:
            log.warning(
                "key store %s: WAL not emptied after a destroy; tried again later", self.where
            )
        return not busy

    def compact(self) -> None:
        with self._lock, self._guard("cannot compact"):
            self.conn.execute("VACUUM")
        self.scrub_pending = not self._scrub()


class PgKeyStore(KeyStore):
    """The key store in a PostgreSQL schema (``keys`` by default), keys always wrapped."""

    @classmethod
    def connect(cls, url: str, master: bytes | None, cache: int) -> PgKeyStore:
        parsed = postgres.Url(url, default_schema=PG_SCHEMA_NAME)
        if master is None:
            raise StoreError(
                f"a key store on PostgreSQL ({parsed}) needs key_store_master_key: its WAL,"
                " archives and backups keep every row ever written, so only wrapped keys may"
                " reach them"
            )
        conn = postgres.connect(parsed, application="swiftchain-keys")
        try:
            # A key is on disk before it is used, whatever the server's default.
            conn.execute("SET synchronous_commit = on")
            conn.begin()
            # Two processes making the tables at once would collide in the catalogue.
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('swiftchain-keystore'))")
            for statement in filter(str.strip, _PG_SCHEMA.split(";")):
                conn.execute(statement)
            conn.commit()
        except postgres.errors() as exc:
            conn.rollback()
            conn.close()
            raise postgres.failure(f"cannot set up key store {parsed}", exc) from None
        try:
            return cls(conn, str(parsed), master, cache)
        except BaseException:
            conn.close()
            raise

    def _errors(self) -> tuple[type[Exception], ...]:
        return postgres.errors()

    def _failure(self, what: str, exc: Exception) -> StoreError:
        return postgres.failure(what, exc)

    def _begin(self) -> None:
        self.conn.begin()

    def _scrub(self) -> bool:
        # The dead tuples' space reclaimed, most of their bytes overwritten (module
        # docstring); the rows were wrapped keys, so this is tidiness, not the erasure.
        try:
            self.conn.execute("VACUUM keys")
        except postgres.errors() as exc:
            log.warning("key store %s: VACUUM after a destroy failed: %s", self.where, exc)
            return False
        return True

    def compact(self) -> None:
        with self._lock, self._guard("cannot compact"):
            self.conn.execute("VACUUM FULL keys")
