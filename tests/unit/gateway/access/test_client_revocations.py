"""Revoking a hospital client, as pure rules and the access store (SQLite and PostgreSQL):
a revocation names the registration it ends and that registration's keys; the store then
shows the client ``revoked`` (when, by whom, why), the bearer check and the token endpoint
refuse it with "client revoked", its keys stay refused even in a later registration, and
recording the same log entry again changes nothing (the hub replays them at every start)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from joserfc import jwt
from joserfc.jwk import OKPKey
from pydantic import ValidationError

from gateway.access.db import AccessDb
from gateway.access.revocation import ClientRevoke, plan_revocation
from gateway.errors import RegistryError
from gateway.smart.assertion import JtiMemory, RegisteredClient, check_client_assertion
from gateway.smart.errors import InvalidToken, OAuthError
from gateway.smart.tokens import AccessToken, check_current_registration
from ledger.entries import ClientEntry

AT = "2026-05-01T10:00:00.000000Z"
AUD = "https://ledger.city.example/oauth/token"


def _jwks(key: OKPKey) -> dict[str, object]:
    return {"keys": [key.as_dict(private=False)]}


def _client(key: OKPKey, client_id: str = "php-ehr") -> RegisteredClient:
    return RegisteredClient(client_id, "harbour-peoples-hospital", "chronic-care", _jwks(key))


@pytest.fixture
def db(store_url: str) -> Iterator[AccessDb]:
    """The access store, on each store in turn."""
    db = AccessDb(store_url)
    yield db
    db.close()


def _revoke(db: AccessDb, client_id: str = "php-ehr", index: int = 7) -> ClientEntry:
    change = ClientRevoke(client_id=client_id, reason="  private key leaked ")
    entry = plan_revocation(db.client_row(client_id), change, "cli:alice", AT)
    db.record_revocation(entry, index)
    return entry


def test_a_revocation_names_the_registration_and_its_keys(db: AccessDb) -> None:
    key = OKPKey.generate_key("Ed25519", private=True)
    stored = db.put_client(_client(key))
    entry = _revoke(db)
    assert entry.registration == stored.version
    assert entry.keys == (key.thumbprint(),)
    assert (entry.actor, entry.reason, entry.org) == (
        "cli:alice",
        "private key leaked",
        "harbour-peoples-hospital",
    )
    assert ClientEntry.model_validate_json(entry.leaf()) == entry


def test_unknown_or_already_revoked_clients_and_blank_reasons_are_refused(db: AccessDb) -> None:
    change = ClientRevoke(client_id="nobody", reason="x")
    with pytest.raises(RegistryError) as err:
        plan_revocation(db.client_row("nobody"), change, "cli:alice", AT)
    assert err.value.code == "unknown_client"
    db.put_client(_client(OKPKey.generate_key("Ed25519", private=True)))
    _revoke(db)
    with pytest.raises(RegistryError, match="revoked already, at 2026-05-01") as err:
        _revoke(db)
    assert err.value.code == "client_revoked"
    with pytest.raises(ValidationError):
        ClientRevoke(client_id="php-ehr", reason="   ")


def test_the_store_shows_the_revocation_and_the_bearer_check_refuses(
    db: AccessDb, store_url: str
) -> None:
    stored = db.put_client(_client(OKPKey.generate_key("Ed25519", private=True)))
    token = AccessToken(stored.client_id, stored.org, stored.pilot, (), 0, "j", stored.version)
    check_current_registration(token, db.versions, db.revoked)
    _revoke(db)
    (row,) = db.clients()
    listed = row.public()
    assert listed["state"] == "revoked"
    assert listed["revoked"] == {
        "at": AT,
        "by": "cli:alice",
        "reason": "private key leaked",
        "index": 7,
    }
    with pytest.raises(InvalidToken, match="client revoked: php-ehr at 2026-05-01") as err:
        check_current_registration(token, db.versions, db.revoked)
    assert "private key leaked" in err.value.description
    db.close()

    # Another process (the hub, at its next start) reads the same state from the store.
    again = AccessDb(store_url)
    with pytest.raises(InvalidToken, match="client revoked"):
        check_current_registration(token, again.versions, again.revoked)
    client = again.client("php-ehr")
    assert client is not None and "log entry 7" in client.revoked
    again.close()


def test_recording_the_same_entry_again_changes_nothing(db: AccessDb) -> None:
    db.put_client(_client(OKPKey.generate_key("Ed25519", private=True)))
    entry = _revoke(db, index=7)
    db.record_revocation(entry, 7)
    (row,) = db.clients()
    assert row.revocation is not None and row.revocation.index == 7


def test_a_revoked_key_is_refused_for_good_and_a_new_one_works(db: AccessDb) -> None:
    leaked = OKPKey.generate_key("Ed25519", private=True)
    db.put_client(_client(leaked))
    _revoke(db)
    for client_id in ("php-ehr", "php-ehr-2"):
        with pytest.raises(RegistryError, match="was revoked with client php-ehr") as err:
            db.put_client(_client(leaked, client_id))
        assert err.value.code == "key_revoked"
    fresh = db.put_client(_client(OKPKey.generate_key("Ed25519", private=True)))
    (row,) = db.clients()
    assert row.public()["state"] == "active" and row.client.version == fresh.version
    token = AccessToken(fresh.client_id, fresh.org, fresh.pilot, (), 0, "j", fresh.version)
    check_current_registration(token, db.versions, db.revoked)


def test_the_token_endpoint_refuses_a_revoked_client_whatever_it_signs(db: AccessDb) -> None:
    key = OKPKey.generate_key("Ed25519", private=True)
    db.put_client(_client(key))
    _revoke(db)
    client = db.client("php-ehr")
    now = int(time.time())
    claims = {"iss": "php-ehr", "sub": "php-ehr", "aud": AUD, "exp": now + 60, "jti": "j1"}
    header = {"alg": "Ed25519"}
    assertion = jwt.encode(header, claims | {"jti": uuid.uuid4().hex}, key, algorithms=["Ed25519"])
    with pytest.raises(OAuthError, match="client revoked: php-ehr at 2026-05-01") as err:
        check_client_assertion(
            assertion, client=client, audiences=(AUD,), now=now, jti_memory=JtiMemory()
        )
    assert (err.value.error, err.value.status) == ("invalid_client", 401)
