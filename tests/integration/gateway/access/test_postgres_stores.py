"""A hub whose access store and dead letters are in PostgreSQL (the ledger a SQLite file):
a hospital registers, gets a token, and its replayed assertion is refused from the store; a
garbage message becomes a dead letter in schema ``deadletters``; the access store's
connection killed under the running hub answers the next token request 503
``storage_unavailable``, and the one after it works again on a new connection."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.access import HOSPITAL, HospitalClient
from tests.support.broker import Mosquitto
from tests.support.hub import MqttPeer, ThreadHub, _handle, records_topic


@pytest.fixture
def pg_hub(tmp_path: Path, hub_broker: Mosquitto, pg_url: str) -> Iterator[ThreadHub]:
    hub: ThreadHub = _handle(
        ThreadHub,
        tmp_path / "hub",
        hub_broker.url,
        batch_max_ms=2,
        access_store=pg_url,
        dead_letter_store=pg_url,
    )
    hub.start()
    try:
        yield hub
    finally:
        hub.stop()


def _rows(pg_url: str, sql: str) -> list[tuple[object, ...]]:
    import psycopg

    with psycopg.connect(pg_url) as conn:
        return list(conn.execute(sql).fetchall())


async def test_clients_jtis_and_dead_letters_live_in_postgresql(
    pg_hub: ThreadHub, pg_url: str
) -> None:
    import psycopg

    assert not (pg_hub.config_path.parent / "ledger.db.access").exists()
    hospital = HospitalClient(pg_hub, "php-ehr", HOSPITAL).register()
    assert _rows(pg_url, "SELECT client_id FROM access.clients") == [("php-ehr",)]

    assertion = hospital.assertion()
    status, body = hospital.token_request(assertion)
    assert status == 200, body
    status, body = hospital.token_request(assertion)
    assert (status, body["error"]) == (401, "invalid_client"), body
    assert "already used" in body["error_description"]
    assert len(_rows(pg_url, "SELECT jti FROM access.used_jtis")) == 1

    async with MqttPeer(pg_hub.mqtt_url) as peer:
        await peer.publish(records_topic("city-air", "station-1"), b'{"header": ')
        await peer.wait_for(1)
    letters = pg_hub.get_json("/api/v1/admin/dead-letters?limit=10")["dead_letters"]
    assert [d["reason"] for d in letters] == ["malformed_json"]
    assert _rows(pg_url, "SELECT reason FROM deadletters.dead_letters") == [("malformed_json",)]

    # The server drops the hub's access connection (a restart, a failover).
    with psycopg.connect(pg_url, autocommit=True) as admin:
        killed = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = 'swiftchain-hub-access' AND datname = current_database()"
        ).fetchall()
    assert killed == [(True,)]
    status, body = hospital.token_request()
    assert (status, body["error"]) == (503, "storage_unavailable"), body
    status, body = hospital.token_request()
    assert status == 200, body
