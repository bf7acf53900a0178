"""The pieces both OpenAPI path tables are built of (``openapi`` for the ledger, registry and
operations; ``openapi_data`` for access control): media types, schema references,
responses and query parameters, as OpenAPI 3.1 Reference, Response and Parameter objects."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

JSON = "application/json"
TEXT = "text/plain"
FHIR = "application/fhir+json"
FORM = "application/x-www-form-urlencoded"

#: The Retry-After header of a 503 (RFC 9110 10.2.3), e.g. when the ledger's disk is full.
RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again",
        "schema": {"type": "integer", "minimum": 0},
    }
}


def ref(model: type[BaseModel]) -> dict[str, str]:
    """A reference to ``model``'s schema under ``components/schemas``."""
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def json_response(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema or {"type": "object"}}}}


def model_response(model: type[BaseModel], description: str) -> dict[str, Any]:
    return json_response(description, ref(model))


def text_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {TEXT: {"schema": {"type": "string"}}}}


def fhir_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {FHIR: {"schema": {"type": "object"}}}}


def retry_later(response: dict[str, Any]) -> dict[str, Any]:
    """``response`` (a 503) with its Retry-After header."""
    return {**response, "headers": RETRY_AFTER}


def query(
    name: str, description: str, *, required: bool = False, kind: str = "string"
) -> dict[str, Any]:
    """A query parameter; integers are never negative here."""
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
