"""``GET /api/v1/openapi.json``: the spec of the HTTP surface. A test checks that its
paths and methods are exactly the application's routes."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel

from ..ingest.checks import REASONS
from ..ingest.receipts import Receipt
from . import models as m
from .openapi_data import ACCESS_PATHS, ACCESS_SCHEMAS, SECURITY_SCHEMES
from .openapi_parts import JSON, model_response, query, ref, retry_later, text_response

routes = web.RouteTableDef()

ERRORS = {
    "400": model_response(m.ErrorBody, "Bad parameter"),
    "503": model_response(m.ErrorBody, "Not ready"),
}
ADMIN_ERRORS = {
    "400": model_response(m.ErrorBody, "Bad request body"),
    "401": model_response(m.ErrorBody, "Missing or wrong admin token"),
    "403": model_response(m.ErrorBody, "Admin API disabled"),
    "404": model_response(m.ErrorBody, "Unknown org, source or key"),
    "409": model_response(m.ErrorBody, "Conflicts with the registry"),
}


def _admin_post(summary: str, body: type[BaseModel]) -> dict[str, Any]:
    return {
        "post": {
            "summary": summary,
            "tags": ["admin"],
            "security": [{"adminToken": []}],
            "requestBody": {"required": True, "content": {JSON: {"schema": ref(body)}}},
            "responses": {
                "201": model_response(m.RegistryChange, "Committed registry entries"),
                **ADMIN_ERRORS,
                "503": retry_later(model_response(m.ErrorBody, "The ledger's storage unavailable")),
            },
        }
    }


def _page(summary: str, media: str) -> dict[str, Any]:
    return {
        "get": {
            "summary": summary,
            "tags": ["dashboard"],
            "responses": {"200": {"description": summary, "content": {media: {}}}},
        }
    }


DASHBOARD_PATHS: dict[str, dict[str, Any]] = {
    "/": {
        "get": {
            "summary": "Redirect to the dashboard",
            "tags": ["dashboard"],
            "responses": {"302": {"description": "To /dashboard"}},
        }
    },
    "/dashboard": _page("The control-room dashboard page", "text/html"),
    "/dashboard/static/{name}": {
        "get": {
            "summary": "The dashboard's script, style sheet and icon",
            "tags": ["dashboard"],
            "parameters": [
                {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
            ],
            "responses": {
                "200": {"description": "The file"},
                "404": model_response(m.ErrorBody, "No such file"),
            },
        }
    },
    "/api/v1/dashboard/summary": {
        "get": {
            "summary": "Snapshot of the network: ledger, checkpoint, verification, rates,"
            " ingest counters, broker, city charts, consents, access decision counts (and"
            " the recent decisions themselves with the admin token)",
            "tags": ["dashboard"],
            "responses": {
                "200": {
                    "description": "Snapshot",
                    "content": {JSON: {"schema": {"type": "object"}}},
                },
                "401": model_response(m.ErrorBody, "Wrong admin token"),
                "503": ERRORS["503"],
            },
        }
    },
    "/api/v1/dashboard/stream": {
        "get": {
            "summary": "Server-Sent Events: one 'summary' event (the snapshot) a second",
            "tags": ["dashboard"],
            "responses": {
                "200": {"description": "Event stream", "content": {"text/event-stream": {}}},
                "401": model_response(m.ErrorBody, "Wrong admin token"),
                "429": model_response(m.ErrorBody, "Too many streams from this address"),
                "503": model_response(m.ErrorBody, "Too many streams, or shutting down"),
            },
        }
    },
}

PATHS: dict[str, dict[str, Any]] = {
    "/healthz": {
        "get": {
            "summary": "Liveness",
            "tags": ["ops"],
            "responses": {"200": model_response(m.Health, "Up")},
        }
    },
    "/readyz": {
        "get": {
            "summary": "Readiness (ledger open, broker connected)",
            "tags": ["ops"],
            "responses": {
                "200": model_response(m.Health, "Ready"),
                "503": model_response(m.ErrorBody, "Not ready"),
            },
        }
    },
    "/metrics": {
        "get": {
            "summary": "Prometheus metrics",
            "tags": ["ops"],
            "responses": {"200": text_response("Prometheus text exposition")},
        }
    },
    "/api/v1/openapi.json": {
        "get": {
            "summary": "This document",
            "tags": ["ops"],
            "responses": {"200": {"description": "OpenAPI 3.1"}},
        }
    },
    "/api/v1/ledger": {
        "get": {
            "summary": "The log: origin, crypto suite, verifier key, size",
            "description": "suite is ed25519-sha256 (SHA-256 tree, Ed25519 signatures) or "
            "sm2-sm3 (SM3 tree, SM2 signatures): the hash a verifier recomputes leaves, "
            "proofs and commitments in, and the kind of key every source registers.",
            "tags": ["ledger"],
            "responses": {"200": model_response(m.LogInfo, "The log")},
        }
    },
    "/api/v1/ledger/checkpoint": {
        "get": {
            "summary": "Latest signed checkpoint (C2SP signed note)",
            "tags": ["ledger"],
            "responses": {"200": text_response("Signed note"), "503": ERRORS["503"]},
        }
    },
    "/api/v1/ledger/key": {
        "get": {
            "summary": "The hub's signed-note verifier key",
            "tags": ["ledger"],
            "responses": {"200": text_response("<name>+<key hash>+<base64 key>")},
        }
    },
    "/api/v1/ledger/entries": {
        "get": {
            "summary": "Entries with their exact leaf bytes (base64); at most 1000 a page",
            "tags": ["ledger"],
            "parameters": [
                query("start", "First index (default 0)", kind="integer"),
                query("end", "One past the last index (default start+100)", kind="integer"),
            ],
            "responses": {
                "200": model_response(m.EntriesPage, "A page of entries"),
                "400": ERRORS["400"],
            },
        }
    },
    "/api/v1/ledger/proof/inclusion": {
        "get": {
            "summary": "RFC 9162 inclusion proof of an entry in a tree of a given size",
            "tags": ["ledger"],
            "parameters": [
                query("index", "Entry index", required=True, kind="integer"),
                query("size", "Tree size", required=True, kind="integer"),
            ],
            "responses": {"200": model_response(m.InclusionProof, "Proof"), "400": ERRORS["400"]},
        }
    },
    "/api/v1/ledger/proof/consistency": {
        "get": {
            "summary": "RFC 9162 consistency proof between two tree sizes",
            "tags": ["ledger"],
            "parameters": [
                query("first", "Older size", required=True, kind="integer"),
                query("second", "Newer size", required=True, kind="integer"),
            ],
            "responses": {"200": model_response(m.ConsistencyProof, "Proof"), "400": ERRORS["400"]},
        }
    },
    "/api/v1/ledger/proof/tlog": {
        "get": {
            "summary": "c2sp.org/tlog-proof@v1 of an entry under the latest checkpoint",
            "description": "The entry's leaf bytes (extra), index, inclusion hashes, a blank "
            "line and the latest checkpoint as /api/v1/ledger/checkpoint serves it, with its "
            "cosignatures: check it offline with `swiftchain ledger check-proof`.",
            "tags": ["ledger"],
            "parameters": [query("index", "Entry index", required=True, kind="integer")],
            "responses": {
                "200": text_response("tlog-proof text"),
                "400": ERRORS["400"],
                "503": ERRORS["503"],
            },
        }
    },
    "/api/v1/registry/orgs": {
        "get": {
            "summary": "Registered organisations",
            "tags": ["registry"],
            "responses": {"200": model_response(m.OrgList, "Organisations")},
        }
    },
    "/api/v1/registry/sources": {
        "get": {
            "summary": "Registered sources and the data types each may publish",
            "tags": ["registry"],
            "parameters": [query("pilot", "Only this pilot")],
            "responses": {"200": model_response(m.SourceList, "Sources")},
        }
    },
    "/api/v1/registry/keys": {
        "get": {
            "summary": "Source public keys with validity periods",
            "tags": ["registry"],
            "parameters": [query("pilot", "Only this pilot"), query("source", "Only this source")],
            "responses": {"200": model_response(m.KeyList, "Keys")},
        }
    },
    "/api/v1/admin/registry/orgs": _admin_post("Add an organisation", m.OrgAdd),
    "/api/v1/admin/registry/sources": _admin_post("Add a source with its first key", m.SourceAdd),
    "/api/v1/admin/registry/sources/revoke": _admin_post("Revoke a source", m.SourceRevoke),
    "/api/v1/admin/registry/keys/rotate": _admin_post("Rotate a source's key", m.KeyRotate),
    "/api/v1/admin/registry/keys/revoke": _admin_post("Revoke a key from a time", m.KeyRevoke),
    "/api/v1/admin/dead-letters": {
        "get": {
            "summary": "Latest rejected messages",
            "tags": ["admin"],
            "security": [{"adminToken": []}],
            "parameters": [query("limit", "How many (default 100, at most 1000)", kind="integer")],
            "responses": {"200": model_response(m.DeadLetterList, "Dead letters"), **ADMIN_ERRORS},
        }
    },
    **DASHBOARD_PATHS,
    **ACCESS_PATHS,
}

SCHEMAS: tuple[type[BaseModel], ...] = (
    m.ErrorBody,
    m.Health,
    m.LogInfo,
    m.LedgerEntry,
    m.EntriesPage,
    m.InclusionProof,
    m.ConsistencyProof,
    m.OrgList,
    m.SourceList,
    m.KeyList,
    m.OrgAdd,
    m.SourceAdd,
    m.SourceRevoke,
    m.KeyRotate,
    m.KeyRevoke,
    m.CommittedEntry,
    m.RegistryChange,
    m.DeadLetterList,
    Receipt,
    *ACCESS_SCHEMAS,
)


def build_spec() -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    for model in SCHEMAS:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    schemas["Receipt"]["description"] = (
        "MQTT receipt on swiftchain/v1/{pilot}/{source}/receipts; rejection reasons: "
        + ", ".join(REASONS)
    )
    return {
        "openapi": "3.1.0",
        "info": {"title": "Swiftchain ledger hub", "version": "1"},
        "paths": PATHS,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "adminToken": {"type": "http", "scheme": "bearer"},
                **SECURITY_SCHEMES,
            },
        },
    }


_SPEC = build_spec()


@routes.get("/api/v1/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return web.json_response(_SPEC)
