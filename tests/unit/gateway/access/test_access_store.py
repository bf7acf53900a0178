"""The access store answers the same on SQLite and on PostgreSQL: the listing's order, the
upserts, Consent versions, and a client assertion's ``jti`` used once even by two processes
racing; on PostgreSQL a lost connection is a StorageError (the hub answers 503) and the
next call connects again."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from gateway.access.clients import ClientRegistration
from gateway.access.db import AccessDb
from gateway.access.revocation import ClientRevoke
from gateway.errors import ConfigError
from gateway.smart.assertion import RegisteredClient
from ledger.errors import StorageError
from tests.support.broker import free_port

X = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
JWKS = {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": X}]}
NOW = 1_800_000_000


def client(client_id: str) -> RegisteredClient:
    return RegisteredClient(client_id, "harbour-peoples-hospital", "chronic-care", JWKS)


@pytest.fixture
def db(store_url: str) -> Iterator[AccessDb]:
    db = AccessDb(store_url)
    yield db
    db.close()


def test_clients_are_listed_in_byte_order_and_replaced_in_place(db: AccessDb) -> None:
    for client_id in ("beta", "Zeta", "alpha", "beta"):
        db.put_client(client(client_id))
    assert [r.client.client_id for r in db.clients()] == ["Zeta", "alpha", "beta"]


def test_consent_versions_are_stored_once_and_forgotten_together(db: AccessDb) -> None:
    body = bytes(range(256))
    db.put_consent("h1", "c-1", "chronic-care", body)
    db.put_consent("h1", "c-1", "chronic-care", b"a second write of a version changes nothing")
    db.put_consent("h2", "c-1", "chronic-care", b"v2")
    db.put_consent("h3", "c-1", "other-pilot", b"v1 elsewhere")
    many = [f"missing-{i}" for i in range(1200)] + ["h1", "h2", "h3"]
    assert db.consent_resources(many) == {"h1": body, "h2": b"v2", "h3": b"v1 elsewhere"}
    assert db.forget_consent("c-1", "chronic-care") == 2
    assert db.forget_consent("c-1", "chronic-care") == 0
    assert db.consent_resources(["h1", "h2", "h3"]) == {"h3": b"v1 elsewhere"}


def test_a_jti_is_used_once_until_its_assertion_expires(db: AccessDb) -> None:
    assert db.claim_jti("php-ehr", "j-1", NOW + 60, NOW, 300)
    assert not db.claim_jti("php-ehr", "j-1", NOW + 60, NOW + 10, 300)
    assert db.claim_jti("other-client", "j-1", NOW + 60, NOW, 300)
    # Past exp + skew the old use is dropped, and the jti may come again.
    assert db.claim_jti("php-ehr", "j-1", NOW + 500, NOW + 361, 300)


def test_any_jti_string_is_kept_and_told_apart(db: AccessDb) -> None:
    # RFC 7519 4.1.7: any string (PostgreSQL text holds no NUL: the store escapes it).
    for jti in ("a\x00b", "ä ✓ \U0001f600", "a b", "A B"):
        assert db.claim_jti("php-ehr", jti, NOW + 60, NOW, 300), jti
        assert not db.claim_jti("php-ehr", jti, NOW + 60, NOW, 300), jti


def test_two_connections_racing_for_one_jti_have_one_winner(store_url: str) -> None:
    hubs = [AccessDb(store_url), AccessDb(store_url)]
    try:
        for round_ in range(20):
            assert sorted(_race(hubs, f"race-{round_}")) == [False, True], round_
    finally:
        for db in hubs:
            db.close()


def _race(hubs: list[AccessDb], jti: str) -> list[bool]:
    """Each of ``hubs`` claims ``jti`` in a thread of its own, all released at once."""
    start = threading.Barrier(len(hubs))
    wins: list[bool] = []

    def claim(db: AccessDb) -> None:
        start.wait(timeout=30)
        wins.append(db.claim_jti("php-ehr", jti, NOW + 60, NOW, 300))

    threads = [threading.Thread(target=claim, args=(db,)) for db in hubs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return wins


def test_no_nul_in_what_the_store_keeps_as_text() -> None:
    with pytest.raises(ValidationError):
        ClientRegistration(
            client_id="c", org="o", pilot="p", jwks=JWKS, scopes=["system/*.rs"], name="a\x00"
        )
    with pytest.raises(ValidationError):
        ClientRevoke(client_id="c", reason="leaked\x00")


def test_a_location_that_is_no_store_is_a_config_error(tmp_path: Path) -> None:
    for where in ("mysql://127.0.0.1/x", "sqlite://host/x", "postgresql://h/x?schema=Bad-Name"):
        with pytest.raises(ConfigError, match="access store"):
            AccessDb(where)
    (tmp_path / "junk.db").write_bytes(b"not a database" * 100)
    with pytest.raises(ConfigError, match="access store"):
        AccessDb(tmp_path / "junk.db")


def test_a_server_that_does_not_answer_is_a_storage_error() -> None:
    with pytest.raises(StorageError, match="access store"):
        AccessDb(f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere")


# -- PostgreSQL only ------------------------------------------------------------------------


def _terminate(admin_url: str, pid: int) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


def test_a_lost_connection_is_a_storage_error_and_the_next_call_reconnects(pg_url: str) -> None:
    db = AccessDb(pg_url)
    try:
        db.put_client(client("php-ehr"))
        _terminate(pg_url, db.conn.backend_pid())
        with pytest.raises(StorageError, match="access store"):
            db.clients()
        assert [r.client.client_id for r in db.clients()] == ["php-ehr"]
        assert db.claim_jti("php-ehr", "j", NOW + 60, NOW, 300)
        _terminate(pg_url, db.conn.backend_pid())
        with pytest.raises(StorageError):
            db.claim_jti("php-ehr", "j2", NOW + 60, NOW, 300)
    finally:
        db.close()
    fresh = AccessDb(pg_url)
    try:
        assert fresh.client("php-ehr") is not None
        assert not fresh.claim_jti("php-ehr", "j", NOW + 60, NOW, 300)
    finally:
        fresh.close()


def test_a_claim_waits_for_a_racing_uncommitted_use_then_loses(pg_url: str) -> None:
    """Not a check then an insert: while another process's use of the jti is uncommitted,
    a claim waits for it; once it commits the claim is refused, once it rolls back it wins."""
    db = AccessDb(pg_url)
    try:
        assert _claim_behind(db, pg_url, "held-1", "COMMIT") == [False]
        assert _claim_behind(db, pg_url, "held-2", "ROLLBACK") == [True]
    finally:
        db.close()


def _claim_behind(db: AccessDb, pg_url: str, jti: str, outcome: str) -> list[bool]:
    """``db`` claims ``jti`` while another connection holds an uncommitted use of it, which
    then ends with ``outcome``; what the claim returned."""
    import psycopg

    result: list[bool] = []
    with psycopg.connect(pg_url, autocommit=True) as other:
        other.execute("BEGIN")
        other.execute(
            "INSERT INTO access.used_jtis VALUES (%s, %s, %s)", ("php-ehr", jti, NOW + 60)
        )
        waiter = threading.Thread(
            target=lambda: result.append(db.claim_jti("php-ehr", jti, NOW + 60, NOW, 300))
        )
        waiter.start()
        _until_waiting_on_a_lock(other, db.conn.backend_pid())
        other.execute(outcome)
        waiter.join(timeout=60)
    return result


def _until_waiting_on_a_lock(admin: object, pid: int) -> None:
    import time

    for _ in range(3000):  # bounded: the claim is on its way to the lock
        row = admin.execute(  # type: ignore[attr-defined]
            "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,)
        ).fetchone()
        if row is not None and row[0] == "Lock":
            return
        time.sleep(0.01)
    raise AssertionError("the claim never waited for the uncommitted use")


def test_hub_processes_starting_at_once_all_open_the_store(pg_url: str) -> None:
    opened: list[AccessDb] = []
    failed: list[BaseException] = []
    start = threading.Barrier(8)

    def open_one() -> None:
        start.wait(timeout=30)
        try:
            opened.append(AccessDb(pg_url))
        except BaseException as exc:
            failed.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for db in opened:
        db.close()
    assert failed == [] and len(opened) == 8


def test_the_url_picks_the_schema(pg_url: str) -> None:
    import psycopg

    db = AccessDb(f"{pg_url}?schema=hub_b_access")
    db.put_client(client("php-ehr"))
    db.close()
    with psycopg.connect(pg_url) as raw:
        listed = raw.execute("SELECT client_id FROM hub_b_access.clients").fetchall()
        assert listed == [("php-ehr",)]
    again = AccessDb(pg_url)
    assert again.clients() == []  # schema access: another store
    again.close()
