"""The hub's access file (``<ledger>.access``, SQLite): registered hospital clients and the
FHIR Consent resources whose hashes the log's ``consent`` entries commit to.

Nothing here is the truth on its own: a Consent version is stored *before* its ``consent``
entry is appended, and which version is current is whatever the log's latest entry for
that consent says (:mod:`gateway.access.consents`). A crash between the two leaves only an unused
version behind. Rows are erasable; the log keeps their hashes.

Each client registration has a version of its own (a hash of the row, with the time it was
stored), and :attr:`AccessDb.versions` holds the current one of every client in memory, so the
bearer check can compare a token's version on every request without reading the file.

A revocation is a ``client`` entry on the log first; the rows here (which registration, and
which keys, it revoked) follow it, and are rebuilt from the log's entries at every hub start
(:meth:`AccessDb.record_revocation` is idempotent), so a crash between the two loses nothing.
A revoked client keeps its row: the listing shows it, and its tokens and assertions get a
precise "client revoked". Its keys stay refused, even in a later registration.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ledger.entries import ClientEntry
from ledger.sqlite import open_wal

from ..errors import ConfigError, RegistryError
from ..smart.assertion import RegisteredClient

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

    def __init__(self, path: Path) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # FULL: a client or a Consent version is stored before the log names it.
            self.conn = open_wal(path, SCHEMA, synchronous="FULL")
        except (sqlite3.Error, OSError) as exc:
            raise ConfigError(f"cannot open the hub's access file {path}: {exc}") from None
        self.path = path
        self._lock = threading.Lock()
        self.versions: dict[str, str] = {}
        """Client id -> the version of its current registration, as last written or read here
        (read on the event loop without the lock: each change replaces one item)."""
        self.revoked: dict[str, str] = {}
        """Version of a revoked registration -> when, by whom and why (for the errors)."""
        with self._lock:
            self._load_revocations()
        for row in self.clients():
            self.versions[row.client.client_id] = row.client.version

    def close(self) -> None:
        self.conn.close()

    # -- clients ----------------------------------------------------------------------------
    def put_client(self, client: RegisteredClient) -> RegisteredClient:
        """Register (or replace) ``client``; the stored registration, with its new version.
        RegistryError ``key_revoked`` if it names a key a revocation cut off."""
        added_at = time.time()
        stored = replace(client, version=registration_version(client, added_at), revoked="")
        thumbprints = client.thumbprints()
        with self._lock:
            marks = ",".join("?" * len(thumbprints))
            hit = self.conn.execute(
                f"SELECT thumbprint, client_id, entry FROM revoked_keys"
                f" WHERE thumbprint IN ({marks}) LIMIT 1",
                thumbprints,
            ).fetchone()
            if hit is not None:
                raise RegistryError(
                    "key_revoked",
                    f"key {hit[0]} was revoked with client {hit[1]} (log entry {hit[2]});"
                    " register the client with a new key",
                )
            self.conn.execute(
                "INSERT OR REPLACE INTO clients VALUES (?,?,?,?,?,?,?)",
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
        may have changed the file."""
        row = self.client_row(client_id)
        return row.client if row is not None else None

    def client_row(self, client_id: str) -> ClientRow | None:
        with self._lock:
            row = self.conn.execute(
                f"SELECT {_CLIENT_COLUMNS} FROM clients WHERE client_id = ?", (client_id,)
            ).fetchone()
            if row is None:
                self.versions.pop(client_id, None)
                return None
            found = self._row(row)
            self.versions[client_id] = found.client.version
        return found

    def clients(self) -> list[ClientRow]:
        with self._lock:
            rows = self.conn.execute(
                f"SELECT {_CLIENT_COLUMNS} FROM clients ORDER BY client_id"
            ).fetchall()
            return [self._row(r) for r in rows]

    def claim_jti(self, client_id: str, jti: str, exp: int, now: int, skew: int) -> bool:
        """``smart.assertion.JtiStore``: record a client assertion's ``jti`` (uses that
        expired are dropped first); False if a live use of it is on file."""
        with self._lock:
            self.conn.execute("DELETE FROM used_jtis WHERE exp + ? < ?", (skew, now))
            # One statement, atomic across processes: only one of two racing uses inserts.
            done = self.conn.execute(
                "INSERT OR IGNORE INTO used_jtis VALUES (?,?,?)", (client_id, jti, exp)
            )
            return done.rowcount == 1

    def record_revocation(self, entry: ClientEntry, index: int) -> Revocation:
        """Store the revocation the log's ``client`` entry at ``index`` made (again is a
        no-op): the registration it names is revoked, and its keys with it."""
        revocation = Revocation(entry.at, entry.actor, entry.reason, index)
        with self._lock:
            self.conn.execute(
                "INSERT OR IGNORE INTO client_revocations VALUES (?,?,?,?,?,?)",
                (entry.registration, entry.client, entry.at, entry.actor, entry.reason, index),
            )
            self.conn.executemany(
                "INSERT OR IGNORE INTO revoked_keys VALUES (?,?,?)",
                [(thumbprint, entry.client, index) for thumbprint in entry.keys],
            )
            self.revoked[entry.registration] = revocation.describe()
        return revocation

    def _load_revocations(self) -> None:
        for registration, at, actor, reason, index in self.conn.execute(
            "SELECT registration, at, actor, reason, entry FROM client_revocations"
        ):
            self.revoked[registration] = Revocation(at, actor, reason, int(index)).describe()

    def _row(self, row: tuple[Any, ...]) -> ClientRow:
        """A client row with its revocation, if its current registration has one (under the
        lock)."""
        found = _client(row)
        version = found.client.version
        revoked = self.conn.execute(
            "SELECT at, actor, reason, entry FROM client_revocations WHERE registration = ?",
            (version,),
        ).fetchone()
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
            self.conn.execute(
                "INSERT OR IGNORE INTO consent_versions VALUES (?,?,?,?,?)",
                (digest, consent_id, pilot, resource, time.time()),
            )

    def forget_consent(self, consent_id: str, pilot: str) -> int:
        """Delete every stored version of one Consent (its person's erasure): the log keeps
        the entries, whose openings are blinded. Returns how many versions went."""
        with self._lock:
            c = self.conn
            c.execute("BEGIN IMMEDIATE")
            try:
                gone = c.execute(
                    "DELETE FROM consent_versions WHERE consent_id = ? AND pilot = ?",
                    (consent_id, pilot),
                ).rowcount
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise
            c.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        return int(gone)

    def consent_resources(self, digests: Iterable[str]) -> dict[str, bytes]:
        wanted = list(digests)
        out: dict[str, bytes] = {}
        with self._lock:
            for i in range(0, len(wanted), 500):
                chunk = wanted[i : i + 500]
                marks = ",".join("?" * len(chunk))
                for digest, resource in self.conn.execute(
                    f"SELECT hash, resource FROM consent_versions WHERE hash IN ({marks})", chunk
                ):
                    out[str(digest)] = bytes(resource)
        return out


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
