"""Where the access store and the dead letters are: ``access_store`` / ``dead_letter_store``
take a path or a URL (their older names ``access_db_path`` / ``dead_letter_path`` a path),
a relative path is relative to the config file, and by default each is beside the ledger:
a file beside a SQLite ledger, a schema of a PostgreSQL ledger's database."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.errors import ConfigError
from gateway.settings import HubSettings, load_settings

PG = "postgresql://hub@db.local:5432/city"


def test_by_default_both_are_files_beside_the_ledger(tmp_path: Path) -> None:
    config = tmp_path / "hub.toml"
    config.write_text('db_path = "data/ledger.db"\n')
    s = load_settings(config)
    assert s.access_location() == tmp_path / "data" / "ledger.db.access"
    assert s.dead_letter_location() == tmp_path / "data" / "ledger.db.deadletter"
    assert (s.access_db, s.dead_letters) == (s.access_location(), s.dead_letter_location())


def test_beside_a_postgresql_ledger_both_are_schemas_of_its_database() -> None:
    s = HubSettings(ledger_url=PG)
    assert s.access_location() == f"{PG}?schema=access"
    assert s.dead_letter_location() == f"{PG}?schema=deadletters"
    assert s.access_location(f"{PG}?schema=ledger") == f"{PG}?schema=access"
    assert s.access_location(f"{PG}?schema=hub_b") == f"{PG}?schema=hub_b_access"
    on_sqlite = HubSettings(ledger_url="sqlite:///d/l.db")
    assert on_sqlite.dead_letter_location() == Path("/d/l.db.deadletter")


def test_the_default_schemas_are_the_stores_own() -> None:
    from gateway import hub_ledger, settings
    from gateway.access import db
    from gateway.ingest import deadletters

    assert settings.LEDGER_SCHEMA == hub_ledger.LEDGER_SCHEMA
    assert settings.ACCESS_SCHEMA == db.PG_SCHEMA_NAME
    assert settings.DEAD_LETTER_SCHEMA == deadletters.PG_SCHEMA_NAME


def test_the_older_names_still_take_a_path(tmp_path: Path) -> None:
    config = tmp_path / "hub.toml"
    config.write_text('access_db_path = "a.db"\ndead_letter_path = "/abs/d.db"\n')
    s = load_settings(config)
    assert s.access_location() == tmp_path / "a.db"
    assert s.dead_letter_location(PG) == Path("/abs/d.db")


def test_the_new_names_take_a_path_or_a_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "hub.toml"
    config.write_text(f'access_store = "sqlite:data/a.db"\ndead_letter_store = "{PG}"\n')
    s = load_settings(config)
    assert s.access_location() == tmp_path / "data" / "a.db"
    assert s.dead_letter_location() == PG
    monkeypatch.setenv("SWIFTCHAIN_HUB_ACCESS_STORE", f"{PG}?schema=hub_access")
    assert load_settings(config).access_location() == f"{PG}?schema=hub_access"


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ('access_store = "mysql://db/x"\n', "unknown store"),
        ('dead_letter_store = "postgresql://db/x?schema=Bad"\n', "lower-case SQL name"),
        ('access_store = "a.db"\naccess_db_path = "b.db"\n', "both set"),
        ('dead_letter_store = "a.db"\ndead_letter_path = "b.db"\n', "both set"),
    ],
)
def test_a_bad_location_fails_at_load(tmp_path: Path, text: str, why: str) -> None:
    config = tmp_path / "hub.toml"
    config.write_text(text)
    with pytest.raises(ConfigError, match=why):
        load_settings(config)


def test_the_key_store_is_beside_the_ledger_unless_named(tmp_path: Path) -> None:
    config = tmp_path / "hub.toml"
    config.write_text('db_path = "data/ledger.db"\n')
    assert load_settings(config).key_store_location() == tmp_path / "data" / "ledger.db.keys"
    s = HubSettings(ledger_url=PG)
    assert s.key_store_location() == f"{PG}?schema=keys"
    assert s.key_store_location(f"{PG}?schema=hub_b") == f"{PG}?schema=hub_b_keys"
    config.write_text('key_store = "sqlite:k/ledger.keys"\nkey_store_master_key = "m.key"\n')
    named = load_settings(config)
    assert named.key_store_location() == tmp_path / "k" / "ledger.keys"
    assert named.key_store_master_key == tmp_path / "m.key"
    config.write_text('key_store = "postgresql://db/x?schema=Bad"\n')
    with pytest.raises(ConfigError, match="lower-case SQL name"):
        load_settings(config)


def test_the_default_key_store_schema_is_the_key_stores_own() -> None:
    from gateway import settings
    from ledger import keystore

    assert settings.KEY_STORE_SCHEMA == keystore.PG_SCHEMA_NAME
