"""Tokens that outlive their client's registration. A client registered again with fewer
scopes kept searching with its old token's scopes until the token expired (up to 300 s), and
a removed (now: revoked) client's tokens kept working. Each token now carries the version of the
registration it was issued under, checked on every request (a cached token too): the old
token is a 401 at once, and a new one carries only what the client may now ask for."""

from __future__ import annotations

from joserfc.jwk import ECKey

from tests.support.access import ATTACK_SUBJECT as SUBJECT
from tests.support.access import HospitalClient, consent_document
from tests.support.hub import ThreadHub

from .conftest import AttackTally

SEARCH = f"/fhir/Observation?subject=Patient/{SUBJECT}"


def test_a_narrowed_registration_ends_the_wider_token(
    access_hub: ThreadHub, hospital: HospitalClient, attacks: AttackTally
) -> None:
    wide = hospital.token()
    status, _, body = hospital.call(
        "POST", "/fhir/Consent", wide, body=consent_document("c-reg-1", SUBJECT)
    )
    assert status == 201, body
    assert hospital.call("GET", "/fhir/Consent/c-reg-1", wide)[0] == 200  # verified and cached

    hospital.register(["system/Observation.rs"])
    for method, path, body in (
        ("GET", "/fhir/Consent/c-reg-1", None),
        ("PUT", "/fhir/Consent/c-reg-1", consent_document("c-reg-1", SUBJECT)),
        ("GET", SEARCH, None),
    ):
        status, _, outcome = hospital.call(method, path, wide, body=body)
        assert status == 401, (method, path, status, outcome)
        assert outcome["resourceType"] == "OperationOutcome"
        assert "registered again" in outcome["issue"][0]["diagnostics"]
    attacks.tried("token of an earlier registration (HTTP)", 3)

    status, answer = hospital.token_request(scope="system/Consent.cru")
    assert status == 400 and answer["error"] == "invalid_scope", answer
    narrow = hospital.token("system/Observation.rs")
    assert hospital.call("GET", SEARCH, narrow)[0] == 200
    status, _, _ = hospital.call("GET", "/fhir/Consent/c-reg-1", narrow)
    assert status == 403  # the new token has no Consent scope


def test_a_revoked_client_s_tokens_stop_working(
    access_hub: ThreadHub, hospital: HospitalClient, attacks: AttackTally
) -> None:
    token = hospital.token()
    status, _, body = hospital.call(
        "POST", "/fhir/Consent", token, body=consent_document("c-reg-2", SUBJECT)
    )
    assert status == 201, body
    assert hospital.call("GET", SEARCH, token)[0] == 200
    revoke = {"client_id": hospital.client_id, "reason": "test"}
    status, answer = access_hub.request("POST", "/api/v1/admin/clients/revoke", revoke)
    assert status == 201 and answer["entry"]["client"] == hospital.client_id, answer

    status, _, outcome = hospital.call("GET", SEARCH, token)
    assert status == 401, outcome
    assert "client revoked" in outcome["issue"][0]["diagnostics"]
    status, _, body = hospital.call("GET", "/api/v1/records?pilot=chronic-care&type=x.y", token)
    assert status == 401 and body["error"] == "invalid_token", body
    status, answer = hospital.token_request()
    assert status == 401 and answer["error"] == "invalid_client", answer
    attacks.tried("token of a revoked client (HTTP)", 3)

    unknown = {"client_id": "nobody-ehr", "reason": "test"}
    assert access_hub.request("POST", "/api/v1/admin/clients/revoke", unknown)[0] == 404
    bad = {"client_id": "bad id", "reason": "test"}
    assert access_hub.request("POST", "/api/v1/admin/clients/revoke", bad)[0] == 400
    # Registered again with a new key, the client gets a token that works.
    hospital.key = ECKey.generate_key("P-384", private=True)
    hospital.register()
    assert hospital.call("GET", SEARCH, hospital.token())[0] == 200
