"""The hub's named errors, and the one middleware that turns them into JSON responses.

Errors map to HTTP here, to ``rejected`` receipts in ``checks`` (reasons), and to a CLI
message in ``swiftchain.commands.errors``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from ledger.errors import LedgerError, RangeError, StorageError

log = logging.getLogger("swiftchain.hub")

#: Retry-After (RFC 9110 10.2.3, delay-seconds) on a 503 from storage: the sequencer
#: retries its commit meanwhile; a full disk waits for an operator, a lock clears sooner.
STORAGE_RETRY_AFTER_S = 5


class HubError(Exception):
    """Base of every error the hub raises on purpose."""


class ConfigError(HubError):
    """The hub's settings or files cannot be used."""


class HubRunningError(HubError):
    """Another process holds the ledger file as its writer."""


class RegistryError(HubError):
    """A registry change is not allowed (unknown org, duplicate source, unknown key...)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


class ApiError(HubError):
    """An HTTP error with a status, a machine-readable code and a human detail."""

    status = 400
    code = "bad_request"

    def __init__(self, detail: str, *, code: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code


class BadParameter(ApiError):
    status = 400
    code = "bad_parameter"


class NotFound(ApiError):
    status = 404
    code = "not_found"


class Unauthorized(ApiError):
    status = 401
    code = "unauthorized"


class Forbidden(ApiError):
    status = 403
    code = "forbidden"


class Conflict(ApiError):
    """What the request was decided on changed meanwhile (through another front end)."""

    status = 409
    code = "conflict"


class NotReady(ApiError):
    status = 503
    code = "not_ready"


def error_body(code: str, detail: str) -> dict[str, str]:
    return {"error": code, "detail": detail}


@dataclass(frozen=True)
class LedgerFailure:
    """How a ledger error leaves over HTTP, the same for JSON and for OperationOutcome."""

    status: int
    code: str
    detail: str
    headers: dict[str, str] | None = None


def ledger_failure(exc: LedgerError) -> LedgerFailure:
    """A full or failing disk is the hub's trouble (503, retry later); only a range outside
    the log is the caller's (400); anything else from the ledger is a fault of ours (500)."""
    if isinstance(exc, StorageError):
        log.error("ledger storage unavailable: %s", exc)
        retry = {"Retry-After": str(STORAGE_RETRY_AFTER_S)}
        return LedgerFailure(503, "storage_unavailable", storage_detail(exc), retry)
    if isinstance(exc, RangeError):
        return LedgerFailure(400, "out_of_range", str(exc))
    log.error("ledger error: %s", exc, exc_info=exc)
    return LedgerFailure(500, "internal", "internal error; see hub log")


_FULL = re.compile(r"full|no space left", re.IGNORECASE)


def storage_detail(exc: StorageError) -> str:
    """What a client is told of a storage failure: whether the storage is full, and nothing
    of where it is (a database's URL, its user, a server's file paths stay in the log)."""
    if _FULL.search(str(exc)):
        return "the hub's storage is full; nothing was written; retry later"
    return "the hub's storage does not answer now; nothing was written; retry later"


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error leaves as ``{"error", "detail"}`` JSON with its status; never a trace."""
    try:
        return await handler(request)
    except ApiError as exc:
        return web.json_response(error_body(exc.code, exc.detail), status=exc.status)
    except RegistryError as exc:
        status = 404 if exc.code.startswith("unknown_") else 409
        return web.json_response(error_body(exc.code, exc.detail), status=status)
    except LedgerError as exc:
        failure = ledger_failure(exc)
        return web.json_response(
            error_body(failure.code, failure.detail),
            status=failure.status,
            headers=failure.headers,
        )
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = exc.reason.lower().replace(" ", "_")
        return web.json_response(
            error_body(code, exc.text or exc.reason), status=exc.status, headers=_allow(exc)
        )
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.path)
        return web.json_response(error_body("internal", "internal error; see hub log"), status=500)


def _allow(exc: web.HTTPException) -> dict[str, str] | None:
    allow = exc.headers.get("Allow")
    return {"Allow": allow} if allow else None
