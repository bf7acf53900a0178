"""Dead letters keep no one's data: a refused record about a person keeps its header only,
and an erasure scrubs what older ones hold."""

from __future__ import annotations

import json
from pathlib import Path

from gateway.ingest.deadletters import WITHHELD, DeadLetters, withhold_person
from ledger.envelope import seal
from ledger.keys import generate_key

KEY = generate_key()
SUBJECT = "pt-9d8c7b6a5f4e"


def record(version: int = 2, subject: str | None = SUBJECT) -> bytes:
    return seal(
        pilot="chronic-care",
        source="php-ward-1",
        seq=1,
        type="fhir.Observation",
        payload={"subject": {"reference": f"Patient/{subject}"}, "valueQuantity": {"value": 7}},
        signing_key=KEY,
        subject=subject,
        consent="c-1" if subject else None,
        version=version,
    ).to_wire()


def test_a_record_about_a_person_keeps_its_header_only() -> None:
    for raw in (record(2), record(1)):
        kept, detail = withhold_person(raw, f"consent 'c-1' of Patient/{SUBJECT} is withdrawn")
        assert SUBJECT.encode() not in kept and b"c-1" not in kept and detail == WITHHELD
        value = json.loads(kept)
        assert value["body"] == WITHHELD and value["header"]["pilot"] == "chronic-care"


def test_anything_else_is_kept_as_it_came() -> None:
    city = record(2, subject=None)
    assert withhold_person(city, "why") == (city, "why")
    for raw in (b"\xff\xfe", b"[" * 100_000, b"{}", b'"text"', b'{"body": 1}'):
        assert withhold_person(raw, "why") == (raw, "why")


def test_scrub_deletes_stored_and_pending_letters_that_name_someone(tmp_path: Path) -> None:
    letters = DeadLetters(tmp_path / "dead.db", max_rows=100)
    letters.add("t", None, "malformed_json", f"bad: {SUBJECT}", b"{" + SUBJECT.encode())
    letters.add("t", None, "malformed_json", "bad", b"{ nobody")
    assert letters.write(letters.take())
    letters.add("t", None, "malformed_json", "bad", SUBJECT.encode())
    assert letters.scrub([SUBJECT, ""]) == 2
    assert [d["detail"] for d in letters.latest(10)] == ["bad"]
    assert letters.take() == []
    letters.close()
    left = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert SUBJECT.encode() not in left
