"""The ledger's tables on SQLite and on PostgreSQL, and the version a ledger records in
``meta``.

``entries`` is the log itself (each leaf's exact bytes, its hash and the node hashes it
closes); ``records`` indexes the signed headers of ``record`` entries (with the subject and
Consent of v2 records from their openings: the hub's private index); ``bodies`` holds their
payloads off-log, erasable; ``openings`` holds the openings of v2 leaves' ``person``
commitments (:mod:`ledger.sealed`), erasable; ``origins`` the device headers of relayed
records, erasable with the body; ``checkpoints`` keeps every signed tree head. Only ``ledger/``
reads or writes these tables (:mod:`ledger.store`, :mod:`ledger.queries`, :mod:`ledger.verify`).

Since schema "3" the erasable values are stored sealed under data keys (:mod:`ledger.
datakeys`, :mod:`ledger.sealing`): each of the three tables has a ``key_id`` (NULL for a
value stored in the open, as every row written before "3", or by a writer without a key
store), ``bodies`` a keyed digest of the body's FHIR id in ``resource`` (in place of the id
itself), and ``doomed_keys`` notes the keys an erasure committed but the key store has not
destroyed yet.
"""

from __future__ import annotations

from typing import Any

import msgspec

SCHEMA_VERSION = "3"
#: Schemas a reader opens; a writer brings a "1" file (no openings, no origins) to "2" by
#: creating the two tables, which is all that changed, and a "2" file to "3" by adding the
#: columns and the table of sealing (:data:`SEALING_COLUMNS`; its rows stay as they are, in
#: the open, erased by deletion as before).
READABLE_SCHEMAS = ("1", "2", "3")

#: A body's FHIR ``id`` (``$.id`` of its JSON), NULL where it has none or is not JSON: what
#: the FHIR read interaction finds a resource by. Guarded by ``json_valid`` so that a body
#: that is not JSON still stores (and ``verify`` reports it) rather than failing the insert.
RESOURCE_ID = (
    "json_extract(CASE WHEN json_valid(CAST(payload AS TEXT))"
    " THEN CAST(payload AS TEXT) END, '$.id')"
)

#: The schema's default PostgreSQL schema (``?schema=NAME`` of the store URL overrides it).
PG_SCHEMA = "ledger"

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS entries (
    idx INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    leaf BLOB NOT NULL,
    leaf_hash BLOB NOT NULL,
    -- The complete subtrees this leaf closes, levels 1, 2, ... concatenated (32 bytes each):
    -- node (level, i) covers leaves [i << level, (i + 1) << level) and is closed by the leaf
    -- at index ((i + 1) << level) - 1. Keeping them on the entry's row makes an append one
    -- row write and a node lookup a primary-key read.
    nodes BLOB NOT NULL,
    sig TEXT,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS records (
    idx INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    pilot TEXT NOT NULL,
    source TEXT NOT NULL,
    seq INTEGER NOT NULL,
    type TEXT NOT NULL,
    subject TEXT,
    consent TEXT,
    observed_at TEXT NOT NULL,
    key TEXT NOT NULL,
    UNIQUE (pilot, source, seq)
);
CREATE INDEX IF NOT EXISTS records_by_type ON records (pilot, type, observed_at);
-- Covering for a search's count (ledger.queries.subject_matches reads nothing else): pilot
-- and consent in the index save a table page read a match, made again after every commit
-- (a reader's page cache starts over): at 100 matches a person, ~235 -> ~110 us a query,
-- for ~2 us more a record's insert (bench/query.py). The queries name it (INDEXED BY): with
-- pilot before observed_at, SQLite would rather take records_by_type and skip a sort. A
-- ledger made before keeps its (subject, type, observed_at) index: the same answers.
CREATE INDEX IF NOT EXISTS records_by_subject
    ON records (subject, type, pilot, observed_at, consent) WHERE subject IS NOT NULL;
-- Bodies live off-log and can be erased; the leaf (and every proof) stays valid.
-- A sealed body: payload = the salt and JCS(payload) sealed under key key_id, salt '',
-- resource = the keyed digest of its FHIR id (ledger.datakeys.resource_digest). A body in
-- the open (key_id NULL): payload = JCS(payload), salt its base64url, resource NULL.
CREATE TABLE IF NOT EXISTS bodies (
    idx INTEGER PRIMARY KEY,
    payload BLOB NOT NULL,
    salt TEXT NOT NULL,
    key_id INTEGER,
    resource BLOB
);
-- The openings of v2 leaves' person commitments: JCS of an object with fields, salt
-- (sealed under key_id unless it is NULL).
CREATE TABLE IF NOT EXISTS openings (
    idx INTEGER PRIMARY KEY,
    opening BLOB NOT NULL,
    key_id INTEGER
);
-- Openings of an erased person's entries, blinded (ledger.sealed.blind): found by the tag
-- derived from their pseudonym, opened only with it.
CREATE TABLE IF NOT EXISTS blinded (
    idx INTEGER PRIMARY KEY,
    tag TEXT NOT NULL,
    box BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS blinded_by_tag ON blinded (tag);
-- A relayed record's device header and signature (JSON), erased with its body (sealed
-- under key_id unless it is NULL).
CREATE TABLE IF NOT EXISTS origins (
    idx INTEGER PRIMARY KEY,
    origin BLOB NOT NULL,
    key_id INTEGER
);
CREATE TABLE IF NOT EXISTS checkpoints (
    size INTEGER PRIMARY KEY,
    root BLOB NOT NULL,
    note TEXT NOT NULL,
    created_at REAL NOT NULL
);
-- Keys an erasure committed to destroy, until the key store has (ids only: opaque).
CREATE TABLE IF NOT EXISTS doomed_keys (key_id INTEGER PRIMARY KEY);
"""

#: The columns schema "3" added to tables of "2", as a writer adds them to a "2" ledger
#: (``ALTER TABLE ... ADD COLUMN``: NULL in every existing row, which is what a value in
#: the open has).
SEALING_COLUMNS = (
    ("bodies", "key_id", "INTEGER"),
    ("bodies", "resource", "BLOB"),
    ("openings", "key_id", "INTEGER"),
    ("origins", "key_id", "INTEGER"),
)

#: The indexes over those columns, made once they exist. The FHIR-id index covers the
#: bodies in the open only (a sealed body's payload is no JSON; ``resource`` indexes it):
#: a "2" ledger brought to "3" keeps its index over every body, which answers the same.
#: By key: what an erasure asks of every key it may destroy (is anything left under it?).
SCHEMA_INDEXES = f"""
CREATE INDEX IF NOT EXISTS bodies_by_resource_id ON bodies ({RESOURCE_ID}) WHERE key_id IS NULL;
CREATE INDEX IF NOT EXISTS bodies_by_resource ON bodies (resource) WHERE resource IS NOT NULL;
CREATE INDEX IF NOT EXISTS bodies_by_key ON bodies (key_id) WHERE key_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS openings_by_key ON openings (key_id) WHERE key_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS origins_by_key ON origins (key_id) WHERE key_id IS NOT NULL;
"""

RECORD_COLUMNS = (
    # The signed header's fields the records table indexes, in column order.
    "id",
    "pilot",
    "source",
    "seq",
    "type",
    "subject",
    "consent",
    "observed_at",
    "key",
)


#: The same tables on PostgreSQL, column for column: BIGINT for SQLite's INTEGER (both signed
#: 64-bit), BYTEA for BLOB, DOUBLE PRECISION for REAL (both IEEE binary64, so created_at
#: copies exactly), and every TEXT column ``COLLATE "C"``: bytewise order, as SQLite's BINARY
#: collation, so that ``observed_at`` and ids sort the same on both stores whatever the
#: database's locale. ``bodies.resource_id`` stands in for SQLite's expression index on
#: ``json_extract(payload, '$.id')``: PostgreSQL has no JSON function over a BYTEA that a
#: malformed body cannot fail, so the writer computes it (:func:`resource_id_of`). Each index
#: ends with ``idx``, which a SQLite index holds without saying (every index entry ends
#: with its rowid): the same covering, so that a search reads the subject index alone (an
#: index-only scan). The subject index carries ``consent`` as an INCLUDE column (which
#: SQLite has not), so that its order is the search's, ``observed_at, idx``, with no sort:
#: what makes the planner take it without SQLite's ``INDEXED BY``.
SCHEMA_PG = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT COLLATE "C" PRIMARY KEY,
    value TEXT COLLATE "C" NOT NULL
);
CREATE TABLE IF NOT EXISTS entries (
    idx BIGINT PRIMARY KEY,
    kind TEXT COLLATE "C" NOT NULL,
    leaf BYTEA NOT NULL,
    leaf_hash BYTEA NOT NULL,
    nodes BYTEA NOT NULL,
    sig TEXT COLLATE "C",
    created_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS records (
    idx BIGINT PRIMARY KEY,
    id TEXT COLLATE "C" NOT NULL UNIQUE,
    pilot TEXT COLLATE "C" NOT NULL,
    source TEXT COLLATE "C" NOT NULL,
    seq BIGINT NOT NULL,
    type TEXT COLLATE "C" NOT NULL,
    subject TEXT COLLATE "C",
    consent TEXT COLLATE "C",
    observed_at TEXT COLLATE "C" NOT NULL,
    key TEXT COLLATE "C" NOT NULL,
    UNIQUE (pilot, source, seq)
);
CREATE INDEX IF NOT EXISTS records_by_type ON records (pilot, type, observed_at, idx);
CREATE INDEX IF NOT EXISTS records_by_subject
    ON records (subject, type, pilot, observed_at, idx) INCLUDE (consent)
    WHERE subject IS NOT NULL;
CREATE TABLE IF NOT EXISTS bodies (
    idx BIGINT PRIMARY KEY,
    payload BYTEA NOT NULL,
    salt TEXT COLLATE "C" NOT NULL,
    resource_id TEXT COLLATE "C",
    key_id BIGINT,
    resource BYTEA
);
CREATE INDEX IF NOT EXISTS bodies_by_resource_id ON bodies (resource_id, idx)
    WHERE resource_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS openings (
    idx BIGINT PRIMARY KEY,
    opening BYTEA NOT NULL,
    key_id BIGINT
);
CREATE TABLE IF NOT EXISTS blinded (
    idx BIGINT PRIMARY KEY,
    tag TEXT COLLATE "C" NOT NULL,
    box BYTEA NOT NULL
);
CREATE INDEX IF NOT EXISTS blinded_by_tag ON blinded (tag, idx);
CREATE TABLE IF NOT EXISTS origins (
    idx BIGINT PRIMARY KEY,
    origin BYTEA NOT NULL,
    key_id BIGINT
);
CREATE TABLE IF NOT EXISTS checkpoints (
    size BIGINT PRIMARY KEY,
    root BYTEA NOT NULL,
    note TEXT COLLATE "C" NOT NULL,
    created_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS doomed_keys (key_id BIGINT PRIMARY KEY);
"""

#: :data:`SCHEMA_INDEXES` on PostgreSQL (each ending with ``idx``, as above).
SCHEMA_INDEXES_PG = """
CREATE INDEX IF NOT EXISTS bodies_by_resource ON bodies (resource, idx)
    WHERE resource IS NOT NULL;
CREATE INDEX IF NOT EXISTS bodies_by_key ON bodies (key_id, idx) WHERE key_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS openings_by_key ON openings (key_id, idx) WHERE key_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS origins_by_key ON origins (key_id, idx) WHERE key_id IS NOT NULL;
"""

#: :data:`SEALING_COLUMNS` added on PostgreSQL (only run when one is missing: an ALTER
#: TABLE takes the table's exclusive lock even when it changes nothing).
SEALING_PG = "".join(
    f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} "
    f"{'BIGINT' if kind == 'INTEGER' else 'BYTEA'};\n"
    for table, column, kind in SEALING_COLUMNS
)

#: Every table's columns common to both stores (a copy moves these), its key first: the
#: order a copy reads it in. ``bodies.resource_id`` (PostgreSQL's alone) is derived.
TABLES: dict[str, tuple[str, ...]] = {
    "meta": ("key", "value"),
    "entries": ("idx", "kind", "leaf", "leaf_hash", "nodes", "sig", "created_at"),
    "records": ("idx", *RECORD_COLUMNS),
    "bodies": ("idx", "payload", "salt", "key_id", "resource"),
    "openings": ("idx", "opening", "key_id"),
    "blinded": ("idx", "tag", "box"),
    "origins": ("idx", "origin", "key_id"),
    "checkpoints": ("size", "root", "note", "created_at"),
    "doomed_keys": ("key_id",),
}
#: The tables a schema "1" ledger lacks.
SEALED_TABLES = ("openings", "blinded", "origins")
#: The table a schema "1" or "2" ledger lacks (its columns of :data:`SEALING_COLUMNS` too).
KEYED_TABLES = ("doomed_keys",)


class _Named(msgspec.Struct):
    id: Any = None


_decode_named = msgspec.json.Decoder(_Named).decode


def resource_id_of(payload: bytes) -> str | None:
    """A body's FHIR ``id``: ``id`` of the JSON object ``payload`` if it is a string, else
    None (no id, another JSON value, not JSON at all: a body that is not JSON still stores,
    and ``verify`` reports it). What SQLite's :data:`RESOURCE_ID` computes in SQL, but for
    an id with a NUL character, which PostgreSQL's TEXT cannot hold (and no FHIR id has,
    FHIR R4 2.24.0.1): None, so that the record still stores."""
    try:
        value = _decode_named(payload).id
    except (msgspec.DecodeError, UnicodeDecodeError):
        return None
    return value if isinstance(value, str) and "\x00" not in value else None
