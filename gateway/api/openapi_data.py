"""The OpenAPI paths of access control: the token endpoint and SMART discovery,
hospital clients, city records and the audit view, and (from ``openapi_fhir``) the FHIR
facade and Consents.

Purpose of use: every data request states one (HL7 v3 PurposeOfUse), in the
``X-Purpose-Of-Use`` header or bound into its access token; the header is a declared
parameter of each data operation.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from ..access.clients import ClientList, ClientRegistration
from ..access.revocation import ClientRevoke
from . import models as m
from .openapi_fhir import BEARER, FHIR_PATHS, PURPOSE
from .openapi_parts import FORM, JSON, json_response, query, ref, retry_later

JSON_ERRORS = {
    "400": json_response("Bad parameter or purpose", ref(m.ErrorBody)),
    "401": json_response("Missing or invalid access token", ref(m.ErrorBody)),
    "403": json_response("Denied (on the log)", ref(m.ErrorBody)),
    "503": retry_later(
        json_response("Not ready, or the ledger's storage unavailable", ref(m.ErrorBody))
    ),
}
OAUTH_ERROR = {
    "type": "object",
    "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}},
    "required": ["error", "error_description"],
}


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
                "200": json_response(
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
                "400": json_response("OAuth error (RFC 6749 5.2)", OAUTH_ERROR),
                "401": json_response("invalid_client", OAUTH_ERROR),
            },
        }
    },
    "/.well-known/smart-configuration": {
        "get": {
            "summary": "SMART discovery: token endpoint, auth methods, algorithms, scopes",
            "tags": ["auth"],
            "responses": {"200": json_response("SMART configuration")},
        }
    },
    "/oauth/jwks": {
        "get": {
            "summary": "The public key of this hub's access tokens",
            "tags": ["auth"],
            "responses": {"200": json_response("JWK set")},
        }
    },
    "/api/v1/admin/clients": {
        "get": {
            "summary": "Registered hospital clients, each active or revoked (when, by whom, why)",
            "tags": ["admin"],
            "security": [{"adminToken": []}],
            "responses": {
                "200": json_response("Clients", ref(ClientList)),
                "401": json_response("Missing or wrong admin token", ref(m.ErrorBody)),
                "403": json_response("Admin API disabled", ref(m.ErrorBody)),
            },
        },
        "post": {
            "summary": "Register (or replace) a hospital client with its public JWK set",
            "tags": ["admin"],
            "security": [{"adminToken": []}],
            "requestBody": {
                "required": True,
                "content": {JSON: {"schema": ref(ClientRegistration)}},
            },
            "responses": {
                "201": json_response("Registered", ref(ClientRegistration)),
                "400": json_response("Bad registration", ref(m.ErrorBody)),
                "401": json_response("Missing or wrong admin token", ref(m.ErrorBody)),
                "403": json_response("Admin API disabled", ref(m.ErrorBody)),
                "404": json_response("Unknown pilot", ref(m.ErrorBody)),
                "409": json_response(
                    "Organisation not a member of the pilot, or a key a revocation cut off",
                    ref(m.ErrorBody),
                ),
            },
        },
    },
    "/api/v1/admin/clients/revoke": {
        "post": {
            "summary": "Revoke a hospital client: a client entry on the log (who, when, why);"
            " from the next request its tokens and assertions are refused, and its keys may"
            " not be registered again",
            "tags": ["admin"],
            "security": [{"adminToken": []}],
            "requestBody": {"required": True, "content": {JSON: {"schema": ref(ClientRevoke)}}},
            "responses": {
                "201": json_response("The committed client entry", ref(m.CommittedEntry)),
                "400": json_response("Bad request body", ref(m.ErrorBody)),
                "401": json_response("Missing or wrong admin token", ref(m.ErrorBody)),
                "403": json_response("Admin API disabled", ref(m.ErrorBody)),
                "404": json_response("No such client", ref(m.ErrorBody)),
                "409": json_response("Revoked already", ref(m.ErrorBody)),
                "503": retry_later(
                    json_response("The ledger's storage unavailable", ref(m.ErrorBody))
                ),
            },
        },
    },
    **FHIR_PATHS,
    "/api/v1/records": {
        "get": {
            "summary": "Non-personal (city) records by pilot, type and time",
            "tags": ["data"],
            "security": BEARER,
            "parameters": [
                PURPOSE,
                query("pilot", "Pilot id (the access token's)", required=True),
                query("type", "Data type id, e.g. city.air-quality", required=True),
                query("from", "From (YYYY-MM-DD or RFC 3339 UTC), inclusive"),
                query("to", "To, exclusive"),
                query("limit", "At most (default 100, at most 1000)", kind="integer"),
                query("after", "Cursor: the next_after of the previous page", kind="integer"),
            ],
            "responses": {"200": json_response("Records with their payloads"), **JSON_ERRORS},
        }
    },
    "/api/v1/audit": {
        "get": {
            "summary": "Every access entry about one person (auditors, consent administrators);"
            " the view is an access entry too, named by access_index",
            "tags": ["audit"],
            "security": BEARER,
            "parameters": [
                query("subject", "The person's pseudonym", required=True),
                query("limit", "Most recent N (default and at most 1000)", kind="integer"),
            ],
            "responses": {"200": json_response("Access entries with log indexes"), **JSON_ERRORS},
        }
    },
}

ACCESS_SCHEMAS: tuple[type[BaseModel], ...] = (ClientRegistration, ClientList, ClientRevoke)
SECURITY_SCHEMES = {
    "smartBearer": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "Access token from POST /oauth/token (SMART Backend Services)",
    }
}
