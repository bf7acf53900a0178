"""The access store's registration versions: every registration of a client (even the same one
stored again) is a new version, and the in-memory map follows the store, including changes
another process (``swiftchain clients add``) made to it. On SQLite and on PostgreSQL."""

from __future__ import annotations

from gateway.access.db import AccessDb
from gateway.smart.assertion import RegisteredClient

X = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
JWKS = {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": X}]}


def client(scopes: tuple[str, ...] = ("system/*.rs",)) -> RegisteredClient:
    return RegisteredClient("php-ehr", "harbour-peoples-hospital", "chronic-care", JWKS, scopes)


def test_every_registration_is_a_new_version(store_url: str) -> None:
    db = AccessDb(store_url)
    first = db.put_client(client())
    again = db.put_client(client())
    narrower = db.put_client(client(("system/Observation.rs",)))
    versions = {first.version, again.version, narrower.version}
    assert len(versions) == 3 and "" not in versions
    assert db.versions == {"php-ehr": narrower.version}
    stored = db.client("php-ehr")
    assert stored is not None and stored.version == narrower.version
    assert [r.public()["version"] for r in db.clients()] == [narrower.version]
    db.close()


def test_the_map_is_loaded_and_follows_other_writers(store_url: str) -> None:
    path = store_url
    hub = AccessDb(path)
    first = hub.put_client(client())
    hub.close()
    hub = AccessDb(path)
    assert hub.versions == {"php-ehr": first.version}

    # Another process registers the client again.
    cli = AccessDb(path)
    second = cli.put_client(client(("system/Observation.rs",)))
    assert hub.versions == {"php-ehr": first.version}  # not seen until the hub reads the row
    assert hub.client("php-ehr") == second
    assert hub.versions == {"php-ehr": second.version}
    cli.close()
    hub.close()
