"""The data-key store on each store: creation (idempotent, durable, one key a scope across
processes), batched reads, destruction by id and by scope, retention's listing, wrapping
under the master key, and the scope rules of both erasure paths."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ledger.datakeys import (
    DataKey,
    Scope,
    day_of,
    first_day_kept,
    open_,
    open_with,
    seal,
    write_master_key,
)
from ledger.errors import KeyDestroyed, KeyFileError, RangeError, SealError, StoreError
from ledger.keystore import KeyStore

ALICE, BOB = "alice-pseudonym", "bob-pseudonym"


def record(subject: str | None, consent: str | None, data_type: str, at: str) -> Scope:
    return Scope.of_record(
        pilot="p1", subject=subject, consent=consent, data_type=data_type, observed_at=at
    )


@pytest.fixture
def master(tmp_path: Path) -> Path:
    path = tmp_path / "master.key"
    write_master_key(path)
    return path


@pytest.fixture
def location(store_kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if store_kind == "sqlite":
        return str(tmp_path / "ledger.db.keys")
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def store(location: str, master: Path) -> Iterator[KeyStore]:
    with KeyStore.open(location, master_key=master) as ks:
        yield ks


def test_a_scopes_key_is_made_once_and_kept(location: str, master: Path) -> None:
    scope = record(ALICE, "c1", "hr", "2026-03-01T08:00:00Z")
    with KeyStore.open(location, master_key=master) as ks:
        assert ks.wrapped
        assert ks.key_for(scope, create=False) is None
        key = ks.key_for(scope, create=True)
        assert isinstance(key, DataKey)
        assert ks.key_for(scope, create=True) == key
        index_key = ks.index_key
        sealed = seal(key, "bodies", 0, b"payload")
    # Durable before it was returned: another store's connection reads it.
    with KeyStore.open(location, master_key=master) as again:
        assert again.key_for(scope, create=False) == key
        assert again.keys([key.id]) == {key.id: key}
        assert again.index_key == index_key
        assert open_(key, "bodies", 0, sealed) == b"payload"


def test_a_batchs_keys_come_in_one_call(store: KeyStore) -> None:
    scopes = [record(f"person-{i:04}", "c1", "hr", "2026-03-01T08:00:00Z") for i in range(450)]
    keys = store.keys_for(scopes + scopes[:10])
    assert set(keys) == set(scopes) and len({k.id for k in keys.values()}) == 450
    ids = [k.id for k in keys.values()]
    assert store.keys(ids + ids[:3]) == {k.id: k for k in keys.values()}
    assert store.keys_for(scopes, create=False) == keys


def test_reads_after_a_cold_start_come_from_the_store(location: str, master: Path) -> None:
    scopes = [record(None, None, "air", f"2026-03-{d:02}T08:00:00Z") for d in range(1, 29)]
    with KeyStore.open(location, master_key=master) as ks:
        made = ks.keys_for(scopes)
    with KeyStore.open(location, master_key=master, cache=4) as cold:
        assert cold.keys_for(scopes, create=False) == made
        assert cold.keys([k.id for k in made.values()]) == {k.id: k for k in made.values()}


def test_destroyed_keys_are_gone(store: KeyStore) -> None:
    scope = record(ALICE, "c1", "hr", "2026-03-01T08:00:00Z")
    key = store.key_for(scope, create=True)
    assert key is not None
    sealed = seal(key, "bodies", 4, b"body")
    assert store.destroy([key.id, key.id, 12345]) == [key.id]
    assert store.keys([key.id]) == {}
    assert store.destroy([key.id]) == []
    with pytest.raises(KeyDestroyed):
        open_with(store.keys([key.id]), key.id, "bodies", 4, sealed)
    # The scope gets a new key (a late record), never the destroyed one back.
    assert store.key_for(scope, create=False) is None
    new = store.key_for(scope, create=True)
    assert new is not None and new.id != key.id and new.secret != key.secret


def test_a_withdrawal_destroys_exactly_its_consents_keys(store: KeyStore) -> None:
    days = ["2026-03-01T08:00:00Z", "2026-03-02T08:00:00Z", "2026-03-03T08:00:00Z"]
    withdrawn = [record(ALICE, "c1", t, at) for t in ("hr", "steps") for at in days]
    withdrawn.append(Scope.of_entry("consent", pilot="p1", subject=ALICE, consent="c1"))
    kept = [record(ALICE, "c2", "hr", at) for at in days]  # her other Consent
    kept += [record(BOB, "c1", "hr", at) for at in days]  # a Consent id reused by another
    kept += [record(None, None, "hr", at) for at in days]  # about nobody
    kept.append(Scope("p2", ALICE, "c1", "hr", "2026-03-01"))  # another pilot
    access = Scope.of_entry("access", pilot="p1", subject=ALICE, consent=None)
    kept.append(access)
    keys = store.keys_for(withdrawn + kept)
    listed = store.ids_of_scope("p1", ALICE, "c1")
    assert store.ids_of_scope("p1", ALICE, "c1", types=["steps"]) == [
        keys[s].id for s in withdrawn if s.data_type == "steps"
    ]
    destroyed = store.destroy_scope("p1", ALICE, "c1")
    assert sorted(listed) == sorted(destroyed)
    assert sorted(destroyed) == sorted(keys[s].id for s in withdrawn)
    held = store.keys(k.id for k in keys.values())
    assert set(held) == {keys[s].id for s in kept}
    # Erasing the person also blinds her access openings: their key, by type.
    assert store.destroy_scope("p1", ALICE, None, types=["@access"]) == [keys[access].id]
    assert store.destroy_scope("p1", ALICE, "c2", types=[]) == []
    assert store.ids_of_scope("p1", ALICE, "c2", types=[]) == []
    assert store.destroy_scope("p1", ALICE, "c9") == []
    with pytest.raises(RangeError):
        store.destroy_scope("p1", 5, "c1")  # type: ignore[arg-type]


def test_retention_lists_a_types_keys_of_days_before(store: KeyStore) -> None:
    scopes = [
        record(person, "c1", "hr", f"2026-03-{d:02}T08:00:00Z")
        for person in (ALICE, BOB, None)
        for d in (1, 2, 3)
    ]
    keys = store.keys_for([*scopes, record(ALICE, "c1", "steps", "2026-03-01T08:00:00Z")])
    store.key_for(Scope.of_entry("access", pilot="p1", subject=ALICE, consent=None), create=True)
    listed = store.ids_of("p1", "hr", "2026-03-03")
    assert sorted(listed) == sorted(keys[s].id for s in scopes if s.day < "2026-03-03")
    assert store.ids_of("p1", "hr", "2026-03-01") == []
    assert store.ids_of("p2", "hr", "2026-04-01") == []
    assert store.ids_of("p1", "@access", "9999-12-31") == []  # no retention erases those


def test_the_two_erasure_paths_leave_no_held_body_without_its_key(store: KeyStore) -> None:
    """A day of records through the rules of ledger.datakeys: a withdrawal, then retention
    sweeps erasing oldest first, each key destroyed once no held body is left under it, and
    the backstop for days wholly past retention."""
    start = datetime(2026, 3, 1, tzinfo=UTC)
    bodies: dict[int, tuple[Scope, str, bytes]] = {}  # index -> scope, observed_at, sealed
    key_of: dict[int, int] = {}
    people = [(ALICE, "c1"), (ALICE, "c2"), (BOB, "c3"), (None, None)]
    at_list = [start + timedelta(hours=5 * i) for i in range(30)]  # 6 days and a quarter
    batch = []
    for index, (at, (subject, consent)) in enumerate((at, p) for at in at_list for p in people):
        observed = at.strftime("%Y-%m-%dT%H:%M:%SZ")
        batch.append((index, record(subject, consent, "hr", observed), observed))
    keys = store.keys_for(s for _, s, _ in batch)
    for index, scope, observed in batch:
        key_of[index] = keys[scope].id
        bodies[index] = (scope, observed, seal(keys[scope], "bodies", index, b"%d" % index))
    # Alice withdraws c1 with erasure: her c1 bodies go with their keys.
    store.destroy_scope("p1", ALICE, "c1")
    for index in [i for i, (s, _, _) in bodies.items() if (s.subject, s.consent) == (ALICE, "c1")]:
        del bodies[index]

    def until(t: datetime) -> datetime:
        return t + timedelta(days=2)

    for now in (start + timedelta(days=d, hours=h) for d in range(2, 9) for h in (0, 7, 13)):
        due = sorted(
            (i for i, (_, at, _) in bodies.items() if until(_parse(at)) <= now),
            key=lambda i: bodies[i][1],
        )
        emptied = {key_of[i] for i in due}
        for index in due:
            del bodies[index]
        emptied -= {key_of[i] for i in bodies}  # keys with a held body left stay
        store.destroy(emptied)
        oldest = min((at for _, at, _ in bodies.values()), default=None)
        day_before = first_day_kept(until, now)
        if oldest is not None:
            day_before = min(day_before, day_of(oldest))
        store.destroy(store.ids_of("p1", "hr", day_before))
        # Every held body opens; every erased one's key is gone unless its day is not over.
        held = store.keys(key_of.values())
        for index, (_, _, sealed) in bodies.items():
            assert open_with(held, key_of[index], "bodies", index, sealed) == b"%d" % index
        for index in set(key_of) - set(bodies):
            if key_of[index] in held:
                scope = batch[index][1]
                assert scope.day >= first_day_kept(until, now)
    assert bodies == {} and store.keys(key_of.values()) == {}


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _make_keys(location: str, master: Path, barrier: object, queue: object) -> None:
    scopes = [record(f"person-{i:04}", "c1", "hr", "2026-03-01T08:00:00Z") for i in range(300)]
    with KeyStore.open(location, master_key=master) as ks:
        barrier.wait()  # type: ignore[attr-defined]
        made = ks.keys_for(scopes)
        queue.put({s.subject: (k.id, k.secret) for s, k in made.items()})  # type: ignore[attr-defined]


def test_two_processes_making_one_scopes_key_get_the_same(location: str, master: Path) -> None:
    KeyStore.open(location, master_key=master).close()  # the tables, before the race
    ctx = multiprocessing.get_context("spawn")
    barrier, queue = ctx.Barrier(2), ctx.Queue()
    workers = [
        ctx.Process(target=_make_keys, args=(location, master, barrier, queue)) for _ in range(2)
    ]
    for w in workers:
        w.start()
    results = [queue.get(timeout=120) for _ in workers]
    for w in workers:
        w.join(timeout=60)
        assert w.exitcode == 0
    assert results[0] == results[1] and len(results[0]) == 300
    with KeyStore.open(location, master_key=master) as ks:
        assert len(ks.ids_of("p1", "hr", "9999-12-31")) == 300


def test_a_store_opens_only_with_its_master_key(
    location: str, master: Path, tmp_path: Path
) -> None:
    KeyStore.open(location, master_key=master).close()
    other = tmp_path / "other.key"
    write_master_key(other)
    with pytest.raises(StoreError, match="another master key"):
        KeyStore.open(location, master_key=other)
    with pytest.raises(StoreError, match="key_store_master_key"):
        KeyStore.open(location)
    with pytest.raises(KeyFileError):
        KeyStore.open(location, master_key=tmp_path / "missing.key")
    with pytest.raises(RangeError):
        KeyStore.open(location, master_key=b"short")


def test_a_postgresql_key_store_needs_a_master_key(pg_url: str) -> None:
    with pytest.raises(StoreError, match="key_store_master_key"):
        KeyStore.open(pg_url)


# -- SQLite ------------------------------------------------------------------------------------


def test_an_unwrapped_sqlite_store_refuses_a_master_key(tmp_path: Path, master: Path) -> None:
    path = tmp_path / "ledger.db.keys"
    with KeyStore.open(path) as ks:
        assert not ks.wrapped
        key = ks.key_for(record(None, None, "air", "2026-03-01T08:00:00Z"), create=True)
    with pytest.raises(StoreError, match="unwrapped"):
        KeyStore.open(path, master_key=master)
    with KeyStore.open(path) as ks:
        assert key is not None and ks.keys([key.id]) == {key.id: key}


def test_the_sqlite_key_file_is_the_owners_alone(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "ledger.db.keys"
    with KeyStore.open(path) as ks:
        ks.key_for(record(None, None, "air", "2026-03-01T08:00:00Z"), create=True)
        for file in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            assert file.stat().st_mode & 0o777 == 0o600, file
    os.chmod(path, 0o644)
    KeyStore.open(path).close()
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_damaged_wrapped_key_is_a_seal_error(tmp_path: Path, master: Path) -> None:
    path = tmp_path / "ledger.db.keys"
    with KeyStore.open(path, master_key=master) as ks:
        key = ks.key_for(record(ALICE, "c1", "hr", "2026-03-01T08:00:00Z"), create=True)
        assert key is not None
    with sqlite3.connect(path) as raw:
        raw.execute("UPDATE keys SET secret = zeroblob(60) WHERE id = ?", (key.id,))
    with KeyStore.open(path, master_key=master) as ks, pytest.raises(SealError, match="unwrap"):
        ks.keys([key.id])


def test_a_key_store_path_that_is_a_directory_is_named(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="directory"):
        KeyStore.open(tmp_path)
    (tmp_path / "junk.keys").write_bytes(b"not a database at all" * 100)
    with pytest.raises(StoreError):
        KeyStore.open(tmp_path / "junk.keys")


def test_bad_arguments_are_range_errors(tmp_path: Path) -> None:
    with KeyStore.open(tmp_path / "k") as ks:
        with pytest.raises(RangeError):
            ks.keys_for(["p1"])  # type: ignore[list-item]
        with pytest.raises(RangeError):
            ks.keys([0])
        with pytest.raises(RangeError):
            ks.destroy(["1"])  # type: ignore[list-item]
        with pytest.raises(RangeError):
            ks.ids_of("p1", "hr", "yesterday")
