"""After an erasure, nothing of the erased values is recoverable from what the hub's stores
keep: on SQLite, the raw bytes of the ledger file and its WAL and of the key file and its
WAL hold neither the payload, nor its ciphertext, nor the key it was sealed under; on
PostgreSQL, a dump of the ledger's data tables taken before the erasure holds ciphertext
only and no longer opens after it (its key ids resolve to nothing), and the payload's bytes
were never in the cluster's data directory (heap files, WAL) at all."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import psycopg
import pytest

from ledger.datakeys import DataKey, open_with, write_master_key
from ledger.errors import KeyDestroyed
from ledger.keystore import KeyStore
from ledger.store import LedgerReader
from tests.support import postgres
from tests.support.ledger_builder import LedgerBuilder

PILOT = "chronic-care"
OBS = "fhir.Observation"
VICTIM = "pt-0000forensic"
CONSENT = "c-forensic"


def _payload(i: int, subject: str) -> dict[str, object]:
    # A value no other byte of the stores spells: what the scan looks for.
    return {
        "resourceType": "Observation",
        "subject": {"reference": f"Patient/{subject}"},
        "valueQuantity": {"value": 170000 + i, "unit": f"forensic-marker-{i:04}"},
    }


def _needle(i: int) -> bytes:
    return f"forensic-marker-{i:04}".encode()


def _sqlite_files(path: Path) -> list[Path]:
    return [p for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists()]


def _hits(files: Iterable[Path], needles: Iterable[bytes]) -> dict[bytes, list[str]]:
    wanted = list(needles)
    found: dict[bytes, list[str]] = {}
    for file in files:
        try:
            data = file.read_bytes()
        except OSError:
            continue  # a file the server removed meanwhile
        for needle in wanted:
            if needle in data:
                found.setdefault(needle, []).append(file.name)
    return found


def _build(builder: LedgerBuilder, people: int, per_person: int) -> dict[int, tuple[str, int]]:
    """Records of ``people`` persons on several days, in several commits (old page images of
    them in the WAL): index -> (subject, marker number)."""
    made: dict[int, tuple[str, int]] = {}
    n = 0
    for day in range(1, per_person + 1):
        for p in range(people):
            subject = VICTIM if p == 0 else f"pt-{p:011}"
            index = builder.append_record(
                _payload(n, subject),
                type=OBS,
                subject=subject,
                consent=CONSENT,
                observed_at=f"2026-06-{day:02}T08:00:00Z",
            )
            made[index] = (subject, n)
            n += 1
        builder.checkpoint()
    return made


def _victims_keys(keys: KeyStore, reader: LedgerReader, indexes: list[int]) -> dict[int, DataKey]:
    """The data keys the victim's rows are sealed under (read from the tables: opaque ids)."""
    marks = ",".join("?" * len(indexes))
    rows = reader.conn.execute(
        f"SELECT DISTINCT key_id FROM bodies WHERE idx IN ({marks})", indexes
    ).fetchall()
    ids = [int(k) for (k,) in rows]
    found = keys.keys(ids)
    assert sorted(found) == sorted(ids)
    return found


def test_after_an_erasure_no_byte_of_the_payload_or_its_key_is_in_the_sqlite_files(
    tmp_path: Path,
) -> None:
    ledger = tmp_path / "ledger.db"
    key_file = tmp_path / "ledger.db.keys"
    with KeyStore.open(key_file) as keys:
        builder = LedgerBuilder(ledger, pilot=PILOT, source="php-ward-1", keys=keys)
        builder.register_source()
        made = _build(builder, people=40, per_person=4)
        mine = sorted(i for i, (s, _) in made.items() if s == VICTIM)
        others = sorted(i for i, (s, _) in made.items() if s != VICTIM)
        victim_keys = _victims_keys(keys, builder.writer, mine)
        with LedgerReader(ledger) as raw:
            sealed = {
                int(i): bytes(p)
                for i, p in raw.conn.execute("SELECT idx, payload FROM bodies").fetchall()
            }
        # Sealed from the start: no payload in the open in the ledger's files ...
        ledger_files = _sqlite_files(ledger)
        assert _hits(ledger_files, (_needle(n) for _, n in made.values())) == {}
        # ... and what is there (the ciphertext), and the keys in the key file, the scan sees.
        mine_sealed = [sealed[i][-24:] for i in mine]
        assert len(_hits(ledger_files, mine_sealed)) == len(mine)
        assert len(_hits(_sqlite_files(key_file), (k.secret for k in victim_keys.values()))) == 4

        # The person's withdrawal with erasure: bodies erased, the scope's keys destroyed.
        builder.writer.append([], erase=mine, erase_scopes=[(PILOT, VICTIM, CONSENT)])
        assert keys.keys(victim_keys) == {} and not keys.scrub_pending
        builder.close()

        ledger_files, key_files = _sqlite_files(ledger), _sqlite_files(key_file)
        assert _hits(key_files, (k.secret for k in victim_keys.values())) == {}
        assert _hits(ledger_files, mine_sealed) == {}
        assert _hits([*ledger_files, *key_files], (_needle(made[i][1]) for i in mine)) == {}
        # The others are untouched: their ciphertext still there, and still opening.
        assert len(_hits(ledger_files, [sealed[i][-24:] for i in others])) == len(others)
        with LedgerReader(ledger, keys=keys) as reader:
            assert reader.body(mine[0]) is None and reader.body(others[0]) is not None
    # Closed: still nothing, in whatever the files hold.
    assert _hits(_sqlite_files(key_file), (k.secret for k in victim_keys.values())) == {}
    assert _hits(_sqlite_files(ledger), mine_sealed) == {}


@pytest.fixture(scope="module")
def cluster() -> Iterator[postgres.Cluster]:
    """A cluster of this module's own, whose data directory the test reads (in a folder of
    its own under the system's temporary one, which the server's user can reach)."""
    if not postgres.can_make_cluster():
        pytest.skip("no initdb/postgres to start a cluster of the test's own")
    with postgres.own_cluster() as c:
        yield c


def _checkpoint(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute("CHECKPOINT")


def _dump(url: str, schema: str) -> dict[str, bytes]:
    """Every data table of ``schema`` as ``COPY ... TO STDOUT`` writes it (what ``pg_dump
    --data-only`` holds of a table): table -> its text."""
    dump: dict[str, bytes] = {}
    with psycopg.connect(url, autocommit=True) as conn:
        tables = [
            str(t)
            for (t,) in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY tablename",
                (schema,),
            ).fetchall()
        ]
        for table in tables:
            out = bytearray()
            with conn.cursor().copy(f'COPY "{schema}"."{table}" TO STDOUT') as copy:
                for block in copy:
                    out += block
            dump[table] = bytes(out)
    return dump


def _bodies_of(dump: dict[str, bytes]) -> dict[int, tuple[int | None, bytes]]:
    """idx -> (key id, sealed payload) of the dump's bodies (COPY's text format: tab
    separated, bytea as \\\\x hex, NULL as \\\\N; columns in the table's order)."""
    rows: dict[int, tuple[int | None, bytes]] = {}
    for line in dump["bodies"].decode().splitlines():
        idx, payload, _salt, _resource_id, key_id, _resource = line.split("\t")
        rows[int(idx)] = (
            None if key_id == "\\N" else int(key_id),
            bytes.fromhex(payload.removeprefix("\\\\x")),
        )
    return rows


def test_a_postgresql_dump_holds_ciphertext_only_and_no_longer_opens_after_an_erasure(
    cluster: postgres.Cluster, tmp_path: Path
) -> None:
    master = tmp_path / "master.key"
    write_master_key(master)
    url = f"{cluster.url}?schema=ledger"
    with KeyStore.open(f"{cluster.url}?schema=keys", master_key=master) as keys:
        builder = LedgerBuilder(url, pilot=PILOT, source="php-ward-1", keys=keys)
        builder.register_source()
        made = _build(builder, people=30, per_person=3)
        mine = sorted(i for i, (s, _) in made.items() if s == VICTIM)
        victim_keys = _victims_keys(keys, builder.writer, mine)
        _checkpoint(cluster.url)

        # A dump taken before the erasure (a backup): ciphertext only.
        before = _dump(cluster.url, "ledger")
        text = b"".join(before.values())
        needles = [_needle(n) for _, n in made.values()]
        for needle in needles:
            assert needle not in text and needle.hex().encode() not in text
        dumped = _bodies_of(before)
        assert all(dumped[i][0] is not None for i in made)
        assert len(dumped) == len(made)
        # The payloads are in no file of the cluster (heap, WAL), nor are the keys: the key
        # store holds them wrapped under the master key.
        files = sorted(p for p in cluster.data.rglob("*") if p.is_file())
        assert _hits(files, needles) == {}
        assert _hits(files, (k.secret for k in victim_keys.values())) == {}
        # The dump opens while the keys are held.
        index = mine[0]
        key_id, sealed = dumped[index]
        assert key_id is not None
        assert open_with(keys.keys([key_id]), key_id, "bodies", index, sealed)

        builder.writer.append([], erase=mine, erase_scopes=[(PILOT, VICTIM, CONSENT)])
        builder.close()
        _checkpoint(cluster.url)

        # The dump is unreadable now: its key ids resolve to nothing in the key store.
        victim_ids = {dumped[i][0] for i in mine}
        assert victim_ids == set(victim_keys)
        assert keys.keys(k for k in victim_ids if k is not None) == {}
        for i in mine:
            kid, blob = dumped[i]
            assert kid is not None
            with pytest.raises(KeyDestroyed):
                open_with(keys.keys([kid]), kid, "bodies", i, blob)
        # ... while another person's rows in it still open with their keys.
        other = next(i for i, (s, _) in made.items() if s != VICTIM)
        kid, blob = dumped[other]
        assert kid is not None and open_with(keys.keys([kid]), kid, "bodies", other, blob)
        files = sorted(p for p in cluster.data.rglob("*") if p.is_file())
        assert _hits(files, needles) == {}
        assert _hits(files, (k.secret for k in victim_keys.values())) == {}
        with LedgerReader(url, keys=keys) as reader:
            assert reader.body(index) is None and reader.body(other) is not None
