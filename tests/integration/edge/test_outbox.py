"""The outbox on a real SQLite file: durability settings, seq across restarts, settling."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from edge.drafts import Prepared
from edge.outbox import Outbox
from edge.receipts import ProofPolicy, Receipt, ReceiptJudge
from edge.reseal import reseal
from edge.signer import Sealed, Signer
from edge.status import read_status
from ledger.checkpoint import Checkpoint, NoteSigner, sign_checkpoint
from ledger.envelope import check_commitment, parse_record
from ledger.keys import generate_key
from ledger.suite import Suite

HUB = NoteSigner("test.hub/log", generate_key())


def sealed(seq: int) -> Sealed:
    rid = f"01a22614-deca-70f3-9ce2-{seq:012x}"
    return Sealed(seq, rid, "city.air-quality", bytes([seq % 256]) * 32, b'{"wire":%d}' % seq)


def accepted(s: Sealed, index: int, size: int = 100) -> Receipt:
    note = sign_checkpoint(Checkpoint("test.hub/log", size, bytes(32)), HUB)
    return Receipt(
        id=s.id, status="accepted", index=index, leaf_hash=s.leaf_hash.hex(), checkpoint=note
    )


def test_wal_and_full_sync(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db")
    assert box.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert box.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    box.close()


def test_seq_survives_restarts_and_dead_letters(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db")
    records = [sealed(i) for i in range(1, 6)]
    box.store(records)
    judge = ReceiptJudge(HUB.verifier, ProofPolicy("never"))
    box.settle([accepted(r, r.seq - 1) for r in records[:4]], judge)
    box.settle([Receipt(id=records[4].id, status="rejected", reason="r")], judge)
    assert box.depth() == 0
    box.close()
    again = Outbox(tmp_path / "o.db")
    assert again.last_seq() == 5
    again.close()


def test_settling_deletes_dead_letters_and_queues_proof_checks(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db")
    a, b, c, d = (sealed(i) for i in range(1, 5))
    box.store([a, b, c, d])
    judge = ReceiptJudge(HUB.verifier, ProofPolicy("always"))
    forged = sign_checkpoint(
        Checkpoint("test.hub/log", 100, bytes(32)), NoteSigner("test.hub/log", generate_key())
    )
    result = box.settle(
        [
            accepted(a, 0),
            Receipt(id=b.id, status="rejected", reason="unknown_type", detail="no such type"),
            Receipt(
                id=c.id, status="accepted", index=2, leaf_hash=c.leaf_hash.hex(), checkpoint=forged
            ),
            accepted(a, 0),  # a second receipt for the same record in the batch
        ],
        judge,
    )
    assert [v.action for _, v in result.verdicts] == ["deliver", "dead_letter", "ignore", "ignore"]
    assert [p.seq for p in box.pending_after(0, 10)] == [3, 4]
    assert [check.index for check in box.due_proof_checks(9e12, 10)] == [0]
    status = read_status(tmp_path / "o.db")
    assert (status.depth, status.delivered_total, status.dead_letters_total) == (2, 1, 1)
    assert status.dead_letters[0].reason == "unknown_type"
    assert status.last_receipt is not None and status.last_receipt["status"] == "rejected"
    assert status.last_checkpoint is not None and status.last_checkpoint["size"] == 100
    box.close()


def test_dead_letters_keep_the_signed_record(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db")
    s = sealed(1)
    box.store([s])
    box.settle(
        [Receipt(id=s.id, status="rejected", reason="x")],
        ReceiptJudge(HUB.verifier, ProofPolicy("never")),
    )
    wire = box.conn.execute("SELECT wire FROM dead_letters").fetchone()[0]
    assert json.loads(wire) == {"wire": 1}
    box.close()


def test_ingest_keys_are_stored_with_their_records(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db")
    box.store([sealed(1)], [("file:a.json:abc", 1)])
    assert box.ingested("file:a.json:abc")
    assert not box.ingested("file:b.json:abc")
    box.close()


def test_status_reads_while_the_agent_writes(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db")
    box.store([sealed(i) for i in range(1, 4)])
    status = read_status(tmp_path / "o.db")
    assert (status.depth, status.last_seq) == (3, 3)
    assert status.oldest_pending_age is not None and status.oldest_pending_age < 60
    box.close()


def test_a_new_key_reseals_the_backlog_and_brings_back_key_refusals(
    tmp_path: Path, suite: Suite
) -> None:
    old = Signer("city-air", "station-1", generate_key(suite))
    new = Signer("city-air", "station-1", generate_key(suite))
    prepared = Prepared("city.air-quality", {"pm25": 1}, None, None, "2026-05-01T08:30:00Z")
    a, b, c, d = (old.seal(prepared, seq) for seq in range(1, 5))
    mine = new.seal(prepared, 5)
    box = Outbox(tmp_path / "o.db")
    box.store([a, b, c, d, mine])
    judge = ReceiptJudge(HUB.verifier, ProofPolicy("never"))
    box.settle(
        [
            Receipt(id=c.id, status="rejected", reason="key_not_valid", detail="rotated"),
            Receipt(id=d.id, status="rejected", reason="type_not_allowed", detail="no"),
        ],
        judge,
    )
    assert reseal(box, new) == (2, 1)
    pending = box.pending_after(0, 10)
    assert [p.seq for p in pending] == [1, 2, 3, 5]
    assert {parse_record(p.wire).header.key for p in pending} == {new.key_id}
    assert [p.leaf_hash == mine.leaf_hash for p in pending] == [False, False, False, True]
    for p in pending:  # in the log's tree, committed in its hash
        record = parse_record(p.wire)
        check_commitment(record, suite)
        assert p.leaf_hash == suite.tree.leaf(record.header.canonical())
    # The old seals' leaf hashes settle receipts for copies that landed before the switch.
    expected = box._expected([a.id, c.id, mine.id])
    assert expected[a.id].earlier == (a.leaf_hash,)
    assert expected[c.id].earlier == (c.leaf_hash,)
    assert expected[mine.id].earlier == ()
    dead = box.conn.execute("SELECT seq, reason FROM dead_letters").fetchall()
    assert dead == [(4, "type_not_allowed")]
    assert reseal(box, new) == (0, 0)
    box.close()


def test_an_outbox_of_schema_1_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    conn = sqlite3.connect(path)
    conn.executescript(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        "CREATE TABLE outbox (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE,"
        " type TEXT NOT NULL, leaf_hash BLOB NOT NULL, wire BLOB NOT NULL,"
        " created_at REAL NOT NULL);"
        "INSERT INTO meta VALUES ('schema', '1');"
    )
    s = sealed(1)
    conn.execute(
        "INSERT INTO outbox VALUES (?, ?, ?, ?, ?, 0)",
        (s.seq, s.id, s.type_id, s.leaf_hash, s.wire),
    )
    conn.commit()
    conn.close()
    box = Outbox(path)
    assert box.meta("schema") == "2"
    assert box._expected([s.id])[s.id].earlier == ()
    box.close()
