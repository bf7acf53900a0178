"""OperationOutcome for every error under ``/fhir/`` (FHIR R4B 3.1.0.8: the body of an
error response), with the issue code FHIR's IssueType value set gives each status; and the
checks that come before any FHIR handler: the representation asked for (406), and the
interactions the hub does not support on a type it serves (405, with ``Allow``)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.coding import Coding
from fhir.resources.R4B.operationoutcome import OperationOutcome, OperationOutcomeIssue

from ledger.errors import LedgerError

from ..errors import ApiError, RegistryError, ledger_failure
from ..smart.scopes import SERVED_TYPES
from .negotiation import accepts_json, format_is_json

log = logging.getLogger("swiftchain.hub.fhir")

FHIR_JSON = "application/fhir+json"
REASON_SYSTEM = "urn:swiftchain:reason"


class NotSupported(ApiError):
    """An interaction FHIR defines that this hub does not offer (405)."""

    status = 405
    code = "not_supported"


#: HTTP status -> FHIR IssueType (http://hl7.org/fhir/issue-type).
ISSUE_TYPES = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    406: "not-supported",
    409: "conflict",
    410: "deleted",
    412: "conflict",
    413: "too-costly",
    415: "not-supported",
    422: "processing",
    500: "exception",
    503: "transient",
}


def outcome(
    status: int, code: str, detail: str, headers: dict[str, str] | None = None
) -> web.Response:
    issue = OperationOutcomeIssue(
        severity="error" if status < 500 else "fatal",
        code=ISSUE_TYPES.get(status, "processing"),
        details=CodeableConcept(coding=[Coding(system=REASON_SYSTEM, code=code)], text=detail),
        diagnostics=detail,
    )
    body = OperationOutcome(issue=[issue]).model_dump_json()
    headers = dict(headers or {})
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="fhir"'
    return web.Response(text=body, status=status, content_type=FHIR_JSON, headers=headers)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def fhir_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Inside ``error_middleware``: errors of ``/fhir/`` routes leave as OperationOutcome."""
    if not request.path.startswith("/fhir"):
        return await handler(request)
    if not accepts_json(request.headers.get("Accept")):
        return outcome(406, "not_acceptable", "this hub answers application/fhir+json only")
    fmt = request.query.getall("_format", [])
    if any(not format_is_json(value) for value in fmt):
        return outcome(406, "not_acceptable", "this hub answers _format=json only")
    try:
        return await handler(request)
    except ApiError as exc:
        return outcome(exc.status, exc.code, exc.detail)
    except RegistryError as exc:
        return outcome(409, exc.code, exc.detail)
    except LedgerError as exc:
        failure = ledger_failure(exc)
        return outcome(failure.status, failure.code, failure.detail, failure.headers)
    except web.HTTPMethodNotAllowed as exc:
        allowed = ", ".join(sorted(exc.allowed_methods))
        return outcome(
            405,
            "not_supported",
            f"{request.method} is not supported on {request.path[:80]}; allowed: {allowed}",
            {"Allow": allowed},
        )
    except web.HTTPNotFound as exc:
        # A served type's unknown path is an interaction we do not offer (FHIR R4B
        # 3.1.0.8: 405); an unknown type is a 404.
        parts = request.path.split("/")
        if len(parts) > 3 and parts[2] in SERVED_TYPES and parts[3]:
            return outcome(
                405,
                "not_supported",
                f"{request.method} {request.path[:80]}: this hub does not support that"
                f" interaction on {parts[2]} (see /fhir/metadata)",
            )
        return outcome(404, "not_found", exc.reason)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return outcome(exc.status, exc.reason.lower().replace(" ", "_"), exc.reason)
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.path)
        return outcome(500, "internal", "internal error; see the hub log")
