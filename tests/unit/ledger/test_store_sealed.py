"""The store's private side of wire v2: openings and origins beside the bodies, erased with
them (and gone from the file and its WAL), blinded openings, and ``verify`` on v1 and v2;
on both stores."""

from __future__ import annotations

from pathlib import Path

from ledger.entries import AccessEntry
from ledger.envelope import Origin, seal
from ledger.keys import generate_key
from ledger.sealed import blind, subject_tag, unblind
from ledger.store import Blinded, LedgerReader, NewEntry
from ledger.verify import verify_ledger
from tests.support.ledger_builder import LedgerBuilder, record_entry, stored_bytes, tampering

SUBJECT = "pt-5e1f2a3b4c5d"
CONSENT = "c-erase-me"
PILOT = "chronic-care"


def personal_builder(location: Path | str) -> LedgerBuilder:
    builder = LedgerBuilder(location, pilot=PILOT, source="php-ward-1")
    builder.register_source()
    return builder


def reading(builder: LedgerBuilder, value: int) -> int:
    payload = {
        "resourceType": "Observation",
        "subject": {"reference": f"Patient/{SUBJECT}"},
        "valueQuantity": {"value": 4200 + value},
    }
    return builder.append_record(payload, type="fhir.Observation", subject=SUBJECT, consent=CONSENT)


def test_a_records_opening_is_kept_off_the_log_and_indexed(store_url: str) -> None:
    builder = personal_builder(store_url)
    index = reading(builder, 1)
    entry = builder.writer.entry(index)
    assert SUBJECT.encode() not in entry.leaf and CONSENT.encode() not in entry.leaf
    opening = builder.writer.opening(index)
    assert opening is not None and dict(opening.fields) == {"consent": CONSENT, "subject": SUBJECT}
    held = builder.writer.subject_records(
        pilot=PILOT, subject=SUBJECT, data_type="fhir.Observation", since=None, until=None, limit=9
    )
    assert [r.index for r in held] == [index]
    builder.checkpoint()
    report = verify_ledger(builder.path)
    assert report.ok and report.openings == 1, report.problems
    builder.close()


def test_an_erasure_takes_body_opening_origin_and_index_and_leaves_no_copy(
    store_url: str,
) -> None:
    builder = personal_builder(store_url)
    device_key = generate_key()
    device = seal(
        pilot=PILOT,
        source="hd-0a1b2c3d4e",
        seq=1,
        type="fhir.Observation",
        payload={"subject": {"reference": f"Patient/{SUBJECT}"}, "valueQuantity": {"value": 4242}},
        signing_key=device_key,
        subject=SUBJECT,
        consent=CONSENT,
        observed_at="2026-05-04T08:30:00Z",
        salt=bytes(16),
        person_salt=bytes(range(16)),
    )
    relayed = seal(
        pilot=PILOT,
        source="php-ward-1",
        seq=1,
        type="fhir.Observation",
        payload=device.body.payload,
        signing_key=builder.source_key,
        subject=SUBJECT,
        consent=CONSENT,
        observed_at="2026-05-04T08:30:00Z",
        record_id=device.header.id,
        salt=bytes(16),
        person_salt=bytes(range(16)),
        origin=Origin(header=device.header, sig=device.sig),
    )
    builder.seq = 1
    (stored,) = builder.writer.append([record_entry(relayed)])
    other = reading(builder, 2)
    assert builder.writer.origin(stored.index) is not None
    builder.erase(stored.index)
    builder.erase(other)
    reader = builder.writer
    assert reader.body(stored.index) is None and reader.opening(stored.index) is None
    assert reader.origin(stored.index) is None
    assert (
        reader.subject_records(
            pilot=PILOT,
            subject=SUBJECT,
            data_type="fhir.Observation",
            since=None,
            until=None,
            limit=9,
        )
        == []
    )
    builder.close()
    # Nothing of the person, the device or the reading is left in the file or its WAL (on
    # PostgreSQL: in the tables).
    left = stored_bytes(builder.path)
    for needle in (SUBJECT, CONSENT, "hd-0a1b2c3d4e", '"value":4242', '"value":4202'):
        assert needle.encode() not in left, needle
    report = verify_ledger(builder.path)
    assert report.ok and report.erased == 2, report.problems


def test_forgotten_and_blinded_openings(store_url: str) -> None:
    builder = personal_builder(store_url)
    entry = AccessEntry(
        at="2026-05-04T08:30:00Z",
        client="php-ehr",
        org="harbour-peoples-hospital",
        pilot=PILOT,
        purpose="TREAT",
        type="fhir.Observation",
        subject=SUBJECT,
        decision="allow",
        reason="consent_permits",
        request=f"GET /fhir/Observation?patient={SUBJECT}",
    )
    rows = []
    for _ in range(3):
        leaf, opening = entry.sealed()
        rows.append(NewEntry("access", leaf, opening=opening))
    rows.append(
        NewEntry(
            "access", *entry.sealed()[:1], opening=entry.sealed()[1], blinded_for=(PILOT, SUBJECT)
        )
    )
    first, second, third, fourth = builder.writer.append(rows)
    held = builder.writer.openings([first.index, second.index])
    tag = subject_tag(PILOT, SUBJECT)

    builder.writer.append(
        [],
        forget=[first.index],
        blind=[
            Blinded(
                second.index,
                tag,
                blind(held[second.index], pilot=PILOT, subject=SUBJECT, index=second.index),
            )
        ],
    )
    reader = builder.writer
    assert reader.opening(first.index) is None and reader.opening(second.index) is None
    assert reader.opening(third.index) is not None
    boxes = dict(reader.blinded(tag))
    assert sorted(boxes) == [second.index, fourth.index]
    assert (
        unblind(boxes[second.index], pilot=PILOT, subject=SUBJECT, index=second.index)
        == held[second.index]
    )
    assert reader.blinded_tags() == {tag}
    builder.checkpoint()
    builder.close()
    assert verify_ledger(builder.path).ok


def test_a_stored_opening_that_is_not_the_leafs_is_caught(store_url: str) -> None:
    builder = personal_builder(store_url)
    index = reading(builder, 1)
    other = reading(builder, 2)
    builder.checkpoint()
    builder.close()
    with tampering(builder.path) as conn:
        swapped = conn.execute("SELECT opening FROM openings WHERE idx = ?", (other,)).fetchone()
        conn.execute("UPDATE openings SET opening = ? WHERE idx = ?", (swapped[0], index))
    report = verify_ledger(builder.path)
    assert not report.ok and report.first_bad_index == index


def test_an_erasure_whose_opening_a_copy_lacks_still_accounts_for_its_body(store_url: str) -> None:
    builder = personal_builder(store_url)
    index = reading(builder, 1)
    builder.erase(index)
    builder.close()
    with tampering(builder.path) as conn:
        conn.execute("DELETE FROM openings")  # a mirror holds no openings
    report = verify_ledger(builder.path)
    assert report.ok and report.erased == 1, report.problems


def test_a_schema_1_ledger_of_v1_leaves_still_reads_and_verifies(store_url: str) -> None:
    path = store_url
    builder = LedgerBuilder(path, pilot=PILOT, source="php-ward-1")
    builder.register_source()
    builder.seq += 1
    v1 = seal(
        pilot=PILOT,
        source="php-ward-1",
        seq=builder.seq,
        type="fhir.Observation",
        payload={"subject": {"reference": f"Patient/{SUBJECT}"}},
        signing_key=builder.source_key,
        subject=SUBJECT,
        consent=CONSENT,
        version=1,
    )
    builder.writer.append([record_entry(v1)])
    builder.checkpoint()
    builder.close()
    with tampering(path) as conn:
        for table in ("openings", "origins", "blinded"):
            conn.execute(f"DROP TABLE {table}")
        conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema'")
    report = verify_ledger(path)
    assert report.ok and report.records == 1, report.problems
    with LedgerReader(path) as reader:
        assert reader.opening(1) is None and reader.blinded("x" * 64) == []
        assert [i for i, v in reader.opened_leaves("record") if v["subject"] == SUBJECT] == [1]


def test_a_leaves_only_copy_verifies_without_bodies_but_not_without_signatures(
    store_url: str,
) -> None:
    from ledger.verify import COPY_META, LEAVES_ONLY

    builder = LedgerBuilder(store_url)
    builder.register_source()
    builder.append_records(3)
    builder.close()
    with tampering(builder.path) as conn:
        conn.execute("DELETE FROM bodies")
        assert not verify_ledger(builder.path).ok  # a hub's file missing its bodies
        conn.execute("INSERT INTO meta VALUES (?, ?)", (COPY_META, LEAVES_ONLY))
        report = verify_ledger(builder.path)
        assert report.ok and report.leaves_only and report.signatures == 3 and report.erased == 0
        conn.execute("UPDATE entries SET sig = ? WHERE idx = 2", ("A" * 86,))
    assert verify_ledger(builder.path).first_bad_index == 2
