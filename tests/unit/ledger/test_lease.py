"""The log's lease on PostgreSQL (ledger/lease.py): one holder at a time, takeover when the
holder is gone, and fencing of every commit of a holder that lost it."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from ledger.errors import FencedError, StoreError
from ledger.lease import Lease
from ledger.postgres import Connection, Url, connect

NAME = "swiftchain.test/log"


def _url(pg_url: str) -> Url:
    return Url(pg_url, default_schema="ledger")


def _writer(pg_url: str) -> Connection:
    return connect(_url(pg_url), application="test writer")


def _commit(conn: Connection, lease: Lease, value: int) -> None:
    """A writer's transaction as the store makes one: fence first, then write."""
    with conn.lock:
        conn.begin()
        try:
            lease.fence(conn)
            conn.execute("INSERT INTO written VALUES (?)", (value,))
            conn.commit()
        except BaseException:
            conn.rollback()
            raise


def _written(conn: Connection) -> list[int]:
    return [int(v) for (v,) in conn.execute("SELECT v FROM written ORDER BY v")]


@pytest.fixture
def table(pg_url: str) -> Connection:
    conn = _writer(pg_url)
    conn.execute("CREATE TABLE written (v BIGINT PRIMARY KEY)")
    return conn


def test_the_first_process_takes_the_lease_and_a_second_waits(
    pg_url: str, table: Connection
) -> None:
    a = Lease(_url(pg_url), NAME, ttl_s=30)
    b = Lease(_url(pg_url), NAME, ttl_s=30)
    assert a.try_acquire([table.backend_pid()])
    assert a.epoch == 1
    assert not b.try_acquire([])
    assert b.epoch is None
    state = b.state()
    assert state.holder == a.holder
    assert table.backend_pid() in state.sessions and state.alive
    _commit(table, a, 1)
    with pytest.raises(FencedError):
        _commit(table, b, 2)  # b never held it
    assert _written(table) == [1]


def test_a_killed_holder_is_taken_over_at_once(pg_url: str, table: Connection) -> None:
    holder_writer = _writer(pg_url)
    a = Lease(_url(pg_url), NAME, ttl_s=30)
    assert a.try_acquire([holder_writer.backend_pid()])
    # The process dies: the kernel closes its sockets, the server ends its sessions.
    holder_writer.close()
    a.conn.close()
    b = Lease(_url(pg_url), NAME, ttl_s=30)
    for _ in range(100):
        if b.try_acquire([table.backend_pid()]):
            break
        time.sleep(0.05)
    assert b.epoch == 2


def test_a_frozen_holder_is_taken_over_after_the_ttl_and_then_fenced(
    pg_url: str, table: Connection, caplog: pytest.LogCaptureFixture
) -> None:
    frozen_writer = _writer(pg_url)
    a = Lease(_url(pg_url), NAME, ttl_s=0.5)
    assert a.try_acquire([frozen_writer.backend_pid()])
    _commit(frozen_writer, a, 1)
    b = Lease(_url(pg_url), NAME, ttl_s=0.5)
    assert not b.try_acquire([table.backend_pid()])  # alive and renewed just now
    time.sleep(0.7)  # a stops renewing: frozen; its sessions stay connected
    assert b.try_acquire([table.backend_pid()])
    assert b.epoch == 2
    _commit(table, b, 2)
    # a resumes and tries to commit: refused before it writes, and logged.
    with caplog.at_level("ERROR", logger="swiftchain.ledger.lease"):
        with pytest.raises(FencedError, match="taken over"):
            _commit(frozen_writer, a, 3)
    assert "fenced" in caplog.text
    assert a.epoch is None
    with pytest.raises(FencedError):
        a.renew()
    assert _written(table) == [1, 2]


def test_a_holder_frozen_in_the_middle_of_a_commit_is_cut_off(
    pg_url: str, table: Connection
) -> None:
    frozen_writer = _writer(pg_url)
    a = Lease(_url(pg_url), NAME, ttl_s=0.5)
    assert a.try_acquire([frozen_writer.backend_pid()])
    # a fences and writes, then freezes before its COMMIT: it holds the lease row's lock.
    frozen_writer.begin()
    a.fence(frozen_writer)
    frozen_writer.execute("INSERT INTO written VALUES (1)")
    b = Lease(_url(pg_url), NAME, ttl_s=0.5)
    took = False
    for _ in range(20):  # bounded: each try waits at most the lock timeout (1 s)
        if b.try_acquire([table.backend_pid()]):
            took = True
            break
        time.sleep(0.2)
    assert took
    # Its session was ended: the commit it resumes to cannot land.
    with pytest.raises(psycopg.OperationalError):
        frozen_writer.commit()
    assert _written(table) == []


def test_a_commit_in_progress_keeps_the_lease(pg_url: str, table: Connection) -> None:
    """A takeover that meets a commit waits for it and then finds the lease renewed."""
    a = Lease(_url(pg_url), NAME, ttl_s=0.3)
    writer = _writer(pg_url)
    assert a.try_acquire([writer.backend_pid()])
    time.sleep(0.4)  # idle past the ttl, but now committing:
    writer.begin()
    a.fence(writer)
    b = Lease(_url(pg_url), NAME, ttl_s=0.3)
    result: list[bool] = []
    t = threading.Thread(target=lambda: result.append(b.try_acquire([table.backend_pid()])))
    t.start()
    time.sleep(0.1)
    writer.execute("INSERT INTO written VALUES (1)")
    writer.commit()
    t.join(timeout=10)
    assert result == [False]
    _commit(writer, a, 2)
    assert _written(table) == [1, 2]


def test_a_clean_release_lets_a_standby_take_over_at_once(pg_url: str) -> None:
    a = Lease(_url(pg_url), NAME, ttl_s=60)
    assert a.try_acquire([])
    b = Lease(_url(pg_url), NAME, ttl_s=60)
    assert not b.try_acquire([])
    a.close()
    assert b.try_acquire([])
    assert b.epoch == 2


def test_renewal_records_a_reconnected_writer(pg_url: str) -> None:
    a = Lease(_url(pg_url), NAME, ttl_s=60)
    writer = _writer(pg_url)
    assert a.try_acquire([writer.backend_pid()])
    writer.on_reconnect.append(a.writer_reconnected)
    old = writer.backend_pid()
    admin = _writer(pg_url)
    admin.execute("SELECT pg_terminate_backend(?)", (old,))
    with pytest.raises(psycopg.OperationalError):
        writer.execute("SELECT 1")
    writer.execute("SELECT 1")  # reconnects
    assert writer.backend_pid() != old
    a.renew()
    assert writer.backend_pid() in a.state().sessions


def test_a_bad_ttl_is_refused(pg_url: str) -> None:
    with pytest.raises(StoreError):
        Lease(_url(pg_url), NAME, ttl_s=0)
