"""Two rules of the token endpoint and the bearer check, as pure functions: the audience a
client assertion must name comes from the settings alone (never the request's Host), and a
token is good only while its client's registration is the one it was issued under."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, OKPKey

from gateway.smart.assertion import (
    JtiMemory,
    RegisteredClient,
    check_client_assertion,
    expected_audiences,
)
from gateway.smart.errors import InvalidToken, OAuthError
from gateway.smart.scopes import parse_scopes
from gateway.smart.tokens import (
    TOKEN_TYPE,
    AccessToken,
    check_access_token,
    check_current_registration,
    issue_access_token,
)

NOW = 1_790_000_000
CLIENT_ID = "hospital-a-ehr"
HUB = "https://ledger.city.example"


@pytest.mark.parametrize(
    ("public_url", "extra", "expected"),
    [
        (HUB, [], (f"{HUB}/oauth/token",)),
        (HUB + "/", [], (f"{HUB}/oauth/token",)),
        (
            HUB,
            ["https://ledger.internal/oauth/token", f"{HUB}/oauth/token"],
            (f"{HUB}/oauth/token", "https://ledger.internal/oauth/token"),
        ),
        (None, ["https://ledger.internal/oauth/token"], ("https://ledger.internal/oauth/token",)),
        (None, [], ()),
    ],
)
def test_audiences_come_from_the_settings(
    public_url: str | None, extra: list[str], expected: tuple[str, ...]
) -> None:
    assert expected_audiences(public_url, extra) == expected


@pytest.fixture(scope="module")
def key() -> ECKey:
    return ECKey.generate_key("P-384", parameters={"kid": "es-1"})


def assertion(key: ECKey, aud: Any) -> str:
    claims = {"iss": CLIENT_ID, "sub": CLIENT_ID, "aud": aud, "exp": NOW + 240}
    return jwt.encode(
        {"alg": "ES384", "kid": "es-1"}, {**claims, "jti": uuid.uuid4().hex}, key, ["ES384"]
    )


def check(key: ECKey, aud: Any, audiences: tuple[str, ...]) -> None:
    client = RegisteredClient(
        CLIENT_ID, "hospital-a", "chronic-care", {"keys": [key.as_dict(private=False)]}
    )
    check_client_assertion(
        assertion(key, aud), client=client, audiences=audiences, now=NOW, jti_memory=JtiMemory()
    )


def test_an_assertion_names_one_of_the_configured_audiences(key: ECKey) -> None:
    both = expected_audiences(HUB, ["https://ledger.internal/oauth/token"])
    check(key, f"{HUB}/oauth/token", both)
    check(key, "https://ledger.internal/oauth/token", both)
    check(key, ["https://elsewhere.example/oauth/token", f"{HUB}/oauth/token"], both)
    for wrong in ("http://127.0.0.1:8080/oauth/token", ["https://elsewhere.example/x"], 7):
        with pytest.raises(OAuthError, match=f"aud must be the token endpoint {HUB}/oauth/token"):
            check(key, wrong, both)


def test_with_no_audience_configured_no_assertion_passes(key: ECKey) -> None:
    with pytest.raises(OAuthError, match="none configured") as err:
        check(key, "http://127.0.0.1:8080/oauth/token", ())
    assert err.value.status == 401


def token(registration: str = "v1") -> AccessToken:
    return AccessToken(CLIENT_ID, "hospital-a", "chronic-care", (), NOW + 300, "j", registration)


def test_a_token_is_good_while_its_registration_is_current() -> None:
    check_current_registration(token("v1"), {CLIENT_ID: "v1"})
    with pytest.raises(InvalidToken, match="registered again since this token was issued"):
        check_current_registration(token("v1"), {CLIENT_ID: "v2"})
    with pytest.raises(InvalidToken, match="no longer registered"):
        check_current_registration(token("v1"), {"someone-else": "v1"})


def test_tokens_carry_their_registration_and_need_one() -> None:
    signing = OKPKey.generate_key("Ed25519")
    raw, issued = issue_access_token(
        key=signing,
        issuer=HUB,
        client_id=CLIENT_ID,
        org="hospital-a",
        pilot="chronic-care",
        scopes=parse_scopes("system/Observation.rs"),
        registration="v7",
        now=NOW,
    )
    assert issued.registration == "v7"
    assert check_access_token(raw, key=signing, issuer=HUB, now=NOW).registration == "v7"
    claims = {
        "iss": HUB,
        "aud": HUB,
        "client_id": CLIENT_ID,
        "org": "hospital-a",
        "pilot": "chronic-care",
        "scope": "system/Observation.rs",
        "exp": NOW + 60,
        "jti": "j",
    }
    unversioned = jwt.encode({"alg": "Ed25519", "typ": TOKEN_TYPE}, claims, signing, ["Ed25519"])
    with pytest.raises(InvalidToken, match="names no client registration"):
        check_access_token(unversioned, key=signing, issuer=HUB, now=NOW)
