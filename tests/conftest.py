from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from ledger.suite import Suite, suite_named
from tests.support.broker import Mosquitto
from tests.support.hub import ThreadHub, thread_hub

# Speed is for bench/, never for a test: hypothesis' 200 ms deadline per example failed
# property tests on a loaded machine, so no deadline and no too-slow health check.
settings.register_profile("swiftchain", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("swiftchain")


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """A Mosquitto of the test's own on a free loopback port."""
    workdir = tmp_path / "mosquitto"
    workdir.mkdir()
    m = Mosquitto(workdir)
    m.start()
    try:
        yield m
    finally:
        m.stop()


# -- the ledger hub (tests/support/hub.py) ---------------------------------------------------


@pytest.fixture
def hub_broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """A Mosquitto of the hub test's own (hubs use shared subscriptions: a broker shared with
    other tests' hubs would split their records)."""
    workdir = tmp_path / "hub-mosquitto"
    workdir.mkdir()
    m = Mosquitto(workdir)
    m.start()
    try:
        yield m
    finally:
        m.stop()


@pytest.fixture
def running_hub(tmp_path: Path, hub_broker: Mosquitto) -> Iterator[ThreadHub]:
    """A whole hub (own broker, ledger in tmp_path) serving real HTTP and MQTT on loopback:
    ``.http_url``, ``.mqtt_url``, ``.log_key``, ``.register_source(pilot, source, types)``."""
    with thread_hub(tmp_path / "hub", hub_broker.url, batch_max_ms=2) as hub:
        yield hub


# -- PostgreSQL (tests/support/postgres.py) ---------------------------------------------------


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """A PostgreSQL server URL: the machine's on 127.0.0.1:5432, else a cluster of this test
    session's own (initdb + pg_ctl in a temporary folder); skips with the reason without."""
    from tests.support import postgres

    url, why = postgres.server_url()
    if url is not None:
        yield url
        return
    if why == "psycopg is not installed" or not postgres.can_make_cluster():
        pytest.skip(f"no PostgreSQL: {why}, and no initdb/postgres to start one")
    # In a folder of its own under /tmp: the server runs as the postgres user, who cannot
    # enter pytest's (0700) temporary folders when the tests run as root.
    with postgres.own_cluster() as cluster:
        yield cluster.url


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database of this test's own."""
    from tests.support.postgres import fresh_database

    with fresh_database(pg_server) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def store_kind(request: pytest.FixtureRequest) -> str:
    """Each store the ledger runs on: tests taking it run once per store."""
    return str(request.param)


@pytest.fixture(params=["ed25519-sha256", "sm2-sm3"], ids=["ed25519-sha256", "sm2-sm3"])
def suite(request: pytest.FixtureRequest) -> Suite:
    """Each crypto suite a log can have (ledger/suite.py): tests taking it run once per
    suite, with keys of its kind."""
    return suite_named(str(request.param))


@pytest.fixture
def store_url(store_kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """Where a test's ledger lives, on each store in turn: a SQLite file in ``tmp_path``, or
    a new PostgreSQL database of the test's own."""
    if store_kind == "sqlite":
        return str(tmp_path / "ledger.db")
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def store_settings(store_kind: str, request: pytest.FixtureRequest) -> dict[str, Any]:
    """Hub settings (for ``write_hub_config``) putting a test hub on each store in turn: none
    on SQLite (the ledger file beside its config), ``ledger_url`` of a new PostgreSQL
    database of the test's own otherwise (the access store and the dead letters follow
    the ledger into it)."""
    if store_kind == "sqlite":
        return {}
    return {"ledger_url": str(request.getfixturevalue("pg_url"))}
