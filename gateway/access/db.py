"""The hub's access store: registered hospital clients and the FHIR Consent resources whose
hashes the log's ``consent`` entries commit to. A SQLite file (``<ledger>.access``) or a
PostgreSQL schema (``access`` by default), as ``access_store`` says (docs/configure.md);
the same rows and answers on both (:mod:`ledger.tables` holds what differs).

Nothing here is the truth on its own: a Consent version is stored *before* its ``consent``
entry is appended, and which version is current is whatever the log's latest entry for
that consent says (:mod:`gateway.access.consents`). A crash between the two leaves only an unused
version behind. Rows are erasable; the log keeps their hashes.

Each client registration has a version of its own (a hash of the row, with the time it was
stored), and :attr:`AccessDb.versions` holds the current one of every client in memory, so the
bearer check can compare a token's version on every request without reading the store.

A revocation is a ``client`` entry on the log first; the rows here (which registration, and
which keys, it revoked) follow it, and are rebuilt from the log's entries at every hub start
(:meth:`AccessDb.record_revocation` is idempotent), so a crash between the two loses nothing.
A revoked client keeps its row: the listing shows it, and its tokens and assertions get a
precise "client revoked". Its keys stay refused, even in a later registration.

A failing store raises StorageError (the hub answers 503) or StoreError, from
:mod:`ledger.errors`.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ledger import location
from ledger.entries import ClientEntry
from ledger.errors import StorageError, StoreError
from ledger.tables import Tables

from ..errors import ConfigError, RegistryError
from ..smart.assertion import RegisteredClient

#: The PostgreSQL schema of the access store's tables unless its URL names one.
PG_SCHEMA_NAME = "access"

SCHEMA = """
CREATE TABLE IF NOT EXISTS clients (
    client_id TEXT PRIMARY KEY,
    org TEXT NOT NULL,
    pilot TEXT NOT NULL,
    jwks TEXT NOT NULL,
    scopes TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    added_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS client_revocations (
    registration TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    reason TEXT NOT NULL,
    entry INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS revoked_keys (
    thumbprint TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    entry INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS used_jtis (
    client_id TEXT NOT NULL,
    jti TEXT NOT NULL,
    exp INTEGER NOT NULL,
    PRIMARY KEY (client_id, jti)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS consent_versions (
    hash TEXT PRIMARY KEY,
    consent_id TEXT NOT NULL,
    pilot TEXT NOT NULL,
    resource BLOB NOT NULL,
    stored_at REAL NOT NULL
);
"""

#: The same tables on PostgreSQL. ``COLLATE "C"``: keys compare and sort byte by byte, as
#: SQLite's BINARY collation does (the listing's order is the same on both); DOUBLE
#: PRECISION holds ``added_at`` exactly (and PostgreSQL 12 on prints it back exactly), so a
#: registration's version hashes the same.
PG_SCHEMA = """
CREATE TABLE IF NOT EXISTS clients (
    client_id TEXT COLLATE "C" PRIMARY KEY,
    org TEXT COLLATE "C" NOT NULL,
    pilot TEXT COLLATE "C" NOT NULL,
    jwks TEXT COLLATE "C" NOT NULL,
    scopes TEXT COLLATE "C" NOT NULL,
    name TEXT COLLATE "C" NOT NULL DEFAULT '',
    added_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS client_revocations (
    registration TEXT COLLATE "C" PRIMARY KEY,
    client_id TEXT COLLATE "C" NOT NULL,
    at TEXT COLLATE "C" NOT NULL,
    actor TEXT COLLATE "C" NOT NULL,
    reason TEXT COLLATE "C" NOT NULL,
    entry BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS revoked_keys (
    thumbprint TEXT COLLATE "C" PRIMARY KEY,
    client_id TEXT COLLATE "C" NOT NULL,
    entry BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS used_jtis (
    client_id TEXT COLLATE "C" NOT NULL,
    jti TEXT COLLATE "C" NOT NULL,
    exp BIGINT NOT NULL,
    PRIMARY KEY (client_id, jti)
);
CREATE TABLE IF NOT EXISTS consent_versions (
    hash TEXT COLLATE "C" PRIMARY KEY,
    consent_id TEXT COLLATE "C" NOT NULL,
    pilot TEXT COLLATE "C" NOT NULL,
    resource BYTEA NOT NULL,
    stored_at DOUBLE PRECISION NOT NULL
);
"""


@dataclass(frozen=True)
class Revocation:
    """A revocation as the log's ``client`` entry at ``index`` has it."""

    at: str
    actor: str
    reason: str
    index: int

    def describe(self) -> str:
        return f"at {self.at} by {self.actor} (log entry {self.index}): {self.reason}"

    def public(self) -> dict[str, Any]:
        return {"at": self.at, "by": self.actor, "reason": self.reason, "index": self.index}


@dataclass(frozen=True)
class ClientRow:
    client: RegisteredClient
    added_at: float
    revocation: Revocation | None = None

    def public(self) -> dict[str, Any]:
        c = self.client
        return {
            "client_id": c.client_id,
            "org": c.org,
            "pilot": c.pilot,
            "scopes": list(c.scopes),
            "name": c.name,
            "jwks": dict(c.jwks),
            "version": c.version,
            "state": "active" if self.revocation is None else "revoked",
            "revoked": self.revocation.public() if self.revocation else None,
        }


_CLIENT_COLUMNS = "client_id, org, pilot, jwks, scopes, name, added_at"


class AccessDb:
    """One connection, used from the event loop and the default executor under a lock."""

    def __init__(self, where: Path | str) -> None:
        try:
            self.location = location.parse(where, default_schema=PG_SCHEMA_NAME)
            # FULL: a client or a Consent version is stored before the log names it.
            self.tables = Tables(
                self.location,
                what="the hub's access store",
                sqlite_schema=SCHEMA,
                pg_schema=PG_SCHEMA,
                synchronous="FULL",
                application="swiftchain-hub-access",
            )
        except StorageError:
            raise  # the server is down, the disk full: a later start may work
        except StoreError as exc:
            raise ConfigError(f"cannot open the hub's access store: {exc}") from None
        self._lock = threading.Lock()
        self.versions: dict[str, str] = {}
        """Client id -> the version of its current registration, as last written or read here
        (read on the event loop without the lock: each change replaces one item)."""
        self.revoked: dict[str, str] = {}
        """Version of a revoked registration -> when, by whom and why (for the errors)."""
        try:
            with self._lock:
                self._load_revocations()
            for row in self.clients():
                self.versions[row.client.client_id] = row.client.version
        except BaseException:
            self.tables.close()
            raise

    @property
    def conn(self) -> Any:
        """The store's connection: ``sqlite3.Connection`` or ``ledger.postgres.Connection``."""
        return self.tables.conn

    def close(self) -> None:
        self.tables.close()

    # -- clients ----------------------------------------------------------------------------
    def put_client(self, client: RegisteredClient) -> RegisteredClient:
        """Register (or replace) ``client``; the stored registration, with its new version.
        RegistryError ``key_revoked`` if it names a key a revocation cut off."""
        added_at = time.time()
        stored = replace(client, version=registration_version(client, added_at), revoked="")
        thumbprints = client.thumbprints()
        with self._lock:
            marks = ",".join("?" * len(thumbprints))
            # ``IN ()`` is SQLite's, not PostgreSQL's: no keys, no revoked key.
            hit = None
            if thumbprints:
                hit = self.tables.row(
                    f"SELECT thumbprint, client_id, entry FROM revoked_keys"
                    f" WHERE thumbprint IN ({marks}) LIMIT 1",
                    thumbprints,
                )
            if hit is not None:
                raise RegistryError(
                    "key_revoked",
                    f"key {hit[0]} was revoked with client {hit[1]} (log entry {hit[2]});"
                    " register the client with a new key",
                )
            self.tables.run(
                "INSERT INTO clients VALUES (?,?,?,?,?,?,?) ON CONFLICT (client_id) DO UPDATE"
                " SET org = excluded.org, pilot = excluded.pilot, jwks = excluded.jwks,"
                " scopes = excluded.scopes, name = excluded.name, added_at = excluded.added_at",
                (
                    client.client_id,
                    client.org,
                    client.pilot,
                    json.dumps(dict(client.jwks)),
                    " ".join(client.scopes),
                    client.name,
                    added_at,
                ),
            )
            self.versions[client.client_id] = stored.version
        return stored

    def client(self, client_id: str) -> RegisteredClient | None:
        """The current registration of ``client_id`` (``revoked`` says why, if it is), and
        :attr:`versions` brought up to date with it: another process, ``swiftchain clients``,
        may have changed the store."""
        row = self.client_row(client_id)
        return row.client if row is not None else None

    def client_row(self, client_id: str) -> ClientRow | None:
        with self._lock:
            row = self.tables.row(
                f"SELECT {_CLIENT_COLUMNS} FROM clients WHERE client_id = ?", (client_id,)
            )
            if row is None:
                self.versions.pop(client_id, None)
                return None
            found = self._row(row)
            self.versions[client_id] = found.client.version
        return found

    def clients(self) -> list[ClientRow]:
        with self._lock:
            rows = self.tables.rows(f"SELECT {_CLIENT_COLUMNS} FROM clients ORDER BY client_id")
            return [self._row(r) for r in rows]

    def claim_jti(self, client_id: str, jti: str, exp: int, now: int, skew: int) -> bool:
        """``smart.assertion.JtiStore``: record a client assertion's ``jti`` (uses that
        expired are dropped first); False if a live use of it is on file."""
        with self._lock, self.tables.transaction():
            self.tables.run("DELETE FROM used_jtis WHERE exp + ? < ?", (skew, now))
            # Atomic across processes, never a check then an insert: of two racing uses only
            # one inserts (the other waits for its commit, then finds the key taken).
            done = self.tables.run(
                "INSERT INTO used_jtis VALUES (?,?,?) ON CONFLICT DO NOTHING",
                (client_id, stored_jti(jti), exp),
            )
            return done == 1

    def record_revocation(self, entry: ClientEntry, index: int) -> Revocation:
        """Store the revocation the log's ``client`` entry at ``index`` made (again is a
        no-op): the registration it names is revoked, and its keys with it."""
        revocation = Revocation(entry.at, entry.actor, entry.reason, index)
        with self._lock:
            with self.tables.transaction():
                self.tables.run(
                    "INSERT INTO client_revocations VALUES (?,?,?,?,?,?) ON CONFLICT DO NOTHING",
                    (entry.registration, entry.client, entry.at, entry.actor, entry.reason, index),
                )
                self.tables.run_many(
                    "INSERT INTO revoked_keys VALUES (?,?,?) ON CONFLICT DO NOTHING",
                    [(thumbprint, entry.client, index) for thumbprint in entry.keys],
                )
            self.revoked[entry.registration] = revocation.describe()
        return revocation

    def _load_revocations(self) -> None:
        for registration, at, actor, reason, index in self.tables.rows(
            "SELECT registration, at, actor, reason, entry FROM client_revocations"
        ):
            self.revoked[registration] = Revocation(at, actor, reason, int(index)).describe()

    def _row(self, row: tuple[Any, ...]) -> ClientRow:
        """A client row with its revocation, if its current registration has one (under the
        lock)."""
        found = _client(row)
        version = found.client.version
        revoked = self.tables.row(
            "SELECT at, actor, reason, entry FROM client_revocations WHERE registration = ?",
            (version,),
        )
        if revoked is None:
            return found
        at, actor, reason, index = revoked
        revocation = Revocation(at, actor, reason, int(index))
        self.revoked[version] = revocation.describe()
        client = replace(found.client, revoked=revocation.describe())
        return ClientRow(client, found.added_at, revocation)

    # -- consent versions --------------------------------------------------------------------
    def put_consent(self, digest: str, consent_id: str, pilot: str, resource: bytes) -> None:
        with self._lock:
            self.tables.run(
                "INSERT INTO consent_versions VALUES (?,?,?,?,?) ON CONFLICT DO NOTHING",
                (digest, consent_id, pilot, resource, time.time()),
            )

    def forget_consent(self, consent_id: str, pilot: str) -> int:
        """Delete every stored version of one Consent (its person's erasure): the log keeps
        the entries, whose openings are blinded. Returns how many versions went."""
        with self._lock:
            with self.tables.transaction():
                gone = self.tables.run(
                    "DELETE FROM consent_versions WHERE consent_id = ? AND pilot = ?",
                    (consent_id, pilot),
                )
            self.tables.reclaim("consent_versions")
        return gone

    def consent_resources(self, digests: Iterable[str]) -> dict[str, bytes]:
        wanted = list(digests)
        out: dict[str, bytes] = {}
        with self._lock:
            for i in range(0, len(wanted), 500):
                chunk = wanted[i : i + 500]
                marks = ",".join("?" * len(chunk))
                for digest, resource in self.tables.rows(
                    f"SELECT hash, resource FROM consent_versions WHERE hash IN ({marks})", chunk
                ):
                    out[str(digest)] = bytes(resource)
        return out


def stored_jti(jti: str) -> str:
    """``jti`` as the store keeps it: PostgreSQL text holds no NUL, so it is written
    ``\\u0000`` on both stores (RFC 7519 4.1.7 lets a ``jti`` be any string). Two values
    that map alike only make the second look replayed: a refusal, never a replay let in."""
    return jti.replace("\x00", "\\u0000")


def registration_version(client: RegisteredClient, added_at: float) -> str:
    """The version of one registration: what it says and when it was stored, so that even the
    same registration stored again (or revoked and added back) is a new version."""
    row = {
        "client_id": client.client_id,
        "org": client.org,
        "pilot": client.pilot,
        "jwks": dict(client.jwks),
        "scopes": list(client.scopes),
        "name": client.name,
        "added_at": repr(float(added_at)),
    }
    text = json.dumps(row, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _client(row: tuple[Any, ...]) -> ClientRow:
    client_id, org, pilot, jwks, scopes, name, added_at = row
    client = RegisteredClient(
        client_id=client_id,
        org=org,
        pilot=pilot,
        jwks=json.loads(jwks),
        scopes=tuple(str(scopes).split()),
        name=name,
    )
    added = float(added_at)
    return ClientRow(replace(client, version=registration_version(client, added)), added)
