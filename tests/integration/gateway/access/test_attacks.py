"""The hostile world at the token endpoint and on the data routes: forged and replayed
assertions, tokens of another pilot, missing purposes, SQL in every parameter."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import urllib.parse

import pytest
from joserfc.jwk import ECKey

from tests.support.access import ATTACK_SUBJECT as SUBJECT
from tests.support.access import HOSPITAL, HospitalClient, consent_document, http
from tests.support.hub import ThreadHub


def _b64(value: bytes) -> str:
    return base64.urlsafe_b64encode(value).rstrip(b"=").decode()


def _unsigned(client: HospitalClient, alg: str, key: bytes = b"") -> str:
    header = _b64(json.dumps({"alg": alg, "kid": client.kid, "typ": "JWT"}).encode())
    now = int(time.time())
    claims = _b64(
        json.dumps(
            {
                "iss": client.client_id,
                "sub": client.client_id,
                "aud": client.token_url,
                "exp": now + 200,
                "jti": str(now) + alg,
            }
        ).encode()
    )
    signing_input = f"{header}.{claims}".encode()
    sig = _b64(hmac.new(key, signing_input, hashlib.sha256).digest()) if key else ""
    return f"{header}.{claims}.{sig}"


def test_good_assertions_get_short_lived_tokens(hospital: HospitalClient) -> None:
    status, body = hospital.token_request(scope="system/Observation.rs system/Patient.cud")
    assert status == 200, body
    assert body["token_type"] == "bearer" and 0 < body["expires_in"] <= 300
    assert body["scope"] == "system/Observation.rs"
    eddsa = HospitalClient(hospital.hub, "php-eddsa", HOSPITAL, alg="EdDSA").register()
    assert eddsa.token_request()[0] == 200


def test_smart_configuration(access_hub: ThreadHub) -> None:
    status, _, conf = http("GET", access_hub.http_url + "/.well-known/smart-configuration")
    assert status == 200
    assert conf["token_endpoint"] == access_hub.http_url + "/oauth/token"
    assert conf["token_endpoint_auth_methods_supported"] == ["private_key_jwt"]
    assert {"ES384", "EdDSA"} <= set(conf["token_endpoint_auth_signing_alg_values_supported"])


@pytest.mark.parametrize(
    "attack",
    ["alg_none", "hs_confusion", "expired", "wrong_audience", "wrong_key", "too_long", "unknown"],
)
def test_bad_assertions_are_invalid_client(hospital: HospitalClient, attack: str) -> None:
    public_pem = hospital.key.as_pem(private=False)
    assertion = {
        "alg_none": lambda: _unsigned(hospital, "none"),
        "hs_confusion": lambda: _unsigned(hospital, "HS256", public_pem),
        "expired": lambda: hospital.assertion(exp_in=-120),
        "wrong_audience": lambda: hospital.assertion(aud="https://evil.example/oauth/token"),
        "wrong_key": lambda: hospital.assertion(key=ECKey.generate_key("P-384", private=True)),
        "too_long": lambda: hospital.assertion(exp_in=3600),
        "unknown": lambda: HospitalClient(hospital.hub, "nobody", HOSPITAL).assertion(),
    }[attack]()
    status, body = hospital.token_request(assertion)
    assert status == 401, body
    assert body["error"] == "invalid_client" and body["error_description"]


def test_a_replayed_jti_is_refused(hospital: HospitalClient) -> None:
    assertion = hospital.assertion(jti="once-only")
    assert hospital.token_request(assertion)[0] == 200
    status, body = hospital.token_request(assertion)
    assert status == 401 and "jti" in body["error_description"]


def test_malformed_token_requests(hospital: HospitalClient) -> None:
    def post(form: dict[str, str], ctype: str = "application/x-www-form-urlencoded") -> tuple:  # type: ignore[type-arg]
        status, _, body = http(
            "POST",
            hospital.token_url,
            body=urllib.parse.urlencode(form).encode(),
            headers={"Content-Type": ctype},
        )
        return status, body["error"]

    good = {
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": hospital.assertion(),
        "scope": "system/Observation.rs",
    }
    assert post({**good, "grant_type": "password"}) == (400, "unsupported_grant_type")
    assert post({**good, "client_assertion_type": "x"}) == (400, "invalid_request")
    assert post({**good, "scope": "openid"}) == (400, "invalid_scope")
    assert post({k: v for k, v in good.items() if k != "scope"}) == (400, "invalid_request")
    assert post(good, "application/json") == (400, "invalid_request")


def test_tokens_and_purposes_on_data_routes(
    access_hub: ThreadHub, hospital: HospitalClient
) -> None:
    token = hospital.token()
    search = f"/fhir/Observation?subject=Patient/{SUBJECT}"
    assert hospital.call("GET", search, "not-a-token")[0] == 401
    status, _, outcome = hospital.call("GET", search, token, purpose=None)
    assert status == 400 and outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["details"]["coding"][0]["code"] == "purpose_missing"
    status, _, outcome = hospital.call("GET", search, token, purpose="SHOPPING")
    assert status == 400 and "PurposeOfUse" in outcome["issue"][0]["diagnostics"]
    # Policy: a treating hospital may not read for research; break-glass is allowed here.
    assert hospital.call("GET", search, token, purpose="HRESCH")[0] == 403
    status, _, bundle = hospital.call("GET", search, token, purpose="ETREAT")
    assert status == 200 and bundle["total"] == 0


def test_a_token_of_one_pilot_is_refused_for_another(
    access_hub: ThreadHub, hospital: HospitalClient
) -> None:
    referral = HospitalClient(
        access_hub, "php-referral", HOSPITAL, pilot="cross-hospital-referral"
    ).register()
    token = referral.token()
    status, _, body = referral.call(
        "GET", "/api/v1/records?pilot=chronic-care&type=stats.chronic-care-weekly", token
    )
    assert status == 403 and body["error"] == "wrong_pilot"
    search = f"/fhir/Observation?subject=Patient/{SUBJECT}&pilot=chronic-care"
    status, _, outcome = referral.call("GET", search, token)
    assert status == 403 and outcome["issue"][0]["code"] == "forbidden"
    # A consent recorded in chronic-care is invisible from the referral pilot.
    chronic = hospital.token()
    created = hospital.call(
        "POST", "/fhir/Consent", chronic, body=consent_document("c-pilot-1", SUBJECT)
    )
    assert created[0] == 201
    assert referral.call("GET", "/fhir/Consent/c-pilot-1", token)[0] == 404


INJECTIONS = [
    "' OR '1'='1",
    "1; DROP TABLE records; --",
    "Patient/x' UNION SELECT payload FROM bodies --",
    "%27%20OR%201=1",
    '" OR ""="',
    "../../etc/passwd",
]


@pytest.mark.parametrize("bad", INJECTIONS)
def test_sql_in_every_parameter_is_refused_or_harmless(
    access_hub: ThreadHub, hospital: HospitalClient, bad: str
) -> None:
    token = hospital.token()
    before = access_hub.hub.ledger.reader.conn.execute("SELECT count(*) FROM bodies").fetchone()
    q = urllib.parse.quote
    paths = [
        f"/fhir/Observation?subject={q(bad)}",
        f"/fhir/Observation?subject=Patient/{SUBJECT}&date={q(bad)}",
        f"/fhir/Observation?subject=Patient/{SUBJECT}&code={q(bad)}",
        f"/fhir/Observation?subject=Patient/{SUBJECT}&_count={q(bad)}",
        f"/fhir/Observation?subject=Patient/{SUBJECT}&pilot={q(bad)}",
        f"/fhir/Consent/{q(bad, safe='')}",
        f"/api/v1/records?pilot={q(bad)}&type=city.air-quality",
        f"/api/v1/records?pilot=chronic-care&type={q(bad)}",
        f"/api/v1/records?pilot=chronic-care&type=stats.chronic-care-weekly&from={q(bad)}",
        f"/api/v1/audit?subject={q(bad)}",
    ]
    for path in paths:
        status, _, body = hospital.call("GET", path, token)
        assert status in (400, 403, 404), (path, status, body)
    after = access_hub.hub.ledger.reader.conn.execute("SELECT count(*) FROM bodies").fetchone()
    assert before == after
