"""Hostile HTTP against a live hub: forged access tokens (alg none, HS/ES confusion with the
hub's public key as the HMAC secret, a signed token edited to another pilot, expired or
foreign-issuer tokens signed with the hub's own key), and oversized, deeply nested and
invalid UTF-8 bodies, and traversal in paths. Each is a 4xx with a JSON (or FHIR
OperationOutcome) error, never a 500, and appends nothing but ``access`` entries.

Already covered, not repeated: forged client assertions (alg none, HS/ES confusion,
expired, wrong audience, replayed jti) and a token of one pilot used on another in
tests/integration/gateway/access/test_attacks.py, SQL-injection strings in every query parameter
there too, and the whole OpenAPI surface fuzzed by tests/integration/gateway/access/
test_schemathesis.py.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import pytest

from gateway.smart.key import load_or_create_token_key
from gateway.smart.scopes import parse_scopes
from gateway.smart.tokens import issue_access_token
from tests.support.access import ATTACK_SUBJECT as SUBJECT
from tests.support.access import HospitalClient, consent_document, http
from tests.support.hub import ThreadHub

from .conftest import AttackTally

SEARCH = f"/fhir/Observation?subject=Patient/{SUBJECT}"


def _b64(value: bytes) -> str:
    return base64.urlsafe_b64encode(value).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def claims_of(token: str) -> dict[str, Any]:
    return dict(json.loads(_unb64(token.split(".")[1])))


def hmac_token(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    if not secret:
        return signing_input + "."
    sig = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(sig)}"


def bodies(hub: ThreadHub) -> int:
    return int(hub.hub.ledger.reader.conn.execute("SELECT count(*) FROM bodies").fetchone()[0])


def non_access_entries(hub: ThreadHub) -> int:
    entries = hub.get_json("/api/v1/ledger/entries?start=0&end=1000")["entries"]
    return sum(1 for e in entries if e["kind"] != "access")


def forged_tokens(hub: ThreadHub, hospital: HospitalClient) -> dict[str, str]:
    real = hospital.token()
    claims = claims_of(real)
    header = json.loads(_unb64(real.split(".")[0]))
    token_key_path = Path(hub.db_path.parent / (hub.db_path.name + ".token.jwk"))
    key = load_or_create_token_key(token_key_path).key
    public = key.as_dict(private=False)
    x = _unb64(public["x"])
    now = int(time.time())
    head, _, sig = real.split(".")

    def signed(**changes: Any) -> str:
        """A token signed with the hub's own key, but wrong in one respect."""
        fields: dict[str, Any] = {
            "key": key,
            "issuer": claims["iss"],
            "client_id": claims["client_id"],
            "org": claims["org"],
            "pilot": claims["pilot"],
            "scopes": parse_scopes(claims["scope"]),
            "registration": claims["registration"],
            "now": now,
        }
        fields.update(changes)
        return issue_access_token(**fields)[0]

    return {
        "alg none": hmac_token({**header, "alg": "none"}, claims, b""),
        "HS256 keyed with the public x": hmac_token({**header, "alg": "HS256"}, claims, x),
        "HS256 keyed with the public JWK": hmac_token(
            {**header, "alg": "HS256"}, claims, json.dumps(public).encode()
        ),
        "ES256 header on an Ed25519 signature": (
            _b64(json.dumps({**header, "alg": "ES256"}).encode()) + "." + real.split(".", 1)[1]
        ),
        "claims edited to another pilot": (
            f"{head}.{_b64(json.dumps({**claims, 'pilot': 'cross-hospital-referral'}).encode())}"
            f".{sig}"
        ),
        "claims edited to a wider scope": (
            f"{head}.{_b64(json.dumps({**claims, 'scope': 'system/*.cruds'}).encode())}.{sig}"
        ),
        "signature stripped": f"{head}.{real.split('.')[1]}.",
        "expired (hub's key)": signed(now=now - 3600),
        "another issuer (hub's key)": signed(issuer="https://evil.example"),
        "a signed token from another key": issue_access_token(
            key=jwt_key(),
            issuer=claims["iss"],
            client_id=claims["client_id"],
            org=claims["org"],
            pilot=claims["pilot"],
            scopes=parse_scopes(claims["scope"]),
            registration=claims["registration"],
            now=now,
        )[0],
        "10 kB of token": "A" * 10_000,
        "not a JWT": "x.y.z",
    }


def jwt_key() -> Any:
    from joserfc.jwk import OKPKey

    return OKPKey.generate_key("Ed25519", private=True)


def test_forged_access_tokens_are_refused(
    access_hub: ThreadHub, hospital: HospitalClient, attacks: AttackTally
) -> None:
    before = bodies(access_hub), non_access_entries(access_hub)
    tokens = forged_tokens(access_hub, hospital)
    for name, token in tokens.items():
        for path in (SEARCH, "/fhir/Consent/c-1", "/api/v1/records?pilot=chronic-care&type=x.y"):
            status, _, body = hospital.call("GET", path, token)
            # aiohttp itself refuses a header line past 8190 bytes, with a 400.
            assert status == (400 if name == "10 kB of token" else 401), (name, path, body)
            assert body, name
    attacks.tried("forged access tokens (HTTP)", len(tokens) * 3)
    assert (bodies(access_hub), non_access_entries(access_hub)) == before
    # The real token still works.
    assert hospital.call("GET", SEARCH, hospital.token())[0] in (200, 403)  # no consent: 403


BAD_BODIES: dict[str, bytes] = {
    "invalid UTF-8": b'{"resourceType": "Consent", "id": "\xff\xfe"}',
    "overlong UTF-8": b'{"resourceType": "Consent", "id": "\xc0\xaf"}',
    "lone surrogate": b'{"resourceType": "Consent", "id": "\\ud800"}',
    "10000-deep": b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
    "10000-deep array": b"[" * 10_000 + b"]" * 10_000,
    "8 MB": b'{"resourceType": "Consent", "note": "' + b"A" * (8 * 1024 * 1024) + b'"}',
    "not JSON": b"<Consent/>",
    "empty": b"",
    "NaN": b'{"resourceType": "Consent", "x": NaN}',
    "huge number": b'{"resourceType": "Consent", "x": 1e999999}',
    "duplicate keys": b'{"resourceType": "Consent", "resourceType": "Patient"}',
}


@pytest.mark.parametrize("name", list(BAD_BODIES))
def test_hostile_bodies_are_4xx_and_change_nothing(
    access_hub: ThreadHub, hospital: HospitalClient, attacks: AttackTally, name: str
) -> None:
    token = hospital.token()
    before = bodies(access_hub), non_access_entries(access_hub)
    headers = {
        "Authorization": f"Bearer {token}",
        "X-Purpose-Of-Use": "TREAT",
        "Content-Type": "application/fhir+json",
    }
    targets = [
        ("POST", "/fhir/Consent", headers),
        ("PUT", "/fhir/Consent/c-hostile", headers),
        (
            "POST",
            "/api/v1/admin/registry/orgs",
            {
                "Authorization": f"Bearer {access_hub.admin_token}",
                "Content-Type": "application/json",
            },
        ),
        ("POST", "/oauth/token", {"Content-Type": "application/x-www-form-urlencoded"}),
    ]
    for method, path, hdrs in targets:
        status, _, body = http(
            method, access_hub.http_url + path, body=BAD_BODIES[name], headers=hdrs
        )
        assert 400 <= status < 500, (name, path, status, str(body)[:300])
        assert body, (name, path)
    attacks.tried("hostile request bodies (HTTP)", len(targets))
    assert (bodies(access_hub), non_access_entries(access_hub)) == before
    assert access_hub.request("GET", "/readyz")[0] == 200


TRAVERSALS = [
    "/fhir/Consent/..%2F..%2F..%2Fetc%2Fpasswd",
    "/fhir/Consent/%2e%2e/%2e%2e/etc/passwd",
    "/fhir/Consent/....//....//etc/passwd",
    "/fhir/Consent/%00",
    "/fhir/Consent/%ff%fe",
    "/fhir/..%2fConsent",
    "/api/v1/ledger/entries?start=0&end=%ff",
    "/api/v1/ledger/proof/inclusion?index=-1&size=99999999999999999999999",
    "/api/v1/ledger/proof/consistency?first=%00&second=1",
    "/dashboard/../../../etc/passwd",
    "/static/..%2f..%2f..%2fpyproject.toml",
]


def test_traversal_and_garbage_in_paths(
    access_hub: ThreadHub, hospital: HospitalClient, attacks: AttackTally
) -> None:
    token = hospital.token()
    for path in TRAVERSALS:
        status, _, body = hospital.call("GET", path, token)
        assert 400 <= status < 500, (path, status, str(body)[:300])
        text = json.dumps(body) if not isinstance(body, str) else body
        assert "root:" not in text and "[project]" not in text, path
    attacks.tried("path traversal and garbage in URLs (HTTP)", len(TRAVERSALS))


def test_consent_of_one_pilot_cannot_be_withdrawn_from_another(
    access_hub: ThreadHub, hospital: HospitalClient, attacks: AttackTally
) -> None:
    token = hospital.token()
    created = hospital.call(
        "POST", "/fhir/Consent", token, body=consent_document("c-sec-1", SUBJECT)
    )
    assert created[0] == 201
    referral = HospitalClient(
        access_hub, "php-referral-sec", hospital.org, pilot="cross-hospital-referral"
    ).register()
    other = referral.token()
    status, _, _ = referral.call("POST", "/fhir/Consent/c-sec-1/$withdraw", other)
    assert status in (403, 404)
    status, _, _ = referral.call(
        "PUT", "/fhir/Consent/c-sec-1", other, body=consent_document("c-sec-1", SUBJECT)
    )
    assert status in (403, 404)
    attacks.tried("consent withdrawn or replaced from another pilot (HTTP)", 2)
    status, _, consent = hospital.call("GET", "/fhir/Consent/c-sec-1", token)
    assert status == 200 and consent["status"] == "active"
