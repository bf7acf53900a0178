"""A ledger shared by a module's tests, on each store in turn (``store_url`` is per test)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def module_store_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """Where a module's shared ledger lives: a SQLite file, then a PostgreSQL database of
    the module's own (dropped after)."""
    if request.param == "sqlite":
        yield str(tmp_path_factory.mktemp("ledger") / "ledger.db")
        return
    from tests.support.postgres import fresh_database

    with fresh_database(request.getfixturevalue("pg_server")) as url:
        yield url
