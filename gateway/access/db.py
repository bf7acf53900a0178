"""The hub's access file (``<ledger>.access``, SQLite): registered hospital clients and the
FHIR Consent resources whose hashes the log's ``consent`` entries commit to.

Nothing here is the truth on its own: a Consent version is stored *before* its ``consent``
entry is appended, and which version is current is whatever the log's latest entry for
that consent says (:mod:`gateway.access.consents`). A crash between the two leaves only an unused
version behind. Rows are erasable; the log keeps their hashes.

Each client registration has a version of its own (a hash of the row, with the time it was
stored), and :attr:`AccessDb.versions` holds the current one of every client in memory, so the
bearer check can compare a token's version on every request without reading the file.
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

from ledger.sqlite import open_wal

from ..errors import ConfigError
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
CREATE TABLE IF NOT EXISTS consent_versions (
    hash TEXT PRIMARY KEY,
    consent_id TEXT NOT NULL,
    pilot TEXT NOT NULL,
    resource BLOB NOT NULL,
    stored_at REAL NOT NULL
);
"""


@dataclass(frozen=True)
class ClientRow:
    client: RegisteredClient
    added_at: float

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
        }


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
        for row in self.clients():
            self.versions[row.client.client_id] = row.client.version

    def close(self) -> None:
        self.conn.close()

    # -- clients ----------------------------------------------------------------------------
    def put_client(self, client: RegisteredClient) -> RegisteredClient:
        """Register (or replace) ``client``; the stored registration, with its new version."""
        added_at = time.time()
        stored = replace(client, version=registration_version(client, added_at))
        with self._lock:
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
        """The current registration of ``client_id`` (and :attr:`versions` brought up to date
        with it: another process, ``swiftchain clients add``, may have changed the file)."""
        with self._lock:
            row = self.conn.execute(
                "SELECT client_id, org, pilot, jwks, scopes, name, added_at FROM clients"
                " WHERE client_id = ?",
                (client_id,),
            ).fetchone()
            if row is None:
                self.versions.pop(client_id, None)
                return None
            client = _client(row).client
            self.versions[client_id] = client.version
        return client

    def clients(self) -> list[ClientRow]:
        with self._lock:
            rows = self.conn.execute(
                "SELECT client_id, org, pilot, jwks, scopes, name, added_at FROM clients"
                " ORDER BY client_id"
            ).fetchall()
        return [_client(r) for r in rows]

    def remove_client(self, client_id: str) -> bool:
        with self._lock:
            cur = self.conn.execute("DELETE FROM clients WHERE client_id = ?", (client_id,))
            self.versions.pop(client_id, None)
        return cur.rowcount > 0

    # -- consent versions --------------------------------------------------------------------
    def put_consent(self, digest: str, consent_id: str, pilot: str, resource: bytes) -> None:
        with self._lock:
            self.conn.execute(
                "INSERT OR IGNORE INTO consent_versions VALUES (?,?,?,?,?)",
                (digest, consent_id, pilot, resource, time.time()),
            )

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
    same registration stored again (or removed and added back) is a new version."""
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
