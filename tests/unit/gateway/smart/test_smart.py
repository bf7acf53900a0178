"""SMART Backend Services: client assertions, scopes and access tokens (pure checks)."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey, OKPKey

from gateway.smart.assertion import JtiMemory, RegisteredClient, check_client_assertion
from gateway.smart.errors import InvalidToken, OAuthError
from gateway.smart.scopes import allows, grant, parse_scopes
from gateway.smart.tokens import check_access_token, issue_access_token

NOW = 1_790_000_000
URL = "http://127.0.0.1:8080/oauth/token"
CLIENT_ID = "hospital-a-ehr"


@pytest.fixture(scope="module")
def es_key() -> ECKey:
    return ECKey.generate_key("P-384", parameters={"kid": "es-1"})


@pytest.fixture(scope="module")
def ed_key() -> OKPKey:
    return OKPKey.generate_key("Ed25519", parameters={"kid": "ed-1"})


@pytest.fixture
def client(es_key: ECKey, ed_key: OKPKey) -> RegisteredClient:
    jwks = {"keys": [es_key.as_dict(private=False), ed_key.as_dict(private=False)]}
    return RegisteredClient(CLIENT_ID, "hospital-a", "chronic-care", jwks)


def assertion(key: Any, alg: str = "ES384", kid: str = "es-1", **overrides: Any) -> str:
    claims: dict[str, Any] = {
        "iss": CLIENT_ID,
        "sub": CLIENT_ID,
        "aud": URL,
        "exp": NOW + 240,
        "jti": uuid.uuid4().hex,
    }
    claims.update(overrides)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode({"alg": alg, "kid": kid}, claims, key, algorithms=[alg])


def check(token: str, client: RegisteredClient, memory: JtiMemory | None = None) -> str:
    result = check_client_assertion(
        token, client=client, audiences=[URL], now=NOW, jti_memory=memory or JtiMemory()
    )
    return result.jti


def test_es384_and_eddsa_assertions_are_accepted(
    client: RegisteredClient, es_key: ECKey, ed_key: OKPKey
) -> None:
    check(assertion(es_key), client)
    check(assertion(ed_key, alg="EdDSA", kid="ed-1"), client)
    check(assertion(ed_key, alg="Ed25519", kid="ed-1"), client)


def _b64(obj: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("alg_none", "alg 'none' is not allowed"),
        ("hmac_with_public_key", "alg 'HS256' is not accepted"),
        ("wrong_audience", "aud must be the token endpoint"),
        ("expired", "has expired"),
        ("exp_too_far", "more than 300 s in the future"),
        ("no_exp", "exp is required"),
        ("no_jti", "jti is required"),
        ("foreign_key", "signature does not verify"),
        ("unknown_kid", "is not in the client's registered JWK set"),
        ("sub_differs", "iss and sub must both be the client_id"),
        ("not_jws", "not a compact JWS"),
        ("garbage_segments", "not base64url JSON"),
        ("not_yet_valid", "not valid yet"),
    ],
)
def test_bad_assertions_are_refused_with_precise_reasons(
    case: str, expected: str, client: RegisteredClient, es_key: ECKey
) -> None:
    tokens = {
        "alg_none": lambda: _b64({"alg": "none"}) + "." + assertion(es_key).split(".")[1] + ".",
        "hmac_with_public_key": lambda: jwt.encode(
            {"alg": "HS256", "kid": "es-1"},
            {"iss": CLIENT_ID, "sub": CLIENT_ID, "aud": URL, "exp": NOW + 60, "jti": "x"},
            OctKey.import_key(json.dumps(es_key.as_dict(private=False)).encode()),
            algorithms=["HS256"],
        ),
        "wrong_audience": lambda: assertion(es_key, aud="http://127.0.0.1:1/other"),
        "expired": lambda: assertion(es_key, exp=NOW - 600),
        "exp_too_far": lambda: assertion(es_key, exp=NOW + 3600),
        "no_exp": lambda: assertion(es_key, exp=None),
        "no_jti": lambda: assertion(es_key, jti=None),
        "foreign_key": lambda: assertion(ECKey.generate_key("P-384")),
        "unknown_kid": lambda: assertion(es_key, kid="nope"),
        "sub_differs": lambda: assertion(es_key, sub="someone-else"),
        "not_jws": lambda: "only.two",
        "garbage_segments": lambda: "a.b.c",
        "not_yet_valid": lambda: assertion(es_key, nbf=NOW + 600),
    }
    with pytest.raises(OAuthError) as err:
        check(tokens[case](), client)
    assert err.value.error == "invalid_client"
    assert err.value.status == 401
    assert expected in err.value.description


def test_a_replayed_jti_is_refused(client: RegisteredClient, es_key: ECKey) -> None:
    memory = JtiMemory()
    token = assertion(es_key)
    check(token, client, memory)
    with pytest.raises(OAuthError, match="already used"):
        check(token, client, memory)


def test_unknown_client_is_refused(es_key: ECKey) -> None:
    with pytest.raises(OAuthError, match="no registered client"):
        check_client_assertion(
            assertion(es_key), client=None, audiences=[URL], now=NOW, jti_memory=JtiMemory()
        )


def test_scopes_parse_and_narrow() -> None:
    granted = grant(
        parse_scopes("system/Observation.read system/Patient.cruds"), parse_scopes("system/*.rs")
    )
    # No Patient endpoint: system/*.rs grants no Patient scope.
    assert [str(s) for s in granted] == ["system/Observation.rs"]
    assert allows(granted, "Observation", "s")
    assert not allows(granted, "Consent", "r")
    for bad in ["", "user/Observation.rs", "system/observation.rs", "system/Obs.x", "a " * 40]:
        with pytest.raises(OAuthError) as err:
            parse_scopes(bad)
        assert err.value.error == "invalid_scope"
    with pytest.raises(OAuthError, match="none of the requested"):
        grant(parse_scopes("system/Consent.c"), parse_scopes("system/Observation.rs"))


def test_access_tokens_round_trip_and_expire() -> None:
    key = OKPKey.generate_key("Ed25519")
    token, issued = issue_access_token(
        key=key,
        issuer="http://127.0.0.1:8080",
        client_id=CLIENT_ID,
        org="hospital-a",
        pilot="chronic-care",
        scopes=parse_scopes("system/Observation.rs"),
        registration="v1",
        now=NOW,
        lifetime=3600,
    )
    assert issued.expires_at == NOW + 300  # never longer than five minutes
    seen = check_access_token(token, key=key, issuer="http://127.0.0.1:8080", now=NOW + 10)
    assert (seen.client_id, seen.org, seen.pilot) == (CLIENT_ID, "hospital-a", "chronic-care")
    with pytest.raises(InvalidToken, match="expired"):
        check_access_token(token, key=key, issuer="http://127.0.0.1:8080", now=NOW + 301)
    with pytest.raises(InvalidToken, match="another server"):
        check_access_token(token, key=key, issuer="http://127.0.0.1:9999", now=NOW)
    with pytest.raises(InvalidToken, match="signature"):
        check_access_token(
            token, key=OKPKey.generate_key("Ed25519"), issuer="http://127.0.0.1:8080", now=NOW
        )
    forged = token.rsplit(".", 1)[0] + "." + "A" * 86
    with pytest.raises(InvalidToken):
        check_access_token(forged, key=key, issuer="http://127.0.0.1:8080", now=NOW)
