"""A store's location as settings name it: a path or ``sqlite:`` + path is a SQLite file, a
``postgresql://`` URL a PostgreSQL schema; anything else is refused by name. A store kept
beside the ledger defaults to a file beside a SQLite ledger, a schema of a PostgreSQL
ledger's database."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger import location
from ledger.errors import StoreError
from ledger.postgres import Url

ACCESS = {"suffix": ".access", "schema": "access", "ledger_schema": "ledger"}


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ("ledger.db.access", Path("ledger.db.access")),
        ("/var/lib/hub/ledger.db.access", Path("/var/lib/hub/ledger.db.access")),
        ("sqlite:///var/lib/hub/access.db", Path("/var/lib/hub/access.db")),
        ("SQLite:data/access.db", Path("data/access.db")),
        ("data/odd:name.db", Path("data/odd:name.db")),
        (Path("x.db"), Path("x.db")),
    ],
)
def test_paths_and_sqlite_locations_name_a_file(text: str | Path, path: Path) -> None:
    assert location.sqlite_path(text) == path
    assert location.parse(text, default_schema="access") == path


def test_a_postgresql_url_names_a_schema() -> None:
    url = location.parse("postgresql://hub:pw@db.local:5433/city", default_schema="access")
    assert isinstance(url, Url) and url.schema == "access"
    assert "pw" not in str(url)
    named = location.parse("postgres://db.local/city?schema=hub_b", default_schema="access")
    assert isinstance(named, Url) and named.schema == "hub_b"
    assert location.sqlite_path("postgresql://db.local/city") is None


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "empty"),
        ("mysql://db.local/city", "unknown store"),
        ("file:///x.db", "unknown store"),
        ("sqlite://host/x.db", "not a host"),
        ("sqlite:", "no path"),
        ("sqlite://", "no path"),
        ("postgresql://db.local/city?schema=Mixed-Case", "not a lower-case SQL name"),
    ],
)
def test_anything_else_is_refused_by_name(text: str, why: str) -> None:
    with pytest.raises(StoreError, match=why):
        location.parse(text, default_schema="access")


def test_a_store_beside_a_sqlite_ledger_is_a_file_beside_it() -> None:
    assert location.beside(
        Path("/d/ledger.db"), suffix=".access", schema="access", ledger_schema="ledger"
    ) == Path("/d/ledger.db.access")
    assert location.beside(
        "sqlite:///d/l.db", suffix=".deadletter", schema="deadletters", ledger_schema="ledger"
    ) == Path("/d/l.db.deadletter")


def test_a_store_beside_a_postgresql_ledger_is_a_schema_of_its_database() -> None:
    url = "postgresql://hub:pw@db.local/city?sslmode=require"
    beside = location.beside(url, suffix=".access", schema="access", ledger_schema="ledger")
    assert beside == "postgresql://hub:pw@db.local/city?sslmode=require&schema=access"
    parsed = location.parse(beside, default_schema="x")
    assert isinstance(parsed, Url) and parsed.schema == "access"
    # The ledger's default schema named: the same stores as without it.
    named = location.beside(url + "&schema=ledger", **ACCESS)
    assert named == beside
    # A ledger in a schema of its own: the other stores follow it, not another hub's.
    own = location.beside(
        url + "&schema=hub_b", suffix=".access", schema="access", ledger_schema="ledger"
    )
    parsed = location.parse(own, default_schema="x")
    assert isinstance(parsed, Url) and parsed.schema == "hub_b_access"
    with pytest.raises(StoreError):
        location.beside(
            f"{url}&schema={'s' * 60}", suffix=".access", schema="access", ledger_schema="ledger"
        )
