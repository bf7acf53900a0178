"""After a key is destroyed, its bytes are in none of the files its store keeps: the raw
bytes of the SQLite key file and its WAL, and a PostgreSQL cluster's whole data directory
(heap files, WAL segments), scanned for them."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path

import psycopg
import pytest

from ledger.datakeys import DataKey, Scope, write_master_key
from ledger.keystore import KeyStore
from tests.support import postgres


def _scope(i: int, day: int) -> Scope:
    return Scope.of_record(
        pilot="p1",
        subject=f"person-{i:04}",
        consent="c1",
        data_type="hr",
        observed_at=f"2026-03-{day:02}T08:00:00Z",
    )


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def _found(files: Iterable[Path], needles: Iterable[bytes]) -> dict[bytes, list[str]]:
    """Each needle found, with the files it is in."""
    wanted = list(needles)
    hits: dict[bytes, list[str]] = {}
    for file in files:
        try:
            data = file.read_bytes()
        except OSError:
            continue  # a file the server removed meanwhile
        for needle in wanted:
            if needle in data:
                hits.setdefault(needle, []).append(file.name)
    return hits


def _sqlite_files(path: Path) -> list[Path]:
    return [p for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists()]


def test_a_destroyed_key_is_in_neither_the_sqlite_file_nor_its_wal(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db.keys"
    with KeyStore.open(path) as ks:
        made: dict[Scope, DataKey] = {}
        # Keys in several commits and checkpoints, so that old page images of them sit in
        # the WAL and in the file when they are destroyed.
        for day in range(1, 6):
            made |= ks.keys_for(_scope(i, day) for i in range(120))
            if day % 2:
                ks.conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        victims = [k for s, k in made.items() if s.subject is not None and s.subject.endswith("7")]
        victims += [made[_scope(i, 3)] for i in range(0, 120, 5)]
        alive = [k for k in made.values() if k not in victims]
        # The scan sees the keys it looks for: every key is in the files before.
        assert len(_found(_sqlite_files(path), (k.secret for k in made.values()))) == len(made)
        ks.destroy_scope("p1", "person-0017", "c1")
        ks.destroy(k.id for k in victims)
        assert not ks.scrub_pending
        assert _found(_sqlite_files(path), (k.secret for k in victims)) == {}
        assert len(_found(_sqlite_files(path), (k.secret for k in alive))) == len(alive)
    assert _found(_sqlite_files(path), (k.secret for k in victims)) == {}


def test_a_reader_holding_the_wal_delays_the_scrub_not_the_destroy(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db.keys"
    with KeyStore.open(path) as ks:
        keys = ks.keys_for(_scope(i, 1) for i in range(50))
        victim = keys[_scope(3, 1)]
        reader = sqlite3.connect(path, isolation_level=None)
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM keys").fetchone()
        assert ks.destroy([victim.id]) == [victim.id]
        assert ks.scrub_pending and ks.keys([victim.id]) == {}
        reader.execute("COMMIT")
        reader.close()
        assert ks.scrub()
        assert _found(_sqlite_files(path), [victim.secret]) == {}


@pytest.fixture(scope="module")
def cluster() -> Iterable[postgres.Cluster]:
    """A cluster of this module's own, whose data directory the tests read. In a folder
    of its own under the system's temporary one: run as root, the server runs as
    ``postgres``, which cannot reach into pytest's (0700) temporary folders."""
    if not postgres.can_make_cluster():
        pytest.skip("no initdb/postgres to start a cluster of the test's own")
    with postgres.own_cluster() as c:
        yield c


def _checkpoint(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute("CHECKPOINT")


def test_no_raw_key_ever_reaches_a_postgresql_data_directory(
    cluster: postgres.Cluster, tmp_path: Path
) -> None:
    master = tmp_path / "master.key"
    write_master_key(master)
    url = f"{cluster.url}?schema=keys_forensic"
    with KeyStore.open(url, master_key=master) as ks:
        made: dict[Scope, DataKey] = {}
        for day in range(1, 4):
            made |= ks.keys_for(_scope(i, day) for i in range(40))
        _checkpoint(cluster.url)
        stored = {
            int(i): bytes(w) for i, w in ks.conn.execute("SELECT id, secret FROM keys").fetchall()
        }
        files = _files(cluster.data)
        # What is stored, the wrapped keys, the scan finds (in the heap and the WAL) ...
        assert len(_found(files, stored.values())) == len(made)
        # ... and the keys themselves are nowhere: not in a heap file, a WAL segment.
        assert _found(files, (k.secret for k in made.values())) == {}
        victims = [made[_scope(i, d)] for i in range(0, 40, 3) for d in (1, 2, 3)]
        ks.destroy(k.id for k in victims)
        destroyed = ks.destroy_scope("p1", "person-0001", "c1")
        assert len(destroyed) == 3 and not ks.scrub_pending
        gone = [*victims, *(k for s, k in made.items() if s.subject == "person-0001")]
        _checkpoint(cluster.url)
        files = _files(cluster.data)
        assert _found(files, (k.secret for k in made.values())) == {}
        # A destroyed row's wrapped bytes may stay in the heap's pages until they are
        # rewritten (module docstring of ledger.keystore); compact() rewrites the table.
        ks.compact()
        _checkpoint(cluster.url)
        heap = _files(cluster.data / "base")
        assert _found(heap, (stored[k.id] for k in gone)) == {}
        alive = [stored[k.id] for k in made.values() if k not in gone]
        assert len(_found(heap, alive)) == len(alive)
        assert ks.keys(k.id for k in gone) == {}
