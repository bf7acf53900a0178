"""The ledger's tables on SQLite, and the version a ledger file records in ``meta``.

``entries`` is the log itself (each leaf's exact bytes, its hash and the node hashes it
closes); ``records`` indexes the signed headers of ``record`` entries (with the subject and
Consent of v2 records from their openings: the hub's private index); ``bodies`` holds their
payloads off-log, erasable; ``openings`` holds the openings of v2 leaves' ``person``
commitments (:mod:`ledger.sealed`), erasable; ``origins`` the device headers of relayed
records, erasable with the body; ``checkpoints`` keeps every signed tree head. Only ``ledger/``
reads or writes these tables (:mod:`ledger.store`, :mod:`ledger.queries`, :mod:`ledger.verify`).
"""

from __future__ import annotations

SCHEMA_VERSION = "2"
#: Schemas a reader opens; a writer brings a "1" file (no openings, no origins) to "2" by
#: creating the two tables, which is all that changed.
READABLE_SCHEMAS = ("1", "2")

#: A body's FHIR ``id`` (``$.id`` of its JSON), NULL where it has none or is not JSON: what
#: the FHIR read interaction finds a resource by. Guarded by ``json_valid`` so that a body
#: that is not JSON still stores (and ``verify`` reports it) rather than failing the insert.
RESOURCE_ID = (
    "json_extract(CASE WHEN json_valid(CAST(payload AS TEXT))"
    " THEN CAST(payload AS TEXT) END, '$.id')"
)

SCHEMA = f"""
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
CREATE TABLE IF NOT EXISTS bodies (
    idx INTEGER PRIMARY KEY,
    payload BLOB NOT NULL,
    salt TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS bodies_by_resource_id ON bodies ({RESOURCE_ID});
-- The openings of v2 leaves' person commitments: JCS of an object with fields, salt.
CREATE TABLE IF NOT EXISTS openings (
    idx INTEGER PRIMARY KEY,
    opening BLOB NOT NULL
);
-- Openings of an erased person's entries, blinded (ledger.sealed.blind): found by the tag
-- derived from their pseudonym, opened only with it.
CREATE TABLE IF NOT EXISTS blinded (
    idx INTEGER PRIMARY KEY,
    tag TEXT NOT NULL,
    box BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS blinded_by_tag ON blinded (tag);
-- A relayed record's device header and signature (JSON), erased with its body.
CREATE TABLE IF NOT EXISTS origins (
    idx INTEGER PRIMARY KEY,
    origin BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS checkpoints (
    size INTEGER PRIMARY KEY,
    root BLOB NOT NULL,
    note TEXT NOT NULL,
    created_at REAL NOT NULL
);
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
