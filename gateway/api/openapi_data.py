"""The OpenAPI paths of access control (issue 5): the token endpoint and SMART discovery,
hospital clients, the FHIR facade, Consents, city records and the audit view.

Purpose of use: every data request carries the ``X-Purpose-Of-Use`` header (one HL7 v3
PurposeOfUse code); it is a declared, required parameter of each data operation here.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from ..access.clients import ClientList, ClientRegistration
from ..access.purpose import HEADER
from . import models as m

JSON = "application/json"
FHIR = "application/fhir+json"
FORM = "application/x-www-form-urlencoded"

PURPOSE = {
    "name": HEADER,
    "in": "header",
    "required": True,
    "description": "HL7 v3 PurposeOfUse code (v3-ActReason): TREAT, ETREAT (break-glass), "
    "PUBHLTH, HRESCH, GOV, ... Required on every data request; the decision, allow or deny, "
    "is an access entry on the log.",
    "schema": {"type": "string", "maxLength": 120},
}
BEARER: list[dict[str, list[str]]] = [{"smartBearer": []}]


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _json(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema or {"type": "object"}}}}


def _fhir(description: str) -> dict[str, Any]:
    return {"description": description, "content": {FHIR: {"schema": {"type": "object"}}}}


def _q(
    name: str, description: str, *, required: bool = False, kind: str = "string"
) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": kind}
    if kind == "integer":
        schema["minimum"] = 0
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": schema,
    }


FHIR_ERRORS = {
    "400": _fhir("OperationOutcome: bad parameter, purpose missing or unknown"),
    "401": _fhir("OperationOutcome: missing, expired or foreign access token"),
    "403": _fhir("OperationOutcome: policy or consent denies (the denial is on the log)"),
    "404": _fhir("OperationOutcome: no such resource"),
    "409": _fhir("OperationOutcome: conflict"),
    "410": _fhir("OperationOutcome: erased"),
    "503": _fhir("OperationOutcome: hub not ready"),
}
JSON_ERRORS = {
    "400": _json("Bad parameter or purpose", _ref(m.ErrorBody)),
    "401": _json("Missing or invalid access token", _ref(m.ErrorBody)),
    "403": _json("Denied (on the log)", _ref(m.ErrorBody)),
    "503": _json("Not ready", _ref(m.ErrorBody)),
}
OAUTH_ERROR = {
    "type": "object",
    "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}},
    "required": ["error", "error_description"],
}


def _search(resource: str) -> dict[str, Any]:
    return {
        "get": {
            "summary": f"Search a patient's {resource} resources (searchset Bundle)",
            "tags": ["fhir"],
            "security": BEARER,
            "parameters": [
                PURPOSE,
                _q("subject", "Patient/<pseudonym> (required, or patient)"),
                _q("patient", "Patient/<pseudonym>"),
                {
                    "name": "date",
                    "in": "query",
                    "required": False,
                    "description": "[eq|ge|gt|le|lt]date or dateTime; repeatable",
                    "schema": {"type": "array", "items": {"type": "string"}},
                    "style": "form",
                    "explode": True,
                },
                _q("code", "LOINC codes, comma-separated"),
                _q("_count", "Page size 1..100 (default 20)", kind="integer"),
                _q("_offset", "Paging offset (from the next link)", kind="integer"),
                _q("pilot", "Must be the access token's pilot"),
                _q("_format", "json"),
            ],
            "responses": {"200": _fhir("searchset Bundle with self/next links"), **FHIR_ERRORS},
        }
    }


_CONSENT_ID = {
    "name": "id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[A-Za-z0-9\\-.]{1,64}$"},
}
_CONSENT_BODY = {"required": True, "content": {FHIR: {"schema": {"type": "object"}}}}

ACCESS_PATHS: dict[str, dict[str, Any]] = {
    "/oauth/token": {
        "post": {
            "summary": "SMART Backend Services token (client_credentials + private_key_jwt)",
            "tags": ["auth"],
            "requestBody": {
                "required": True,
                "content": {
                    FORM: {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "grant_type": {"type": "string", "enum": ["client_credentials"]},
                                "client_assertion_type": {"type": "string"},
                                "client_assertion": {"type": "string"},
                                "scope": {"type": "string"},
                                "client_id": {"type": "string"},
                            },
                            "required": [
                                "grant_type",
                                "client_assertion_type",
                                "client_assertion",
                                "scope",
                            ],
                        }
                    }
                },
            },
            "responses": {
                "200": _json(
                    "Access token (bearer, at most 300 s)",
                    {
                        "type": "object",
                        "properties": {
                            "access_token": {"type": "string"},
                            "token_type": {"type": "string"},
                            "expires_in": {"type": "integer", "maximum": 300},
                            "scope": {"type": "string"},
                        },
                    },
                ),
                "400": _json("OAuth error (RFC 6749 5.2)", OAUTH_ERROR),
                "401": _json("invalid_client", OAUTH_ERROR),
            },
        }
    },
    "/.well-known/smart-configuration": {
        "get": {
            "summary": "SMART discovery: token endpoint, auth methods, algorithms, scopes",
            "tags": ["auth"],
            "responses": {"200": _json("SMART configuration")},
        }
    },
    "/oauth/jwks": {
        "get": {
            "summary": "The public key of this hub's access tokens",
            "tags": ["auth"],
            "responses": {"200": _json("JWK set")},
        }
    },
    "/api/v1/admin/clients": {
        "get": {
            "summary": "Registered hospital clients",
            "tags": ["admin"],
            "security": [{"adminToken": []}],
            "responses": {
                "200": _json("Clients", _ref(ClientList)),
                "401": _json("Missing or wrong admin token", _ref(m.ErrorBody)),
                "403": _json("Admin API disabled", _ref(m.ErrorBody)),
            },
        },
        "post": {
            "summary": "Register (or replace) a hospital client with its public JWK set",
            "tags": ["admin"],
            "security": [{"adminToken": []}],
            "requestBody": {
                "required": True,
                "content": {JSON: {"schema": _ref(ClientRegistration)}},
            },
            "responses": {
                "201": _json("Registered", _ref(ClientRegistration)),
                "400": _json("Bad registration", _ref(m.ErrorBody)),
                "401": _json("Missing or wrong admin token", _ref(m.ErrorBody)),
                "403": _json("Admin API disabled", _ref(m.ErrorBody)),
                "404": _json("Unknown pilot", _ref(m.ErrorBody)),
                "409": _json("Organisation not a member of the pilot", _ref(m.ErrorBody)),
            },
        },
    },
    "/api/v1/admin/clients/{client_id}": {
        "delete": {
            "summary": "Remove a hospital client; its access tokens stop working at once",
            "tags": ["admin"],
            "security": [{"adminToken": []}],
            "parameters": [
                {
                    "name": "client_id",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,128}$"},
                }
            ],
            "responses": {
                "200": _json("Removed"),
                "400": _json("Bad client_id", _ref(m.ErrorBody)),
                "401": _json("Missing or wrong admin token", _ref(m.ErrorBody)),
                "403": _json("Admin API disabled", _ref(m.ErrorBody)),
                "404": _json("No such client", _ref(m.ErrorBody)),
            },
        },
    },
    "/fhir/metadata": {
        "get": {
            "summary": "CapabilityStatement",
            "tags": ["fhir"],
            "responses": {"200": _fhir("CapabilityStatement")},
        }
    },
    "/fhir/Observation": _search("Observation"),
    "/fhir/DiagnosticReport": _search("DiagnosticReport"),
    "/fhir/Composition": _search("Composition"),
    "/fhir/Consent": {
        "post": {
            "summary": "Create a Consent (consent administrators); a consent entry on the log",
            "tags": ["consent"],
            "security": BEARER,
            "requestBody": _CONSENT_BODY,
            "responses": {"201": _fhir("The stored Consent"), **FHIR_ERRORS},
        }
    },
    "/fhir/Consent/{id}": {
        "get": {
            "summary": "Read a Consent's current version",
            "tags": ["consent"],
            "security": BEARER,
            "parameters": [_CONSENT_ID],
            "responses": {"200": _fhir("Consent"), **FHIR_ERRORS},
        },
        "put": {
            "summary": "Update a Consent (a new version; a consent entry on the log)",
            "tags": ["consent"],
            "security": BEARER,
            "parameters": [_CONSENT_ID],
            "requestBody": _CONSENT_BODY,
            "responses": {"200": _fhir("The stored Consent"), **FHIR_ERRORS},
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
            "responses": {"200": _fhir("The withdrawn Consent"), **FHIR_ERRORS},
        }
    },
    "/api/v1/records": {
        "get": {
            "summary": "Non-personal (city) records by pilot, type and time",
            "tags": ["data"],
            "security": BEARER,
            "parameters": [
                PURPOSE,
                _q("pilot", "Pilot id (the access token's)", required=True),
                _q("type", "Data type id, e.g. city.air-quality", required=True),
                _q("from", "From (YYYY-MM-DD or RFC 3339 UTC), inclusive"),
                _q("to", "To, exclusive"),
                _q("limit", "At most (default 100, at most 1000)", kind="integer"),
                _q("after", "Cursor: the next_after of the previous page", kind="integer"),
            ],
            "responses": {"200": _json("Records with their payloads"), **JSON_ERRORS},
        }
    },
    "/api/v1/audit": {
        "get": {
            "summary": "Every access entry about one person (auditors, consent administrators)",
            "tags": ["audit"],
            "security": BEARER,
            "parameters": [
                _q("subject", "The person's pseudonym", required=True),
                _q("limit", "Most recent N (default and at most 1000)", kind="integer"),
            ],
            "responses": {"200": _json("Access entries with log indexes"), **JSON_ERRORS},
        }
    },
}

ACCESS_SCHEMAS: tuple[type[BaseModel], ...] = (ClientRegistration, ClientList)
SECURITY_SCHEMES = {
    "smartBearer": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "Access token from POST /oauth/token (SMART Backend Services)",
    }
}
