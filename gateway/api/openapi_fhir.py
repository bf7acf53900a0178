"""The OpenAPI paths of the FHIR facade: the CapabilityStatement, the searches (GET and
POST ``_search``), the read interaction, and Consents (search, create, read, update,
``$withdraw``). Their parameters are the ones ``gateway/fhir/params.py`` and
``gateway/fhir/results.py`` take."""

from __future__ import annotations

from typing import Any

from ..access.purpose import HEADER
from ..fhir.search import SEARCHABLE
from .openapi_parts import FHIR, FORM, fhir_response, query, retry_later

PURPOSE = {
    "name": HEADER,
    "in": "header",
    "required": False,
    "description": "HL7 v3 PurposeOfUse code (v3-ActReason): TREAT, ETREAT (break-glass), "
    "PUBHLTH, HRESCH, GOV, ... Required on every data request unless the access token is "
    "bound to one purpose (extensions.hl7-b2b.purpose_of_use in the client assertion); with "
    "a token's purposes it may name one of them, never another. The decision, allow or deny, "
    "is an access entry on the log.",
    "schema": {"type": "string", "maxLength": 120},
}
PREFER = {
    "name": "Prefer",
    "in": "header",
    "required": False,
    "description": "handling=lenient (default: unsupported parameters are ignored and named "
    "in an OperationOutcome entry) or handling=strict (they are a 400)",
    "schema": {"type": "string", "maxLength": 200},
}
BEARER: list[dict[str, list[str]]] = [{"smartBearer": []}]


FHIR_ERRORS = {
    "400": fhir_response("OperationOutcome: bad parameter, purpose missing or unknown"),
    "401": fhir_response("OperationOutcome: missing, expired or foreign access token"),
    "403": fhir_response("OperationOutcome: policy or consent denies (the denial is on the log)"),
    "404": fhir_response("OperationOutcome: no such resource"),
    "406": fhir_response("OperationOutcome: only application/fhir+json is served"),
    "409": fhir_response("OperationOutcome: conflict"),
    "410": fhir_response("OperationOutcome: erased"),
    "503": retry_later(
        fhir_response("OperationOutcome: hub not ready, or the ledger's storage unavailable")
    ),
}


def _results(sortable: bool) -> list[dict[str, Any]]:
    """FHIR search result parameters (gateway/fhir/results.py)."""
    sort = [query("_sort", "date or -date (by the record's time)")] if sortable else []
    return [
        query("_count", "Page size 0..100 (default 20); 0: the total only", kind="integer"),
        query("_offset", "Paging offset (from the next link)", kind="integer"),
        *sort,
        query("_summary", "count (the total only) or false"),
        query("_total", "none, estimate or accurate"),
        query("_elements", "Top-level elements to keep, comma-separated"),
        query("_format", "json"),
    ]


def _filters() -> list[dict[str, Any]]:
    return [
        query("subject", "Patient/<pseudonym> (required, or patient)"),
        query("patient", "Patient/<pseudonym>"),
        {
            "name": "date",
            "in": "query",
            "required": False,
            "description": "[eq|ge|gt|le|lt]date or dateTime; repeatable",
            "schema": {"type": "array", "items": {"type": "string"}},
            "style": "form",
            "explode": True,
        },
        query("code", "LOINC codes, comma-separated"),
        query("pilot", "Must be the access token's pilot"),
    ]


def _search(resource: str) -> dict[str, Any]:
    return {
        "get": {
            "summary": f"Search a patient's {resource} resources (searchset Bundle)",
            "tags": ["fhir"],
            "security": BEARER,
            "parameters": [PURPOSE, PREFER, *_filters(), *_results(sortable=True)],
            "responses": {
                "200": fhir_response("searchset Bundle with self/next links"),
                **FHIR_ERRORS,
            },
        }
    }


def _search_by_post(resource: str) -> dict[str, Any]:
    fields = {p["name"]: p["schema"] for p in [*_filters(), *_results(sortable=True)]}
    return {
        "post": {
            "summary": f"Search {resource} with the parameters form-encoded (as GET does)",
            "tags": ["fhir"],
            "security": BEARER,
            "parameters": [PURPOSE, PREFER],
            "requestBody": {
                "required": True,
                "content": {FORM: {"schema": {"type": "object", "properties": fields}}},
            },
            "responses": {
                "200": fhir_response("searchset Bundle with self/next links"),
                "415": fhir_response("OperationOutcome: the body is not a form"),
                **FHIR_ERRORS,
            },
        }
    }


def _read(resource: str) -> dict[str, Any]:
    return {
        "get": {
            "summary": f"Read one {resource} (a searchset entry's fullUrl), consent-gated",
            "tags": ["fhir"],
            "security": BEARER,
            "parameters": [
                PURPOSE,
                {
                    "name": "id",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "maxLength": 64},
                },
            ],
            "responses": {
                "200": fhir_response(f"The {resource} as stored"),
                "405": fhir_response("OperationOutcome: an interaction not supported"),
                **FHIR_ERRORS,
            },
        }
    }


_CONSENT_ID = {
    "name": "id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[A-Za-z0-9\\-.]{1,64}$"},
}
_CONSENT_BODY = {"required": True, "content": {FHIR: {"schema": {"type": "object"}}}}

FHIR_PATHS: dict[str, dict[str, Any]] = {
    "/fhir/metadata": {
        "get": {
            "summary": "CapabilityStatement",
            "tags": ["fhir"],
            "responses": {"200": fhir_response("CapabilityStatement")},
        }
    },
    **{f"/fhir/{r}": _search(r) for r in SEARCHABLE},
    **{f"/fhir/{r}/_search": _search_by_post(r) for r in SEARCHABLE},
    **{f"/fhir/{r}/{{id}}": _read(r) for r in SEARCHABLE},
    "/fhir/Consent": {
        "get": {
            "summary": "A patient's Consents in the token's pilot (consent administrators, "
            "auditors); an access entry on the log",
            "tags": ["consent"],
            "security": BEARER,
            "parameters": [
                PURPOSE,
                PREFER,
                query("patient", "Patient/<pseudonym>", required=True),
                query("status", "Consent statuses, comma-separated"),
                query("pilot", "Must be the access token's pilot"),
                *_results(sortable=False),
            ],
            "responses": {"200": fhir_response("searchset Bundle of Consents"), **FHIR_ERRORS},
        },
        "post": {
            "summary": "Create a Consent (consent administrators); a consent entry on the log",
            "tags": ["consent"],
            "security": BEARER,
            "requestBody": _CONSENT_BODY,
            "responses": {"201": fhir_response("The stored Consent"), **FHIR_ERRORS},
        },
    },
    "/fhir/Consent/{id}": {
        "get": {
            "summary": "Read a Consent's current version (an access entry about its person)",
            "tags": ["consent"],
            "security": BEARER,
            "parameters": [_CONSENT_ID],
            "responses": {"200": fhir_response("Consent"), **FHIR_ERRORS},
        },
        "put": {
            "summary": "Update a Consent (a new version; a consent entry on the log)",
            "tags": ["consent"],
            "security": BEARER,
            "parameters": [_CONSENT_ID],
            "requestBody": _CONSENT_BODY,
            "responses": {"200": fhir_response("The stored Consent"), **FHIR_ERRORS},
        },
    },
    "/fhir/Consent/{id}/$withdraw": {
        "post": {
            "summary": "Withdraw a Consent from the next request; erase=true deletes the "
            "bodies it covered (erasure entries on the log)",
            "tags": ["consent"],
            "security": BEARER,
            "parameters": [
                _CONSENT_ID,
                {
                    "name": "erase",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "string", "enum": ["true", "false"]},
                },
            ],
            "responses": {"200": fhir_response("The withdrawn Consent"), **FHIR_ERRORS},
        }
    },
}
