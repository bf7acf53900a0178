from __future__ import annotations

from edge.status import DeadLetter, Status, render_status


def test_status_says_what_an_operator_needs() -> None:
    now = 1_000_000.0
    status = Status(
        outbox_path="/var/lib/edge/outbox.db",
        depth=12,
        oldest_pending_age=95.0,
        last_seq=4711,
        delivered_total=4699,
        dead_letters_total=1,
        dead_letters=[DeadLetter(17, "id-17", "city.parking", "bad_signature", "no", now - 60)],
        last_receipt={"id": "id-4700", "status": "accepted", "index": 99, "at": now - 2},
        last_checkpoint={"origin": "hub/log", "size": 100, "root": "ab" * 32, "at": now - 1},
        proofs_verified=5,
        proof_checks_pending=1,
        proof_checks_failed=0,
    )
    text = render_status(status, now)
    assert "pending         12" in text
    assert "oldest pending  95.0s" in text
    assert "accepted id-4700 index 99" in text
    assert "hub/log size 100" in text
    assert "seq 17 id-17 city.parking: bad_signature: no" in text
    assert "FAILED" not in text


def test_status_of_a_fresh_outbox() -> None:
    text = render_status(Status("o.db", 0, None, 0, 0, 0), 0)
    assert "oldest pending  -" in text and "last receipt    -" in text
