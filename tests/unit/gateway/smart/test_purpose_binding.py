"""Purpose of use where standard B2B clients put it: the HL7 UDAP B2B extension of the client
assertion (``extensions.hl7-b2b.purpose_of_use``), bound into the access token; the
``X-Purpose-Of-Use`` header may narrow the token's purposes, never widen them. And the
scopes the hub grants are exactly the ones its discovery document lists."""

from __future__ import annotations

from typing import Any

import pytest
from joserfc.jwk import OKPKey

from gateway.access.purpose import PurposeError, PurposeNotGranted, request_purpose
from gateway.smart.assertion import b2b_purposes
from gateway.smart.errors import OAuthError
from gateway.smart.routes import SUPPORTED_SCOPES
from gateway.smart.scopes import SERVED_TYPES, grant, parse_scopes
from gateway.smart.tokens import check_access_token, issue_access_token

OID = "urn:oid:2.16.840.1.113883.5.8"


def b2b(purposes: Any) -> dict[str, Any]:
    return {"extensions": {"hl7-b2b": {"version": "1", "purpose_of_use": purposes}}}


def test_b2b_purposes_in_every_written_form() -> None:
    claims = b2b(
        [
            f"{OID}#TREAT",
            "http://terminology.hl7.org/CodeSystem/v3-ActReason|ETREAT",
            "CAREMGT",
            "TREAT",
        ]
    )
    assert b2b_purposes(claims) == ("TREAT", "ETREAT", "CAREMGT")
    assert b2b_purposes({}) == ()
    assert b2b_purposes({"extensions": {"other": {}}}) == ()


@pytest.mark.parametrize(
    "claims",
    [
        {"extensions": "hl7-b2b"},
        b2b([]),
        b2b("TREAT"),
        b2b([f"{OID}#SHOPPING"]),
        b2b(["urn:oid:1.2.3#TREAT"]),
        b2b([7]),
        b2b(["TREAT"] * 17),
        {"extensions": {"hl7-b2b": {"version": "1"}}},
    ],
)
def test_a_malformed_b2b_extension_is_refused_not_read_as_no_purpose(
    claims: dict[str, Any],
) -> None:
    with pytest.raises(OAuthError) as err:
        b2b_purposes(claims)
    assert err.value.error == "invalid_request" and "extensions" in err.value.description


def test_the_token_carries_its_purposes() -> None:
    key = OKPKey.generate_key("Ed25519")
    raw, issued = issue_access_token(
        key=key,
        issuer="http://127.0.0.1:1",
        client_id="c",
        org="o",
        pilot="p",
        scopes=parse_scopes("system/Observation.rs"),
        registration="v1",
        now=1_000,
        purposes=("TREAT", "CAREMGT"),
    )
    checked = check_access_token(raw, key=key, issuer="http://127.0.0.1:1", now=1_001)
    assert checked.purposes == issued.purposes == ("TREAT", "CAREMGT")


def test_the_header_narrows_the_token_and_never_widens_it() -> None:
    assert request_purpose("TREAT", ()) == "TREAT"
    assert request_purpose(None, ("TREAT",)) == "TREAT"
    assert request_purpose("CAREMGT", ("TREAT", "CAREMGT")) == "CAREMGT"
    assert request_purpose(f"{OID}#TREAT", ("TREAT", "CAREMGT")) == "TREAT"
    with pytest.raises(PurposeNotGranted):
        request_purpose("ETREAT", ("TREAT",))
    with pytest.raises(PurposeError, match="name the one"):
        request_purpose(None, ("TREAT", "CAREMGT"))
    with pytest.raises(PurposeError):
        request_purpose(None, ())


def test_discovery_lists_exactly_what_the_token_endpoint_grants() -> None:
    everything = parse_scopes("system/*.cruds")
    for scope in SUPPORTED_SCOPES:
        (granted,) = grant(parse_scopes(scope), everything)
        assert str(granted) == scope
    # Through the wildcard, nothing for a type the hub has no endpoint for.
    with pytest.raises(OAuthError, match="none of the requested"):
        grant(parse_scopes("system/Patient.rs"), parse_scopes("system/*.rs"))
    assert {s.split("/")[1].split(".")[0] for s in SUPPORTED_SCOPES} == {*SERVED_TYPES, "*"}
