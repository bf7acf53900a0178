"""Dead letters keep no one's data: a refused record about a person keeps its header only,
and an erasure scrubs what older ones hold. The table answers the same on SQLite and on
PostgreSQL (newest first, bounded), and a store that fails keeps the letters pending."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.ingest.deadletters import WITHHELD, DeadLetters, withhold_person
from ledger.envelope import seal
from ledger.errors import StorageError, StoreError
from ledger.keys import generate_key
from tests.support.broker import free_port

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
        # The Consent id as a JSON string: the bare text "c-1" can turn up by chance inside
        # the header's base64url signature or commitment.
        assert SUBJECT.encode() not in kept and b'"c-1"' not in kept and detail == WITHHELD
        value = json.loads(kept)
        assert value["body"] == WITHHELD and value["header"]["pilot"] == "chronic-care"


def test_anything_else_is_kept_as_it_came() -> None:
    city = record(2, subject=None)
    assert withhold_person(city, "why") == (city, "why")
    for raw in (b"\xff\xfe", b"[" * 100_000, b"{}", b'"text"', b'{"body": 1}'):
        assert withhold_person(raw, "why") == (raw, "why")


def test_scrub_deletes_stored_and_pending_letters_that_name_someone(
    store_url: str, store_kind: str, tmp_path: Path
) -> None:
    letters = DeadLetters(store_url, max_rows=100)
    letters.add("t", None, "malformed_json", f"bad: {SUBJECT}", b"{" + SUBJECT.encode())
    letters.add("t", None, "malformed_json", "bad", b"{ nobody")
    assert letters.write(letters.take())
    letters.add("t", None, "malformed_json", "bad", SUBJECT.encode())
    assert letters.scrub([SUBJECT, ""]) == 2
    assert [d["detail"] for d in letters.latest(10)] == ["bad"]
    assert letters.take() == []
    letters.close()
    if store_kind == "sqlite":
        left = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
        assert SUBJECT.encode() not in left


@pytest.fixture
def letters(store_url: str) -> Iterator[DeadLetters]:
    letters = DeadLetters(store_url, max_rows=5)
    yield letters
    letters.close()


def test_the_newest_are_listed_first_and_only_the_last_max_rows_kept(
    letters: DeadLetters,
) -> None:
    for batch in range(3):
        for i in range(4):
            letters.add(f"topic/{batch}", f"r-{batch}-{i}", "bad_signature", "no", b"raw")
        assert letters.write(letters.take())
    listed = letters.latest(10)
    assert [d["record_id"] for d in listed] == ["r-2-3", "r-2-2", "r-2-1", "r-2-0", "r-1-3"]
    assert [d["id"] for d in listed] == sorted((d["id"] for d in listed), reverse=True)
    assert listed[0]["size"] == 3 and listed[0]["topic"] == "topic/2"
    assert len(letters.latest(2)) == 2


def test_any_text_is_kept_as_it_came_but_nul(letters: DeadLetters) -> None:
    letters.add("t", "id\x00x", "malformed_json", "bad \x00 ä \U0001f600", b"\x00\xff")
    letters.add("t", None, "malformed_json", "", b"")
    assert letters.write(letters.take())
    blank, odd = letters.latest(2)
    assert (odd["record_id"], odd["detail"]) == ("id\\u0000x", "bad \\u0000 ä \U0001f600")
    assert (blank["record_id"], blank["detail"], blank["size"]) == (None, "", 0)


def test_a_lost_connection_keeps_the_letters_pending_until_the_next_write(pg_url: str) -> None:
    import psycopg

    letters = DeadLetters(pg_url, max_rows=100)
    try:
        letters.add("t", "r-1", "bad_signature", "no", b"raw")
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (letters._conn.backend_pid(),))
        assert not letters.write(letters.take())
        assert [d.record_id for d in letters.take()] == ["r-1"]
        letters.add("t", "r-1", "bad_signature", "no", b"raw")
        assert letters.write(letters.take())
        assert [d["record_id"] for d in letters.latest(10)] == ["r-1"]
    finally:
        letters.close()
    with psycopg.connect(pg_url) as raw:
        count = raw.execute("SELECT count(*) FROM deadletters.dead_letters").fetchone()
        assert count == (1,)


def test_a_store_that_cannot_be_reached_or_named_is_a_store_error() -> None:
    with pytest.raises(StorageError, match="dead-letter table"):
        DeadLetters(f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere", max_rows=5)
    with pytest.raises(StoreError, match="unknown store"):
        DeadLetters("mysql://127.0.0.1/x", max_rows=5)
