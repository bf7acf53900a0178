"""`swiftchain ledger verify` on a PostgreSQL ledger (with its key store or without), and
`swiftchain ledger copy` between any two locations (SQLite -> PostgreSQL -> SQLite,
PostgreSQL -> PostgreSQL, SQLite -> SQLite), through the real CLI: every byte kept (the
sealed values as ciphertext), verify green on both sides, the same root at every checkpoint;
a destination that is not empty, or is the source, refused."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ledger import dialect
from ledger.datakeys import write_master_key
from ledger.entries import AccessEntry
from ledger.envelope import Origin, seal
from ledger.errors import StorageError
from ledger.keys import generate_key
from ledger.keystore import KeyStore
from ledger.schema import TABLES
from ledger.sealed import blind, subject_tag
from ledger.store import Blinded, LedgerReader, NewEntry
from swiftchain.cli import cli
from tests.support.ledger_builder import LedgerBuilder, record_entry, tampering

PILOT, SUBJECT, CONSENT = "chronic-care", "pt-5e1f2a3b4c5d", "c-1"


def run(*args: str) -> Any:
    return CliRunner().invoke(cli, ["ledger", *args])


def build(location: Path | str, keys: KeyStore | None = None) -> None:
    """A ledger with a row in every table: city and personal records, a relayed record with
    its device origin, access entries with openings (one forgotten, one blinded), an
    erasure, checkpoints, a cosigned checkpoint in meta; with ``keys``, sealed under them,
    and a key noted for destruction (as a crash before the key store's destroy leaves it)."""
    b = LedgerBuilder(location, pilot=PILOT, source="php-ward-1", keys=keys)
    b.register_source()
    b.append_records(25, batch=10)
    personal = [
        b.append_record(
            {"resourceType": "Observation", "id": f"o-{n}", "valueQuantity": {"value": n}},
            type="fhir.Observation",
            subject=SUBJECT,
            consent=CONSENT,
        )
        for n in range(3)
    ]
    device = seal(
        pilot=PILOT,
        source="hd-0a1b2c3d4e",
        seq=1,
        type="fhir.Observation",
        payload={"valueQuantity": {"value": 4242}},
        signing_key=generate_key(),
        subject=SUBJECT,
        consent=CONSENT,
        observed_at="2026-05-04T08:30:00Z",
        salt=bytes(16),
        person_salt=bytes(range(16)),
    )
    b.seq += 1
    relayed = seal(
        pilot=PILOT,
        source="php-ward-1",
        seq=b.seq,
        type="fhir.Observation",
        payload=device.body.payload,
        signing_key=b.source_key,
        subject=SUBJECT,
        consent=CONSENT,
        observed_at="2026-05-04T08:30:00Z",
        record_id=device.header.id,
        salt=bytes(16),
        person_salt=bytes(range(16)),
        origin=Origin(header=device.header, sig=device.sig),
    )
    b.writer.append([record_entry(relayed)])
    access = AccessEntry(
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
    sealed = [access.sealed() for _ in range(3)]
    first, second, _ = b.writer.append([NewEntry("access", leaf, opening=o) for leaf, o in sealed])
    box = blind(sealed[1][1], pilot=PILOT, subject=SUBJECT, index=second.index)
    tag = subject_tag(PILOT, SUBJECT)
    b.writer.append([], forget=[first.index], blind=[Blinded(second.index, tag, box)])
    b.erase(personal[1])
    note = b.checkpoint()
    b.writer.store_cosigned(b.writer.size(), b.writer.current_root(), note, quorum=True)
    b.close()
    if keys is not None:
        with tampering(location) as conn:
            conn.execute("INSERT INTO doomed_keys (key_id) VALUES (42)")


def rows(location: Path | str) -> dict[str, list[tuple[Any, ...]]]:
    """Every stored value of every table, in key order."""
    with tampering(location) as conn:
        return {
            table: [
                tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)
                for row in conn.execute(
                    f"SELECT {', '.join(columns)} FROM {table} ORDER BY {columns[0]}"
                ).fetchall()
            ]
            for table, columns in TABLES.items()
        }


def assert_same_log(first: Path | str, second: Path | str) -> None:
    with LedgerReader(first) as a, LedgerReader(second) as b:
        sizes = [c.size for c in a.checkpoints()]
        assert len(sizes) >= 3 and sizes == [c.size for c in b.checkpoints()]
        for size in sizes:
            assert a.root(size) == b.root(size)


def verified(location: Path | str, *key_store: str) -> dict[str, Any]:
    result = run("verify", str(location), "--quiet", "--json", *key_store)
    assert result.exit_code == 0, result.output
    report: dict[str, Any] = json.loads(result.stdout)
    assert report["ok"] and report["erased"] == 1, report
    if key_store or not report["unopened"]:
        assert report["openings"] >= 3 and report["unopened"] == 0, report
    else:
        # Without the key store: the log verifies, and what is sealed is counted.
        assert report["unopened"] == 28 and report["unopened_openings"] >= 3, report
    return report


@pytest.fixture
def keys(tmp_path: Path) -> Iterator[KeyStore]:
    with KeyStore.open(tmp_path / "source.db.keys") as ks:
        yield ks


@pytest.fixture
def source(tmp_path: Path, keys: KeyStore) -> Path:
    path = tmp_path / "source.db"
    build(path, keys)
    return path


def test_verify_reads_a_postgresql_ledger(pg_url: str) -> None:
    build(pg_url)
    report = verified(pg_url)
    assert report["path"] == pg_url and report["records"] == 29
    text = run("verify", pg_url, "--quiet")
    assert text.exit_code == 0 and "OK: every hash" in text.stdout, text.output
    with tampering(pg_url) as conn:
        (leaf,) = conn.execute("SELECT leaf FROM entries WHERE idx = 7").fetchone()
        conn.execute("UPDATE entries SET leaf = ? WHERE idx = 7", (leaf.replace(b"1", b"2", 1),))
    tampered = run("verify", pg_url, "--quiet")
    assert tampered.exit_code == 1 and "first bad index 7\n" in tampered.stderr, tampered.output


def test_verify_opens_a_sealed_postgresql_ledger_with_its_key_store(
    pg_url: str, tmp_path: Path
) -> None:
    master = tmp_path / "keys.master"
    write_master_key(master)
    key_url = f"{pg_url}?schema=keys"
    with KeyStore.open(key_url, master_key=master) as ks:
        build(pg_url, ks)
    checked = verified(pg_url, "--key-store", key_url, "--key-store-master-key", str(master))
    assert checked["key_store"] == key_url and checked["bodies"] == 28
    blind = verified(pg_url)
    assert blind["bodies"] == 0 and blind["key_store"] is None
    text = run("verify", pg_url, "--quiet")
    assert text.exit_code == 0 and "could not be opened" in text.stdout, text.output
    refused = run("verify", pg_url, "--key-store", key_url)
    assert refused.exit_code == 2 and "key_store_master_key" in refused.stderr, refused.output
    missing = run("verify", pg_url, "--key-store", str(tmp_path / "nowhere.keys"))
    assert missing.exit_code == 2 and "no key store at" in missing.stderr, missing.output
    assert not (tmp_path / "nowhere.keys").exists()


def test_verify_of_a_database_without_a_ledger_cannot_check(pg_url: str) -> None:
    for where in (pg_url, f"{pg_url}?schema=elsewhere"):
        result = run("verify", where, "--quiet")
        assert result.exit_code == 2 and "no ledger at" in result.stderr, result.output
        assert "Traceback" not in result.output


def test_copy_sqlite_to_postgresql_and_back_keeps_every_byte(
    source: Path, pg_url: str, tmp_path: Path, keys: KeyStore
) -> None:
    result = run("copy", str(source), pg_url)
    assert result.exit_code == 0, result.output
    assert "OK: both roots at size" in result.stdout
    back = tmp_path / "back.db"
    result = run("copy", pg_url, str(back), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] and report["rows"]["blinded"] == 1 and report["rows"]["origins"] == 1
    assert report["source_root"] == report["destination_root"] == report["checkpoint_root"]
    original = rows(source)
    assert all(original[table] for table in TABLES), "the source has a row in every table"
    assert rows(pg_url) == original
    assert rows(back) == original
    # The copies open with the source's key store, and verify with it or without.
    for location in (source, pg_url, back):
        verified(location)
        verified(location, "--key-store", str(tmp_path / "source.db.keys"))
    assert_same_log(source, pg_url)
    assert_same_log(pg_url, back)
    # The FHIR read finds a sealed body by its digest on either store.
    for location in (pg_url, back):
        with LedgerReader(location, keys=keys) as reader:
            found = reader.resource(pilot=PILOT, data_type="fhir.Observation", resource_id="o-2")
            assert found is not None and found.subject == SUBJECT


def test_copy_between_two_of_a_kind(source: Path, pg_url: str, tmp_path: Path) -> None:
    other = f"{pg_url}?schema=other_ledger"
    assert run("copy", str(source), pg_url, "--quiet").exit_code == 0
    result = run("copy", pg_url, other, "--quiet")
    assert result.exit_code == 0, result.output
    twin = tmp_path / "sub" / "twin.db"
    assert run("copy", str(source), str(twin), "--quiet").exit_code == 0
    assert rows(other) == rows(source) == rows(twin)
    verified(other)
    verified(twin)
    assert_same_log(pg_url, other)


def test_a_destination_that_is_not_empty_is_refused_and_left_alone(
    source: Path, pg_url: str
) -> None:
    assert run("copy", str(source), pg_url).exit_code == 0
    before = rows(pg_url)
    for src, dst in ((str(source), pg_url), (pg_url, str(source))):
        result = run("copy", src, dst)
        assert result.exit_code == 2 and "is not empty" in result.stderr, result.output
    assert rows(pg_url) == before and rows(source) == before


def test_a_copy_onto_its_source_is_refused(source: Path, pg_url: str) -> None:
    assert run("copy", str(source), pg_url).exit_code == 0
    spelled = pg_url.replace("postgres@", "postgres:secret@", 1) + "?schema=ledger"
    for src, dst in (
        (str(source), str(source.parent / "." / source.name)),
        (str(source), f"sqlite://{source}"),
        (pg_url, spelled),
    ):
        result = run("copy", src, dst)
        assert result.exit_code == 2 and "is the source ledger itself" in result.stderr, (
            result.output
        )
        assert "secret" not in result.output


def test_a_missing_source_cannot_be_copied(tmp_path: Path, pg_url: str) -> None:
    result = run("copy", str(tmp_path / "missing.db"), pg_url)
    assert result.exit_code == 2 and "no ledger at" in result.stderr, result.output
    result = run("copy", pg_url, str(tmp_path / "x.db"))
    assert result.exit_code == 2 and "no ledger at" in result.stderr, result.output
    assert not (tmp_path / "x.db").exists()


def test_a_copy_that_fails_midway_leaves_the_destination_empty(
    source: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    insert = dialect.PostgresDialect.insert

    def failing(self: Any, conn: Any, table: str, columns: Any, rows: Any) -> None:
        if table == "bodies":
            raise StorageError("the disk is full")
        insert(self, conn, table, columns, rows)

    monkeypatch.setattr(dialect.PostgresDialect, "insert", failing)
    result = run("copy", str(source), pg_url)
    assert result.exit_code == 2 and "the disk is full" in result.stderr, result.output
    with LedgerReader(pg_url) as reader:
        assert reader.size() == 0 and reader.latest_checkpoint() is None
    monkeypatch.undo()
    assert run("copy", str(source), pg_url).exit_code == 0  # and it can be run again
    assert rows(pg_url) == rows(source)


def test_a_proof_from_a_copy_is_the_proof_from_its_source(source: Path, pg_url: str) -> None:
    assert run("copy", str(source), pg_url, "--quiet").exit_code == 0
    from_file = run("prove", "7", "--ledger", str(source))
    from_database = run("prove", "7", "--ledger", pg_url)
    assert from_file.exit_code == from_database.exit_code == 0, from_database.output
    assert from_database.stdout == from_file.stdout and from_file.stdout
