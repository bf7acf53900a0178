"""What is PostgreSQL's alone in the store: where a ledger is (URLs, schemas), a reader that
creates nothing, the writer's fence, a connection lost mid-transaction, bodies' resource
ids, streamed reads in pages. The rest of the store's behaviour is tested on both stores
(``store_url``) by test_store.py and its neighbours."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from ledger import dialect, postgres
from ledger.errors import FencedError, StorageError, StoreError
from ledger.schema import resource_id_of
from ledger.store import LedgerReader, LedgerWriter, NewEntry, describe, location_of
from ledger.tree import Frontier
from ledger.verify import verify_ledger
from tests.support.ledger_builder import ORIGIN, LedgerBuilder


def _access(n: int) -> NewEntry:
    return NewEntry("access", b'{"kind":"access","n":%d}' % n)


def _admin(url: str) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(postgres.Url(url, default_schema="ledger").conninfo, autocommit=True)


def test_a_location_is_a_path_or_a_url() -> None:
    assert location_of("data/ledger.db") == Path("data/ledger.db")
    assert location_of(Path("/x/l.db")) == Path("/x/l.db")
    assert location_of("sqlite:///srv/ledger.db") == Path("/srv/ledger.db")
    for url in ("postgresql://u@h/db", "postgres://u@h:5433/db?schema=city"):
        assert location_of(url) == url
    for bad in ("sqlite://relative.db", "mysql://u@h/db"):
        with pytest.raises(StoreError):
            location_of(bad)
    assert describe("postgresql://u:secret@h/db") == "postgresql://u:***@h/db"
    assert describe(Path("/x/l.db")) == "/x/l.db"


def test_a_reader_finds_no_ledger_and_creates_nothing(pg_url: str) -> None:
    with pytest.raises(StoreError, match="no ledger at") as caught:
        LedgerReader(pg_url)
    assert not isinstance(caught.value, StorageError)
    with _admin(pg_url) as admin:
        row = admin.execute("SELECT 1 FROM pg_namespace WHERE nspname = 'ledger'").fetchone()
    assert row is None


def test_a_password_never_shows_in_a_message(pg_url: str) -> None:
    with_password = pg_url.replace("postgres@", "postgres:hunter2@", 1)
    with pytest.raises(StoreError) as caught:
        LedgerReader(with_password)
    assert "hunter2" not in str(caught.value)


def test_two_ledgers_in_one_database_by_schema(pg_url: str) -> None:
    first, second = f"{pg_url}?schema=city_a", f"{pg_url}?schema=city_b"
    with LedgerWriter(first, origin="a.example/log") as w:
        w.append([_access(1), _access(2)])
    with LedgerWriter(second, origin="b.example/log") as w:
        w.append([_access(3)])
    with LedgerReader(first) as a, LedgerReader(second) as b:
        assert (a.size(), b.size()) == (2, 1)
        assert (a.meta("origin"), b.meta("origin")) == ("a.example/log", "b.example/log")
    with pytest.raises(StoreError, match="no ledger at"):
        LedgerReader(pg_url)  # the default schema, ledger, holds none


def test_every_text_column_orders_bytewise(pg_url: str) -> None:
    LedgerWriter(pg_url).close()
    with _admin(pg_url) as admin:
        rows = admin.execute(
            "SELECT table_name, column_name, collation_name FROM information_schema.columns"
            " WHERE table_schema = 'ledger' AND data_type = 'text'"
        ).fetchall()
    assert len(rows) > 15 and {r[2] for r in rows} == {"C"}, rows


class Fence:
    """A fence that records what it saw, and refuses when told to."""

    def __init__(self) -> None:
        self.refuse: FencedError | None = None
        self.calls: list[tuple[bool, int]] = []
        self.conns: set[int] = set()

    def __call__(self, conn: postgres.Connection) -> None:
        (entries,) = conn.execute("SELECT count(*) FROM entries").fetchone()
        self.calls.append((conn.in_transaction, int(entries)))
        self.conns.add(id(conn))
        if self.refuse is not None:
            raise self.refuse


@pytest.fixture
def fenced(pg_url: str) -> Iterator[tuple[LedgerWriter, Fence]]:
    fence = Fence()
    writer = LedgerWriter(pg_url, origin=ORIGIN, fence=fence)
    yield writer, fence
    writer.close()


def test_the_fence_is_asked_inside_every_write_before_any_write(
    fenced: tuple[LedgerWriter, Fence],
) -> None:
    writer, fence = fenced
    assert fence.calls == [(True, 0)]  # opening a new ledger writes its schema and origin
    writer.append([_access(0), _access(1)])
    writer.add_checkpoint(2, writer.current_root(), "note")
    writer.set_meta("k", "v")
    writer.store_cosigned(2, writer.current_root(), "cosigned", quorum=True)
    # In a transaction, and before the append's rows (none of them was there yet).
    assert fence.calls == [(True, 0), (True, 0), (True, 2), (True, 2), (True, 2)]
    assert fence.conns == {id(writer.conn)}
    # Opening a ledger that has its schema and origin writes nothing, so asks nothing.
    again = Fence()
    LedgerWriter(writer.location, origin=ORIGIN, fence=again).close()
    assert again.calls == []


def test_a_fenced_writer_cannot_even_make_a_new_ledger(pg_url: str) -> None:
    def refuse(conn: postgres.Connection) -> None:
        raise FencedError("not the holder")

    with pytest.raises(FencedError, match="not the holder"):
        LedgerWriter(pg_url, origin=ORIGIN, fence=refuse)
    with pytest.raises(StoreError, match="not a Swiftchain ledger"):
        LedgerReader(pg_url)  # the tables, but no schema version
    with LedgerWriter(pg_url, origin=ORIGIN) as writer:  # which the holder then writes
        assert writer.meta("origin") == ORIGIN


def test_a_fence_that_refuses_stops_every_write_and_its_error_comes_out_unchanged(
    fenced: tuple[LedgerWriter, Fence],
) -> None:
    writer, fence = fenced
    writer.append([_access(0)])
    size, root = writer.size(), writer.current_root()
    fence.refuse = FencedError("another sequencer holds the lease")
    writes = [
        lambda: writer.append([_access(1)]),
        lambda: writer.add_checkpoint(1, root, "note"),
        lambda: writer.set_meta("k", "v"),
        lambda: writer.store_cosigned(1, root, "cosigned", quorum=True),
    ]
    for write in writes:
        with pytest.raises(FencedError) as caught:
            write()
        assert caught.value is fence.refuse
    assert (writer.size(), writer.current_root()) == (size, root)
    assert not writer.conn.in_transaction
    with LedgerReader(writer.location) as reader:
        assert reader.size() == size and reader.latest_checkpoint() is None
        assert reader.meta("k") is None and reader.quorum_checkpoint() is None
    fence.refuse = None
    writer.append([_access(1)])  # the same writer writes again once the fence lets it
    assert writer.size() == size + 1


def test_sqlite_ignores_the_fence(tmp_path: Path) -> None:
    def refuse(conn: postgres.Connection) -> None:
        raise FencedError("never asked on SQLite")

    with LedgerWriter(tmp_path / "l.db", fence=refuse) as writer:
        writer.append([_access(0)])
        assert writer.size() == 1


def _terminate(url: str, pid: int) -> None:
    with _admin(url) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


def test_a_connection_killed_mid_append_writes_nothing_and_the_tree_goes_on(
    pg_url: str,
) -> None:
    builder = LedgerBuilder(pg_url)
    builder.register_source()
    builder.append_records(30, batch=10)
    size, root = builder.writer.size(), builder.writer.current_root()
    builder.close()
    killed: list[int] = []

    def kill_once(conn: postgres.Connection) -> None:
        # After BEGIN, before the batch's rows: the server ends this session mid-transaction.
        if not killed:
            killed.append(conn.backend_pid())
            _terminate(pg_url, conn.backend_pid())

    writer = LedgerWriter(pg_url, origin=ORIGIN, fence=kill_once)
    with pytest.raises(StorageError):
        writer.append([_access(n) for n in range(3)])
    assert (writer.size(), writer.current_root()) == (size, root)
    with LedgerReader(pg_url) as reader:
        assert reader.size() == size and reader.root(size) == root
    # The next append opens a new session (ledger.postgres) and numbers from what is there.
    (stored,) = writer.append([_access(3)])
    assert stored.index == size and writer.conn.backend_pid() != killed[0]
    expected = Frontier.from_nodes(size, writer.nodes)
    expected.append(stored.leaf_hash)
    assert writer.current_root() == expected.root()
    writer.close()
    # A writer reopened after it all continues the same tree.
    with LedgerWriter(pg_url, origin=ORIGIN) as again:
        assert (again.size(), again.current_root()) == (size + 1, expected.root())
        assert again.root(size) == root
    report = verify_ledger(pg_url)
    assert report.size == size + 1 and report.records == 30


def test_an_idle_writer_whose_connection_died_fails_its_next_append(pg_url: str) -> None:
    writer = LedgerWriter(pg_url, origin=ORIGIN)
    writer.append([_access(0)])
    _terminate(pg_url, writer.conn.backend_pid())
    with pytest.raises(StorageError):
        writer.append([_access(1)])
    assert writer.size() == 1
    with LedgerReader(pg_url) as reader:
        assert reader.size() == 1
    writer.append([_access(2)])  # on a new session
    assert writer.size() == 2
    writer.close()


def test_a_reader_whose_connection_died_raises_a_storage_error(pg_url: str) -> None:
    LedgerWriter(pg_url).close()
    reader = LedgerReader(pg_url)
    assert isinstance(reader.conn, postgres.Connection)
    _terminate(pg_url, reader.conn.backend_pid())
    with pytest.raises(StorageError):
        reader.size()
    assert reader.size() == 0  # the next read opens a new session
    reader.close()


@pytest.mark.parametrize("sig", ["a\x00b", "\ud800"])
def test_text_postgresql_cannot_hold_is_refused_and_writes_nothing(pg_url: str, sig: str) -> None:
    # SQLite's TEXT takes a NUL or a lone surrogate; PostgreSQL's (UTF-8) takes neither.
    with LedgerWriter(pg_url) as writer:
        writer.append([_access(0)])
        with pytest.raises(StoreError):
            writer.append([_access(1), NewEntry("access", b"{}", sig=sig)])
        assert writer.size() == 1
        assert writer.conn.execute("SELECT count(*) FROM entries").fetchone() == (1,)
        writer.append([_access(2)])
        assert writer.size() == 2


def test_a_body_that_is_not_json_still_stores_without_a_resource_id(pg_url: str) -> None:
    with LedgerWriter(pg_url) as writer:
        writer.append(
            [
                NewEntry("access", b"{}", payload=b'{"id":"obs-1","resourceType":"X"}', salt="s"),
                NewEntry("access", b"{}", payload=b"not json", salt="s"),
                NewEntry("access", b"{}", payload=b'{"id":7}', salt="s"),
            ]
        )
        rows = writer.conn.execute("SELECT idx, resource_id FROM bodies ORDER BY idx").fetchall()
    assert rows == [(0, "obs-1"), (1, None), (2, None)]


@pytest.mark.parametrize(
    ("payload", "found"),
    [
        (b'{"id":"bp-1","resourceType":"Observation"}', "bp-1"),
        (b'{"resourceType":"Observation"}', None),
        (b'{"id":1}', None),
        (b'{"id":null}', None),
        (b'["id"]', None),
        (b'"id"', None),
        (b"not json", None),
        (b"\xff\xfe", None),
        (b'{"id":"a\\u0000b"}', None),  # PostgreSQL's TEXT holds no NUL (no FHIR id has one)
        (b'{"nested":{"id":"x"}}', None),
    ],
)
def test_resource_id_of(payload: bytes, found: str | None) -> None:
    assert resource_id_of(payload) == found


def test_a_file_ledgers_path_and_a_databases_none(pg_url: str, tmp_path: Path) -> None:
    with LedgerWriter(tmp_path / "l.db") as on_file:
        assert on_file.path == tmp_path / "l.db"
    with LedgerWriter(pg_url) as on_pg, pytest.raises(StoreError, match="not a file"):
        on_pg.path  # noqa: B018


def test_long_reads_stream_in_pages(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    builder = LedgerBuilder(pg_url)
    builder.register_source()
    builder.append_records(40, batch=9)
    builder.writer.append([_access(n) for n in range(15)])
    builder.checkpoint()
    builder.close()
    pages: list[str] = []
    streamed: list[int] = []
    execute, stream = postgres.Connection.execute, postgres.Connection.stream

    def paged(self: postgres.Connection, sql: str, params: Any = None) -> Any:
        if "LIMIT" in sql:
            pages.append(sql)
        return execute(self, sql, params)

    def streaming(self: postgres.Connection, sql: str, params: Any = (), **kw: Any) -> Any:
        for rows in stream(self, sql, params, **kw):
            streamed.append(len(rows))
            yield rows

    # 7 rows a page or a fetch: the last of one and the first of the next are neighbours.
    monkeypatch.setattr(dialect.POSTGRES, "page", 7)
    monkeypatch.setattr(postgres.Connection, "execute", paged)
    monkeypatch.setattr(postgres.Connection, "stream", streaming)
    with LedgerReader(pg_url) as reader:
        assert [i for i, _ in reader.leaves("access")] == list(range(41, 56))
        assert len(pages) == 3  # 7 + 7 + 1
        assert [i for i, _ in reader.opened_leaves("record")] == list(range(1, 41))
        assert len(pages) == 3 + 6  # 5 x 7 + 5
    # The verify's walk: one query through a server-side cursor, 7 rows a fetch.
    report = verify_ledger(pg_url)
    assert report.ok and report.size == 56 and report.records == 40, report.problems
    assert streamed == [7] * 8


def test_a_connection_never_reopens_inside_a_transaction(pg_url: str) -> None:
    conn = postgres.connect(postgres.Url(pg_url, default_schema="t"), application="test")
    conn.begin()
    conn.execute("CREATE TABLE t (n INTEGER)")
    _terminate(pg_url, conn.backend_pid())
    for _ in range(2):  # the second call too: a new session would run outside the transaction
        with pytest.raises(psycopg.OperationalError):
            conn.execute("INSERT INTO t VALUES (1)")
    conn.rollback()
    assert conn.execute("SELECT to_regclass('t')").fetchone() == (None,)
    conn.close()


def test_a_percent_sign_goes_as_it_is_with_or_without_parameters(pg_url: str) -> None:
    with LedgerWriter(pg_url) as writer:
        writer.set_meta("rate", "50%")
        assert writer.meta("rate") == "50%"
        assert writer.conn.execute("SELECT '5%'").fetchone() == ("5%",)
        assert writer.conn.execute("SELECT '5%' || ?", ("!",)).fetchone() == ("5%!",)


def test_an_erasure_is_followed_by_a_vacuum_of_the_tables_it_changed(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    builder = LedgerBuilder(pg_url)
    builder.register_source()
    builder.append_records(3)
    vacuums: list[tuple[str, str]] = []
    execute = postgres.Connection.execute

    def watched(self: postgres.Connection, sql: str, params: Any = None) -> Any:
        if not sql.startswith("VACUUM"):
            return execute(self, sql, params)
        try:
            found = execute(self, sql, params)
        except StoreError as exc:
            vacuums.append((sql, str(exc)))
            raise
        vacuums.append((sql, "done"))
        return found

    monkeypatch.setattr(postgres.Connection, "execute", watched)
    builder.writer.append([_access(0)])
    assert vacuums == []  # nothing erased, nothing to vacuum
    builder.erase(2)
    assert vacuums == [("VACUUM bodies, openings, origins, records", "done")]
    builder.close()
