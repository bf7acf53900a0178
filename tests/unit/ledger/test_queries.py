"""The hub's named reads of the ledger (``ledger.queries``), on a real ledger built the way
the hub builds one: registry entries, city and personal records with bodies, consent and
access entries, an erasure, signed checkpoints; in a SQLite file and in PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from ledger.canonical import canonical_json
from ledger.errors import StoreError
from ledger.queries import _SUBJECT_MATCHES, HeldBody, HeldRecord
from ledger.store import LedgerReader, NewEntry
from tests.support.ledger_builder import LedgerBuilder

CITY = "city.air-quality"
OBS = "fhir.Observation"
ANNA, BERT = "patient-anna-0001", "patient-bert-0002"


@dataclass
class Log:
    path: str
    registry: int
    city: list[int]
    anna: list[int]
    """Anna's Observations: c-1, c-1 (erased), c-2; then one DiagnosticReport under c-1."""
    anna_report: int
    bert: int
    consent: int
    access: list[int]
    erased: int


def _air(minute: int) -> str:
    return f"2026-05-01T08:{minute:02d}:00Z"


@pytest.fixture(scope="module")
def log(module_store_url: str) -> Iterator[Log]:
    path = module_store_url
    b = LedgerBuilder(path, pilot="city-air")
    b.register_source()
    registry = 0
    # Appended out of time order on purpose: the log's order is not the observations'.
    city = [b.append_record({"pm25": m}, observed_at=_air(m)) for m in (30, 10, 20)]
    b.checkpoint()
    b.pilot = "chronic-care"

    def obs(subject: str, consent: str, day: int, data_type: str = OBS) -> int:
        return b.append_record(
            {"resourceType": "Observation", "id": f"o-{day}"},
            type=data_type,
            subject=subject,
            consent=consent,
            observed_at=f"2026-05-{day:02d}T09:00:00Z",
        )

    anna = [obs(ANNA, "c-1", 3), obs(ANNA, "c-1", 1), obs(ANNA, "c-2", 2)]
    anna_report = obs(ANNA, "c-1", 4, "fhir.DiagnosticReport")
    bert = obs(BERT, "c-1", 1)
    (consent,) = b.writer.append([NewEntry("consent", b'{"kind":"consent","n":1}')])
    access = [
        e.index
        for e in b.writer.append(
            [NewEntry("access", b'{"kind":"access","n":%d}' % i) for i in range(3)]
        )
    ]
    b.checkpoint()
    b.erase(anna[1])  # the erasure entry, then a checkpoint
    erased = b.writer.size() - 1
    b.close()
    yield Log(path, registry, city, anna, anna_report, bert, consent.index, access, erased)


@pytest.fixture
def reader(log: Log) -> Iterator[LedgerReader]:
    with LedgerReader(log.path) as r:
        yield r


def test_leaves_of_a_kind_in_log_order(log: Log, reader: LedgerReader) -> None:
    assert [i for i, _ in reader.leaves("registry")] == [log.registry]
    assert [i for i, _ in reader.leaves("access")] == log.access
    assert [json.loads(leaf)["n"] for _, leaf in reader.leaves("access")] == [0, 1, 2]
    assert [i for i, _ in reader.leaves("consent")] == [log.consent]
    assert [i for i, _ in reader.leaves("erasure")] == [log.erased]
    records = list(reader.leaves("record"))
    assert [i for i, _ in records] == sorted([*log.city, *log.anna, log.anna_report, log.bert])
    # The exact leaf bytes, as the entry holds them.
    assert all(leaf == reader.entry(i).leaf for i, leaf in records)


def test_leaves_are_streamed_not_listed(reader: LedgerReader) -> None:
    leaves = reader.leaves("access")
    assert next(leaves)[1] == b'{"kind":"access","n":0}'


@pytest.mark.parametrize("kind", ["records", "Record", "", "entries"])
def test_leaves_of_an_unknown_kind_are_refused(reader: LedgerReader, kind: str) -> None:
    with pytest.raises(StoreError, match="unknown entry kind"):
        reader.leaves(kind)


def _subject(reader: LedgerReader, subject: str = ANNA, **kw: object) -> list[HeldRecord]:
    args: dict[str, object] = {
        "pilot": "chronic-care",
        "subject": subject,
        "data_type": OBS,
        "since": None,
        "until": None,
        "limit": 100,
    }
    return reader.subject_records(**{**args, **kw})  # type: ignore[arg-type]


def test_subject_records_are_the_persons_held_records_in_time_order(
    log: Log, reader: LedgerReader
) -> None:
    rows = _subject(reader)
    # anna[1] was erased; anna[2] (day 2) comes before anna[0] (day 3).
    assert [r.index for r in rows] == [log.anna[2], log.anna[0]]
    first = rows[0]
    assert (first.consent, first.observed_at, first.source) == (
        "c-2",
        "2026-05-02T09:00:00Z",
        "station-1",
    )
    assert first.id == json.loads(reader.entry(first.index).leaf)["id"]
    assert first.payload == canonical_json({"resourceType": "Observation", "id": "o-2"})
    assert [r.index for r in _subject(reader, BERT)] == [log.bert]
    assert _subject(reader, data_type="fhir.DiagnosticReport")[0].index == log.anna_report
    assert _subject(reader, pilot="city-air") == []
    assert _subject(reader, "patient-nobody-0000") == []


def test_subject_records_bounds_and_limit(log: Log, reader: LedgerReader) -> None:
    # since inclusive, until exclusive (the API strips the Z; stored times sort after it).
    assert [r.index for r in _subject(reader, since="2026-05-03")] == [log.anna[0]]
    assert [r.index for r in _subject(reader, until="2026-05-03")] == [log.anna[2]]
    assert _subject(reader, since="2026-05-02T09:00:00Z", until="2026-05-02T09:00:00Z") == []
    assert [r.index for r in _subject(reader, limit=1)] == [log.anna[2]]
    assert _subject(reader, limit=0) == []


def test_subject_matches_are_the_subject_records_as_index_and_consent(
    log: Log, reader: LedgerReader
) -> None:
    for kw in ({}, {"since": "2026-05-03"}, {"until": "2026-05-03"}, {"limit": 1}, {"limit": 0}):
        args: dict[str, object] = {
            "pilot": "chronic-care",
            "subject": ANNA,
            "data_type": OBS,
            "since": None,
            "until": None,
            "limit": 100,
            **kw,
        }
        matches = reader.subject_matches(**args)  # type: ignore[arg-type]
        assert matches == [(r.index, r.consent) for r in _subject(reader, **kw)]
    assert (
        reader.subject_matches(
            pilot="city-air", subject=ANNA, data_type=OBS, since=None, until=None, limit=9
        )
        == []
    )


def test_a_search_counts_from_the_subject_index_alone(reader: LedgerReader) -> None:
    sql = _SUBJECT_MATCHES.format(where="")
    if reader.dialect.name == "sqlite":
        plan = str(reader.conn.execute("EXPLAIN QUERY PLAN " + sql, ["s", OBS, "p", 5]).fetchall())
        assert "COVERING INDEX records_by_subject" in plan, plan
        return
    # PostgreSQL has no planner hints; told not to read the (small) table whole, it takes
    # the subject index for the search, reading nothing else.
    reader.conn.execute("SET enable_seqscan = off")
    try:
        plan = str(reader.conn.execute("EXPLAIN " + sql, ["s", OBS, "p", 5]).fetchall())
    finally:
        reader.conn.execute("RESET enable_seqscan")
    assert "Index Only Scan using records_by_subject" in plan, plan


def test_held_payloads_are_the_held_records_bodies_in_the_order_asked(
    log: Log, reader: LedgerReader
) -> None:
    asked = [log.anna[2], log.anna[1], log.anna[0], log.consent]
    held = reader.held_records(asked)
    assert reader.held_payloads(asked) == [(r.index, r.payload) for r in held]
    assert reader.held_payloads([]) == []


def test_held_records_come_in_the_order_asked_and_only_while_held(
    log: Log, reader: LedgerReader
) -> None:
    by_index = {r.index: r for r in _subject(reader)}
    asked = [log.anna[0], log.anna[1], log.anna[2]]  # anna[1] was erased
    assert reader.held_records(asked) == [by_index[log.anna[0]], by_index[log.anna[2]]]
    assert [r.index for r in reader.held_records(asked[::-1])] == [log.anna[2], log.anna[0]]
    assert reader.held_records([]) == []
    assert reader.held_records([log.consent]) == []  # not a record


def _city(reader: LedgerReader, **kw: object) -> list[HeldRecord]:
    args: dict[str, object] = {
        "pilot": "city-air",
        "data_type": CITY,
        "since": None,
        "until": None,
        "after": -1,
        "limit": 100,
    }
    return reader.type_records(**{**args, **kw})  # type: ignore[arg-type]


def test_type_records_page_in_log_order_from_the_cursor(log: Log, reader: LedgerReader) -> None:
    assert [r.index for r in _city(reader)] == log.city
    assert [json.loads(r.payload)["pm25"] for r in _city(reader)] == [30, 10, 20]
    first = _city(reader, limit=2)
    assert [r.index for r in first] == log.city[:2]
    assert [r.index for r in _city(reader, after=first[-1].index)] == log.city[2:]
    assert [r.index for r in _city(reader, since="2026-05-01T08:15:00")] == [
        log.city[0],
        log.city[2],
    ]
    assert [r.index for r in _city(reader, until="2026-05-01T08:15:00")] == [log.city[1]]
    assert _city(reader, pilot="chronic-care") == []
    assert _city(reader, data_type=OBS) == []  # another pilot's type


def test_bodies_of_a_consent_are_the_subjects_held_ones(log: Log, reader: LedgerReader) -> None:
    held = reader.bodies_of_consent("chronic-care", ANNA, "c-1")
    # anna[1] is erased already; Bert's c-1 record is not Anna's.
    assert held == [
        HeldBody(
            log.anna[0], json.loads(reader.entry(log.anna[0]).leaf)["id"], "2026-05-03T09:00:00Z"
        ),
        HeldBody(
            log.anna_report,
            json.loads(reader.entry(log.anna_report).leaf)["id"],
            "2026-05-04T09:00:00Z",
        ),
    ]
    assert [b.index for b in reader.bodies_of_consent("chronic-care", ANNA, "c-2")] == [log.anna[2]]
    assert reader.bodies_of_consent("city-air", ANNA, "c-1") == []


def test_oldest_bodies_come_oldest_first(log: Log, reader: LedgerReader) -> None:
    oldest = reader.oldest_bodies("city-air", CITY, 2)
    assert [(b.index, b.observed_at) for b in oldest] == [
        (log.city[1], _air(10)),
        (log.city[2], _air(20)),
    ]
    assert [b.index for b in reader.oldest_bodies("chronic-care", OBS, 10)] == [
        log.bert,  # day 1; Anna's day-1 body is erased
        log.anna[2],
        log.anna[0],
    ]
    assert reader.oldest_bodies("city-air", CITY, 0) == []


def test_tail_reads_bodies_only_of_the_non_personal_types_asked(
    log: Log, reader: LedgerReader
) -> None:
    size = reader.size()
    tail = reader.tail(0, size, bodies_of=[CITY])
    assert [e.index for e in tail] == list(range(size))
    assert [e.kind for e in tail][:2] == ["registry", "record"]
    assert all(e.leaf == reader.entry(e.index).leaf for e in tail)
    assert all(e.leaf_hash == reader.entry(e.index).leaf_hash for e in tail)
    by_index = {e.index: e for e in tail}
    city = by_index[log.city[0]]
    assert (city.pilot, city.source, city.type, city.observed_at) == (
        "city-air",
        "station-1",
        CITY,
        _air(30),
    )
    assert city.payload is not None and json.loads(city.payload) == {"pm25": 30}
    # A personal record's columns are there; its body never is, whatever is asked for.
    anna = by_index[log.anna[0]]
    assert (anna.type, anna.payload) == (OBS, None)
    assert reader.tail(0, size, bodies_of=[OBS])[log.anna[0]].payload is None
    # Entries that are not records have no record columns.
    assert (by_index[log.consent].pilot, by_index[log.consent].payload) == (None, None)
    assert all(e.payload is None for e in reader.tail(0, size, bodies_of=()))
    assert [e.index for e in reader.tail(2, 4, bodies_of=[CITY])] == [2, 3]
    assert reader.tail(3, 3, bodies_of=[CITY]) == []
    assert reader.tail(size, size + 10, bodies_of=[CITY]) == []


def test_checkpoint_within_is_the_largest_in_the_range(log: Log, reader: LedgerReader) -> None:
    sizes = [c.size for c in reader.checkpoints()]
    assert len(sizes) >= 3
    low, mid, high = sizes[0], sizes[-2], sizes[-1]
    found = reader.checkpoint_within(0, high)
    assert found is not None and found.size == high and found == reader.latest_checkpoint()
    within = reader.checkpoint_within(0, high - 1)
    assert within is not None and within.size == mid
    # The lower bound is exclusive, the upper inclusive.
    assert reader.checkpoint_within(high, high + 100) is None
    assert reader.checkpoint_within(mid, high) == found
    assert reader.checkpoint_within(0, low - 1) is None
