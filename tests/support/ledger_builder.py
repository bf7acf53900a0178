"""Build real ledgers the way the hub does: registry entries, signed records with bodies,
signed checkpoints, erasures; in a SQLite file or a PostgreSQL database (a location of
``ledger.store.location_of``); of either crypto suite, the hub key's (``of_suite``). Used by
ledger tests and bench/ledger.py."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ledger import postgres
from ledger.canonical import canonical_json
from ledger.checkpoint import Checkpoint, NoteSigner, sign_checkpoint
from ledger.entries import ErasureEntry, RegistryEntry
from ledger.envelope import SignedRecord, seal, utc_now
from ledger.keys import PrivateKey, generate_key, key_id, public_key_b64
from ledger.keystore import KeyStore
from ledger.schema import PG_SCHEMA, TABLES
from ledger.store import LedgerWriter, NewEntry, location_of
from ledger.suite import Suite, suite_of

ORIGIN = "swiftchain.test/log"


def record_entry(record: SignedRecord) -> NewEntry:
    return NewEntry.of_record(
        record, record.header.canonical(), canonical_json(record.body.payload)
    )


@dataclass
class LedgerBuilder:
    """The log's suite is its hub key's (the hub's, ``suite_of(hub key)``); the source key
    must be of the same suite."""

    path: Path | str
    """Where the ledger is: a SQLite file's path, or a PostgreSQL URL."""
    hub_key: PrivateKey = field(default_factory=generate_key)
    source_key: PrivateKey = field(default_factory=generate_key)
    pilot: str = "air-quality"
    source: str = "station-1"
    seq: int = 0
    keys: KeyStore | None = None
    """The key store to seal under (None: bodies, openings and origins in the open)."""

    def __post_init__(self) -> None:
        self.suite: Suite = suite_of(self.hub_key)
        self.suite.require(self.source_key, "the source key")
        self.writer = LedgerWriter(self.path, origin=ORIGIN, suite=self.suite, keys=self.keys)
        self.signer = NoteSigner(ORIGIN, self.hub_key)
        self.writer.set_meta("log_key", self.signer.verifier.encode())

    @classmethod
    def of_suite(cls, path: Path | str, suite: Suite, **fields: Any) -> LedgerBuilder:
        """A builder of a new log of ``suite``: hub and source keys of that suite."""
        return cls(path, hub_key=generate_key(suite), source_key=generate_key(suite), **fields)

    def register_source(self) -> None:
        pub = self.source_key.public_key()
        entry = RegistryEntry(
            action="key.add",
            at=utc_now(),
            actor="test",
            pilot=self.pilot,
            source=self.source,
            key_id=key_id(pub),
            public_key=public_key_b64(pub),
            valid_from="2020-01-01T00:00:00Z",
        )
        self.writer.append([NewEntry("registry", entry.leaf())])

    def records(self, n: int) -> Iterator[SignedRecord]:
        for _ in range(n):
            self.seq += 1
            yield seal(
                pilot=self.pilot,
                source=self.source,
                seq=self.seq,
                type="city.air-quality",
                payload={"station": self.source, "pm25": 10 + self.seq % 40, "no2": 21.5},
                signing_key=self.source_key,
            )

    def append_record(
        self,
        payload: dict[str, Any],
        *,
        type: str = "city.air-quality",
        subject: str | None = None,
        consent: str | None = None,
        observed_at: str | None = None,
    ) -> int:
        """Seal and append one record of this builder's source (personal with a subject and
        the consent covering it); returns its index."""
        self.seq += 1
        record = seal(
            pilot=self.pilot,
            source=self.source,
            seq=self.seq,
            type=type,
            payload=payload,
            signing_key=self.source_key,
            subject=subject,
            consent=consent,
            observed_at=observed_at,
        )
        (stored,) = self.writer.append([record_entry(record)])
        return stored.index

    def append_records(self, n: int, batch: int = 1000) -> None:
        pending: list[NewEntry] = []
        for r in self.records(n):
            pending.append(record_entry(r))
            if len(pending) == batch:
                self.writer.append(pending)
                self.checkpoint()
                pending = []
        if pending:
            self.writer.append(pending)
            self.checkpoint()

    def checkpoint(self) -> str:
        size = self.writer.size()
        root = self.writer.current_root()
        note = sign_checkpoint(Checkpoint(ORIGIN, size, root), self.signer)
        self.writer.add_checkpoint(size, root, note)
        return note

    def erase(self, index: int) -> None:
        entry = self.writer.entry(index)
        leaf = ErasureEntry(
            at=utc_now(), actor="test", index=index, record=str(entry.index), reason="retention"
        )
        sealed, opening = leaf.sealed(suite=self.suite)
        self.writer.append([NewEntry("erasure", sealed, opening=opening)], erase=[index])
        self.checkpoint()

    def close(self) -> None:
        self.writer.close()


@contextmanager
def tampering(location: Path | str) -> Iterator[Any]:
    """An autocommit connection to a ledger's tables behind the store's back, to change
    them as a forger would: sqlite3's, or ledger.postgres' (both take ``?`` placeholders)."""
    where = location_of(location)
    conn: Any
    if isinstance(where, Path):
        conn = sqlite3.connect(where, isolation_level=None)
    else:
        conn = postgres.connect(
            postgres.Url(where, default_schema=PG_SCHEMA), application="swiftchain-test-forger"
        )
    try:
        yield conn
    finally:
        conn.close()


def stored_bytes(location: Path | str) -> bytes:
    """What a ledger holds: a SQLite file's bytes with its WAL's; on PostgreSQL every value
    of every row of its tables (what a reader of the database gets; the pages of the
    server's files also keep deleted rows until a VACUUM reuses them)."""
    where = location_of(location)
    if isinstance(where, Path):
        return b"".join(p.read_bytes() for p in (where, Path(f"{where}-wal")) if p.exists())
    parts: list[bytes] = []
    with tampering(where) as conn:
        for table in TABLES:
            for row in conn.execute(f"SELECT * FROM {table}").fetchall():
                for value in row:
                    parts.append(value if isinstance(value, bytes) else str(value).encode())
    return b"\x00".join(parts)
