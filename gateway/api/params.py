"""Query-string and body parsing shared by the handlers; bad input is a 400, never a 500."""

from __future__ import annotations

import hmac
import json
from typing import TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from ledger.envelope import describe_validation_error

from ..errors import BadParameter, Forbidden, Unauthorized

M = TypeVar("M", bound=BaseModel)

#: Largest integer a query parameter may hold (SQLite's and JSON's safe range).
MAX_INT = 2**53 - 1


def int_param(request: web.Request, name: str, default: int | None = None) -> int:
    text = request.query.get(name)
    if text is None or text == "":
        if default is None:
            raise BadParameter(f"query parameter {name!r} is required")
        return default
    if not text.isascii() or not text.isdigit() or len(text) > 16:
        raise BadParameter(f"{name} must be a non-negative integer, not {text[:32]!r}")
    value = int(text)
    if value > MAX_INT:
        raise BadParameter(f"{name} is too large")
    return value


def str_param(request: web.Request, name: str) -> str | None:
    value = request.query.get(name)
    if value is not None and len(value) > 128:
        raise BadParameter(f"{name} is too long")
    return value


async def json_body(request: web.Request, model: type[M]) -> M:
    try:
        raw = await request.read()
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        # RecursionError: JSON nested deeper than the interpreter's stack is bad input too.
        raise BadParameter(f"the body is not JSON: {exc}", code="malformed_json") from None
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        raise BadParameter(describe_validation_error(exc)) from None


def require_admin(request: web.Request, token: str | None) -> None:
    if token is None:
        raise Forbidden(
            "the admin API is off; set admin_token in the hub config", code="admin_disabled"
        )
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), token.encode()):
        raise Unauthorized("send Authorization: Bearer <admin token>")
