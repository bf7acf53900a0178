"""The store with a key store (schema "3"): bodies, openings and origins sealed under their
scope's data key and opened by every read; an erasure destroys the keys nothing is sealed
under any more, a withdrawal a scope's whatever they hold, retention's backstop the empty
keys of days past; the keys an erasure committed are destroyed at the next opening if a
crash or the key store kept them; a schema "2" ledger is brought to "3"; verify with and
without the key store; on both stores."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger import location
from ledger.copy import copy_ledger
from ledger.datakeys import Scope, write_master_key
from ledger.entries import AccessEntry, ConsentEntry
from ledger.envelope import Origin, seal
from ledger.errors import KeyDestroyed, StorageError, StoreError
from ledger.keys import generate_key
from ledger.keystore import KeyStore
from ledger.store import LedgerReader, LedgerWriter, NewEntry
from ledger.verify import verify_ledger
from tests.support.ledger_builder import LedgerBuilder, record_entry, stored_bytes, tampering

SUBJECT = "pt-5e1f2a3b4c5d"
CONSENT = "c-erase-me"
PILOT = "chronic-care"
OBS = "fhir.Observation"
DAY = "2026-05-04"


def key_store_beside(store_url: str, tmp_path: Path) -> KeyStore:
    """The key store where the hub keeps it by default: ``<ledger>.keys``, or schema
    ``keys`` of the ledger's database (wrapped under a master key, as PostgreSQL needs)."""
    where = location.beside(store_url, suffix=".keys", schema="keys", ledger_schema="ledger")
    master = tmp_path / "master.key"
    if not master.exists():
        write_master_key(master)
    return KeyStore.open(where, master_key=master if isinstance(where, str) else None)


@pytest.fixture
def keys(store_url: str, tmp_path: Path) -> Iterator[KeyStore]:
    with key_store_beside(store_url, tmp_path) as ks:
        yield ks


def builder_of(store_url: str, keys: KeyStore | None) -> LedgerBuilder:
    builder = LedgerBuilder(store_url, pilot=PILOT, source="php-ward-1", keys=keys)
    builder.register_source()
    return builder


def reading(
    builder: LedgerBuilder,
    value: int,
    *,
    subject: str = SUBJECT,
    consent: str = CONSENT,
    day: str = DAY,
    resource_id: str | None = None,
) -> int:
    payload: dict[str, object] = {
        "resourceType": "Observation",
        "subject": {"reference": f"Patient/{subject}"},
        "valueQuantity": {"value": value},
    }
    if resource_id is not None:
        payload["id"] = resource_id
    return builder.append_record(
        payload, type=OBS, subject=subject, consent=consent, observed_at=f"{day}T08:30:00Z"
    )


def consent_entry(subject: str = SUBJECT, consent: str = CONSENT) -> NewEntry:
    leaf, opening = ConsentEntry(
        action="grant",
        at=f"{DAY}T08:00:00Z",
        actor="php-admin",
        pilot=PILOT,
        consent=consent,
        subject=subject,
        status="active",
        resource_hash="0" * 64,
    ).sealed()
    return NewEntry("consent", leaf, opening=opening)


def access_entry(subject: str | None = SUBJECT, reason: str = "consent_permits") -> NewEntry:
    leaf, opening = AccessEntry(
        at=f"{DAY}T09:00:00Z",
        client="php-ehr",
        org="harbour-peoples-hospital",
        pilot=PILOT,
        purpose="TREAT",
        type=OBS,
        subject=subject,
        decision="allow",
        reason=reason,
    ).sealed()
    return NewEntry("access", leaf, opening=opening)


def key_ids(store_url: str, table: str) -> dict[int, int | None]:
    with tampering(store_url) as conn:
        rows = conn.execute(f"SELECT idx, key_id FROM {table}").fetchall()
    return {int(i): (None if k is None else int(k)) for i, k in rows}


def doomed(store_url: str) -> list[int]:
    with tampering(store_url) as conn:
        return [int(k) for (k,) in conn.execute("SELECT key_id FROM doomed_keys").fetchall()]


def test_every_read_opens_what_the_writer_sealed(
    store_url: str, keys: KeyStore, tmp_path: Path
) -> None:
    builder = builder_of(store_url, keys)
    first = reading(builder, 4201, resource_id="bp-1")
    second = reading(builder, 4202, resource_id="bp-1")
    city = builder.append_record({"station": "s1", "pm25": 12}, type="city.air-quality")
    device_key = generate_key()
    device = seal(
        pilot=PILOT,
        source="hd-0a1b2c3d4e",
        seq=1,
        type=OBS,
        payload={"valueQuantity": {"value": 4343}},
        signing_key=device_key,
        subject=SUBJECT,
        consent=CONSENT,
        observed_at=f"{DAY}T10:00:00Z",
        salt=bytes(16),
        person_salt=bytes(range(16)),
    )
    builder.seq += 1
    relayed = seal(
        pilot=PILOT,
        source="php-ward-1",
        seq=builder.seq,
        type=OBS,
        payload=device.body.payload,
        signing_key=builder.source_key,
        subject=SUBJECT,
        consent=CONSENT,
        observed_at=f"{DAY}T10:00:00Z",
        record_id=device.header.id,
        salt=bytes(16),
        person_salt=bytes(range(16)),
        origin=Origin(header=device.header, sig=device.sig),
    )
    (stored,) = builder.writer.append([record_entry(relayed)])
    granted, accessed, anonymous = builder.writer.append(
        [consent_entry(), access_entry(), access_entry(None, "open_data")]
    )
    builder.checkpoint()

    # Sealed in the tables: key ids on every row but the opening of an access about nobody,
    # a record's body, opening and origin under one key, no payload or origin in the open
    # (the subject and Consent are in the records index, the hub's own, until an erasure).
    bodies, openings, origins = (key_ids(store_url, t) for t in ("bodies", "openings", "origins"))
    assert all(k is not None for k in bodies.values()) and len(bodies) == 4
    assert bodies[first] == bodies[second] == openings[first] == bodies[stored.index]
    assert origins[stored.index] == bodies[stored.index]
    assert bodies[city] not in (None, bodies[first])
    assert openings[granted.index] not in (None, bodies[first], openings[accessed.index])
    assert openings[accessed.index] is not None and openings[anonymous.index] is None
    left = stored_bytes(store_url)
    for needle in ('"value":4201', '"pm25":12', "hd-0a1b2c3d4e", "bp-1", "consent_permits"):
        assert needle.encode() not in left, needle

    w = builder.writer
    body = w.body(first)
    assert body is not None and body["payload"]["valueQuantity"] == {"value": 4201}
    assert len(body["salt"]) == 22
    opening = w.opening(first)
    assert opening is not None and opening.fields["subject"] == SUBJECT
    origin = w.origin(stored.index)
    assert origin is not None and b"hd-0a1b2c3d4e" in origin
    held = w.subject_records(
        pilot=PILOT, subject=SUBJECT, data_type=OBS, since=None, until=None, limit=9
    )
    assert [r.index for r in held] == [first, second, stored.index]
    assert json.loads(held[0].payload)["valueQuantity"] == {"value": 4201}
    assert [i for i, _ in w.held_payloads([second, city, 999])] == [second, city]
    assert [r.index for r in w.held_records([city, first])] == [city, first]
    page = w.type_records(
        pilot=PILOT, data_type="city.air-quality", since=None, until=None, after=-1, limit=5
    )
    assert [json.loads(r.payload) for r in page] == [{"station": "s1", "pm25": 12}]
    found = w.resource(pilot=PILOT, data_type=OBS, resource_id="bp-1")
    assert found is not None and found.index == second and found.subject == SUBJECT
    by_record = w.resource(pilot=PILOT, data_type=OBS, resource_id=relayed.header.id)
    assert by_record is not None and by_record.index == stored.index
    assert w.resource(pilot=PILOT, data_type=OBS, resource_id="bp-2") is None
    consents = dict(w.opened_leaves("consent"))
    assert consents[granted.index]["subject"] == SUBJECT
    tail = {t.index: t for t in w.tail(0, w.size(), bodies_of=["city.air-quality"])}
    assert tail[city].payload == b'{"pm25":12,"station":"s1"}'
    assert tail[first].payload is None
    access_opening = tail[accessed.index].opening
    assert access_opening is not None and SUBJECT.encode() in access_opening
    builder.close()

    report = verify_ledger(store_url, keys=keys)
    assert report.ok and report.bodies == 4 and report.unopened == 0, report.problems
    assert report.key_store == keys.where
    # Without the key store: the log verifies, and what could not be opened is counted.
    blind = verify_ledger(store_url)
    assert blind.ok and blind.bodies == 0 and blind.unopened == 4, blind.problems
    assert blind.unopened_openings == 5 and blind.signatures == report.signatures
    with LedgerReader(store_url) as reader:
        with pytest.raises(StoreError, match="key_store"):
            reader.body(first)
        with pytest.raises(StoreError, match="key_store"):
            reader.subject_records(
                pilot=PILOT, subject=SUBJECT, data_type=OBS, since=None, until=None, limit=9
            )
        assert reader.opening(anonymous.index) is not None  # in the open
        assert reader.size() == w.size()
    with LedgerReader(store_url, keys=keys) as reader:
        opened = reader.body(city)
        assert opened is not None and opened["payload"] == {"pm25": 12, "station": "s1"}


def test_an_erasure_destroys_a_key_once_nothing_is_sealed_under_it(
    store_url: str, keys: KeyStore
) -> None:
    builder = builder_of(store_url, keys)
    first = reading(builder, 1)
    second = reading(builder, 2)
    other_day = reading(builder, 3, day="2026-05-05")
    day_key = key_ids(store_url, "bodies")[first]
    assert day_key is not None
    builder.erase(first)
    # The second reading of the day is still sealed under the day's key: it stays.
    assert keys.keys([day_key]) != {} and doomed(store_url) == []
    assert builder.writer.body(second) is not None
    builder.erase(second)
    assert keys.keys([day_key]) == {} and doomed(store_url) == []
    assert builder.writer.body(other_day) is not None
    # A record of the day arriving later is sealed under a new key of its scope.
    late = reading(builder, 4)
    assert key_ids(store_url, "bodies")[late] not in (None, day_key)
    builder.close()
    report = verify_ledger(store_url, keys=keys)
    assert report.ok and report.erased == 2 and report.bodies == 2, report.problems


def test_a_withdrawal_destroys_the_scopes_keys_and_the_persons_access_key(
    store_url: str, keys: KeyStore
) -> None:
    builder = builder_of(store_url, keys)
    mine = [reading(builder, v, day=f"2026-05-0{v}") for v in (1, 2, 3)]
    other_consent = reading(builder, 4, consent="c-keep")
    someone_else = reading(builder, 5, subject="pt-000000000002")
    granted, accessed = builder.writer.append([consent_entry(), access_entry()])
    openings = key_ids(store_url, "openings")
    bodies = key_ids(store_url, "bodies")
    gone = {bodies[i] for i in mine} | {openings[granted.index], openings[accessed.index]}
    kept = {bodies[other_consent], bodies[someone_else]}
    assert len(gone) == 5 and None not in gone | kept
    # A key of the scope left without data (a crash after the key store's commit) goes too.
    orphan = keys.key_for(
        Scope.of_record(
            pilot=PILOT,
            subject=SUBJECT,
            consent=CONSENT,
            data_type="fhir.Condition",
            observed_at="2026-04-01T00:00:00Z",
        ),
        create=True,
    )
    assert orphan is not None
    builder.writer.append(
        [],
        erase=mine,
        forget=[granted.index, accessed.index],
        erase_scopes=[(PILOT, SUBJECT, CONSENT)],
    )
    assert keys.keys([*gone, orphan.id]) == {}
    assert set(keys.keys(kept)) == kept and doomed(store_url) == []
    assert builder.writer.body(other_consent) is not None
    assert builder.writer.body(someone_else) is not None
    builder.close()


def test_the_keys_an_erasure_committed_are_destroyed_at_the_next_opening(
    store_url: str, keys: KeyStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    builder = builder_of(store_url, keys)
    first = reading(builder, 1)
    key_id = key_ids(store_url, "bodies")[first]
    assert key_id is not None

    def down(ids: object) -> list[int]:
        raise StorageError("the key store does not answer")

    monkeypatch.setattr(keys, "destroy", down)
    builder.erase(first)  # committed; the destroy failed
    assert doomed(store_url) == [key_id] and builder.writer.body(first) is None
    # Nothing is sealed under a key that is to go: a record of its scope waits.
    size = builder.writer.size()
    with pytest.raises(StorageError, match="not destroyed"):
        reading(builder, 2)
    assert builder.writer.size() == size
    builder.close()
    monkeypatch.undo()
    assert keys.keys([key_id]) != {}
    writer = LedgerWriter(store_url, keys=keys)  # a restart
    assert keys.keys([key_id]) == {} and doomed(store_url) == []
    writer.close()


def test_a_writer_without_the_key_store_leaves_the_destroy_to_one_with_it(
    store_url: str, keys: KeyStore
) -> None:
    builder = builder_of(store_url, keys)
    first = reading(builder, 1)
    key_id = key_ids(store_url, "bodies")[first]
    builder.close()
    keyless = LedgerBuilder(store_url, pilot=PILOT, source="php-ward-1", seq=10)
    keyless.erase(first)
    plain = keyless.append_record({"station": "s2"}, type="city.air-quality")
    keyless.close()
    assert doomed(store_url) == [key_id] and key_ids(store_url, "bodies")[plain] is None
    LedgerWriter(store_url, keys=keys).close()
    assert doomed(store_url) == [] and keys.keys([key_id] if key_id else []) == {}


def test_retention_backstop_destroys_the_empty_keys_of_days_past(
    store_url: str, keys: KeyStore
) -> None:
    builder = builder_of(store_url, keys)
    old = reading(builder, 1, day="2026-05-01")
    held = reading(builder, 2, day="2026-05-02")
    empty = keys.key_for(
        Scope.of_record(
            pilot=PILOT,
            subject="pt-x",
            consent="c",
            data_type=OBS,
            observed_at="2026-04-30T00:00:00Z",
        ),
        create=True,
    )
    assert empty is not None
    ids = key_ids(store_url, "bodies")
    builder.erase(old)
    assert keys.keys([ids[old]]) == {}
    # Every key of the type before 2026-05-03: only those holding nothing go.
    builder.writer.append([], retire=[(PILOT, OBS, "2026-05-03")])
    assert keys.keys([empty.id]) == {} and set(keys.keys([ids[held]])) == {ids[held]}
    assert builder.writer.body(held) is not None
    builder.close()


def test_a_value_under_a_destroyed_key_reads_as_erased(store_url: str, keys: KeyStore) -> None:
    builder = builder_of(store_url, keys)
    first = reading(builder, 1)
    granted = builder.writer.append([consent_entry()])[0]
    builder.checkpoint()
    builder.close()
    with tampering(store_url) as conn:
        kept = conn.execute("SELECT payload FROM bodies WHERE idx = ?", (first,)).fetchone()[0]
    key_id = key_ids(store_url, "bodies")[first]
    assert key_id is not None
    keys.destroy([key_id, *(k for k in [key_ids(store_url, "openings")[granted.index]] if k)])
    with LedgerReader(store_url, keys=keys) as reader:
        assert reader.body(first) is None and reader.opening(first) is None
        assert reader.held_payloads([first]) == []
        assert "subject" not in dict(reader.opened_leaves("consent"))[granted.index]
    # A row whose key is gone is a body erased: without an erasure entry, a fault.
    report = verify_ledger(store_url, keys=keys)
    assert report.erased == 1 and report.first_bad_index == first
    # What is left of it opens under nothing that is stored.
    with pytest.raises(KeyDestroyed):
        from ledger.datakeys import open_with

        open_with(keys.keys([key_id]), key_id, "bodies", first, bytes(kept))


def test_a_value_moved_to_another_row_does_not_open(store_url: str, keys: KeyStore) -> None:
    builder = builder_of(store_url, keys)
    first = reading(builder, 1)
    second = reading(builder, 2)
    builder.checkpoint()
    builder.close()
    with tampering(store_url) as conn:
        moved = conn.execute("SELECT payload FROM bodies WHERE idx = ?", (second,)).fetchone()[0]
        conn.execute("UPDATE bodies SET payload = ? WHERE idx = ?", (moved, first))
    with LedgerReader(store_url, keys=keys) as reader, pytest.raises(StoreError, match="moved"):
        reader.body(first)
    report = verify_ledger(store_url, keys=keys)
    assert not report.ok and report.first_bad_index == first


def downgrade_to_2(store_url: str) -> None:
    """Make a ledger what schema "2" was: no key ids, no digests, no doomed_keys."""
    with tampering(store_url) as conn:
        sqlite = isinstance(location.sqlite_path(store_url), Path)
        for index in ("bodies_by_key", "bodies_by_resource", "openings_by_key", "origins_by_key"):
            conn.execute(f"DROP INDEX IF EXISTS {index}")
        if sqlite:
            from ledger.schema import RESOURCE_ID

            conn.execute("DROP INDEX bodies_by_resource_id")
        for table, column in (
            ("bodies", "key_id"),
            ("bodies", "resource"),
            ("openings", "key_id"),
            ("origins", "key_id"),
        ):
            conn.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        if sqlite:
            conn.execute(f"CREATE INDEX bodies_by_resource_id ON bodies ({RESOURCE_ID})")
        conn.execute("DROP TABLE doomed_keys")
        conn.execute("UPDATE meta SET value = '2' WHERE key = 'schema'")


def test_a_schema_2_ledger_is_read_and_brought_to_3(
    store_url: str, keys: KeyStore, tmp_path: Path
) -> None:
    builder = builder_of(store_url, None)
    legacy = reading(builder, 1, resource_id="bp-1")
    builder.checkpoint()
    builder.close()
    downgrade_to_2(store_url)
    with LedgerReader(store_url) as reader:
        assert not reader.keyed and reader.body(legacy) is not None
        found = reader.resource(pilot=PILOT, data_type=OBS, resource_id="bp-1")
        assert found is not None and found.index == legacy
    assert verify_ledger(store_url).ok
    copied = tmp_path / "copy-of-2.db"
    assert copy_ledger(store_url, copied).ok
    first = builder
    builder = LedgerBuilder(
        store_url,
        pilot=PILOT,
        source="php-ward-1",
        keys=keys,
        seq=1,
        hub_key=first.hub_key,
        source_key=first.source_key,
    )
    assert builder.writer.meta("schema") == "3"
    sealed = reading(builder, 2, resource_id="bp-1")
    assert key_ids(store_url, "bodies") == {
        legacy: None,
        sealed: key_ids(store_url, "bodies")[sealed],
    }
    found = builder.writer.resource(pilot=PILOT, data_type=OBS, resource_id="bp-1")
    assert found is not None and found.index == sealed
    builder.erase(sealed)
    found = builder.writer.resource(pilot=PILOT, data_type=OBS, resource_id="bp-1")
    assert found is not None and found.index == legacy
    builder.erase(legacy)  # in the open: erased by deletion, as before
    assert builder.writer.body(legacy) is None and doomed(store_url) == []
    builder.close()
    report = verify_ledger(store_url, keys=keys)
    assert report.ok and report.erased == 2, report.problems


def test_a_copy_carries_the_ciphertext_and_opens_with_the_same_key_store(
    store_url: str, keys: KeyStore, tmp_path: Path
) -> None:
    builder = builder_of(store_url, keys)
    first = reading(builder, 1)
    erased = reading(builder, 2, day="2026-05-09")
    builder.erase(erased)
    builder.checkpoint()
    builder.close()
    with tampering(store_url) as conn:
        conn.execute("INSERT INTO doomed_keys (key_id) VALUES (12345)")
    destination = tmp_path / "copy.db"
    report = copy_ledger(store_url, destination)
    assert report.ok and report.rows["doomed_keys"] == 1
    columns = "idx, payload, salt, key_id, resource"
    with tampering(store_url) as src, tampering(destination) as dst:
        for table, cols in (("bodies", columns), ("openings", "idx, opening, key_id")):
            one = [
                tuple(bytes(v) if isinstance(v, memoryview) else v for v in r)
                for r in src.execute(f"SELECT {cols} FROM {table} ORDER BY idx").fetchall()
            ]
            assert one == dst.execute(f"SELECT {cols} FROM {table} ORDER BY idx").fetchall()
    with LedgerReader(destination, keys=keys) as reader:
        body = reader.body(first)
        assert body is not None and body["payload"]["valueQuantity"] == {"value": 1}
    with LedgerReader(destination) as reader, pytest.raises(StoreError, match="key_store"):
        reader.body(first)
    assert verify_ledger(destination, keys=keys).ok
