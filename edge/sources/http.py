"""The local HTTP source: a hospital system POSTs FHIR resources or Bundles.

``POST /fhir`` (any resource or a collection/batch/transaction Bundle) and
``POST /fhir/{resourceType}`` answer ``202 Accepted`` with an OperationOutcome naming each
stored record once all of them are durably in the outbox, or ``4xx`` with an
OperationOutcome saying what is wrong (and nothing is stored). The Consent that covers the
data is named in the ``X-Consent`` header or the ``consent`` query parameter.

``POST /relay`` takes a personal device's sealed envelope (or a list of them) for a relay
agent (edge/relay.py): ``202`` once stored, ``200`` if every one was relayed before (nothing
stored again), ``4xx`` with the reason (``unknown_device``, ``bad_signature``, ...).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from ledger.envelope import parse_json
from ledger.errors import InvalidEnvelope

from ..errors import EdgeError, InvalidInput
from ..fhir import Issue, operation_outcome, outcome_for
from ..intake import Intake, Stored
from ..logs import log
from ..relay import is_envelope

logger = logging.getLogger("edge.sources.http")

FHIR_JSON = "application/fhir+json"
ACCEPTED_MEDIA_TYPES = ("application/fhir+json", "application/json")
INTAKE: web.AppKey[Intake] = web.AppKey("intake", Intake)
MAX_BODY: web.AppKey[int] = web.AppKey("max_body", int)

routes = web.RouteTableDef()


def _outcome_response(body: bytes, status: int) -> web.Response:
    return web.Response(body=body, status=status, content_type=FHIR_JSON)


def _refuse(error: InvalidInput) -> web.Response:
    log(logger, logging.INFO, "http.refused", reason=error.reason, where=error.where)
    return _outcome_response(outcome_for(error), error.status)


async def _read_json(request: web.Request) -> object:
    media_type = request.content_type
    if media_type not in ACCEPTED_MEDIA_TYPES:
        raise InvalidInput(
            "unsupported_media_type",
            f"send {FHIR_JSON}, not {media_type or 'no Content-Type'}",
            status=415,
        )
    limit = request.app[MAX_BODY]
    if request.content_length is not None and request.content_length > limit:
        raise InvalidInput("oversize", f"the body is over the {limit}-byte limit", status=413)
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise InvalidInput(
            "oversize", f"the body is over the {limit}-byte limit", status=413
        ) from None
    try:
        return parse_json(raw, max_bytes=limit)
    except InvalidEnvelope as exc:
        status = 413 if exc.reason == "oversize" else 400
        raise InvalidInput(exc.reason, exc.detail, status=status) from None


def _consent(request: web.Request) -> str | None:
    return request.headers.get("X-Consent") or request.query.get("consent") or None


@routes.post("/fhir")
async def post_any(request: web.Request) -> web.Response:
    return await _store(request, None)


@routes.post("/fhir/{resource_type}")
async def post_typed(request: web.Request) -> web.Response:
    return await _store(request, request.match_info["resource_type"])


async def _store(request: web.Request, resource_type: str | None) -> web.Response:
    try:
        value = await _read_json(request)
        if not isinstance(value, dict) or not isinstance(value.get("resourceType"), str):
            raise InvalidInput(
                "invalid_fhir", "the body is one FHIR resource (with resourceType)", status=400
            )
        if resource_type is not None and value["resourceType"] != resource_type:
            raise InvalidInput(
                "invalid_fhir",
                f"POST /fhir/{resource_type} carries a {value['resourceType']}",
                status=400,
            )
        stored = await request.app[INTAKE].submit_json(value, consent=_consent(request))
    except InvalidInput as exc:
        return _refuse(exc)
    log(logger, logging.INFO, "http.stored", records=len(stored), first_seq=stored[0].seq)
    response = _outcome_response(operation_outcome([_stored_issue(s) for s in stored]), 202)
    response.headers["X-Record-Ids"] = ",".join(s.id for s in stored)
    return response


@routes.post("/relay")
async def post_relay(request: web.Request) -> web.Response:
    try:
        value = await _read_json(request)
        envelopes = value if isinstance(value, list) else [value]
        if not envelopes or not all(is_envelope(e) for e in envelopes):
            raise InvalidInput(
                "invalid_envelope",
                'POST /relay carries a device\'s sealed envelope {"header", "body", "sig"}'
                " or a list of them",
                status=400,
            )
        stored = await request.app[INTAKE].submit_json(value)
    except InvalidInput as exc:
        return _refuse(exc)
    new = [s for s in stored if not s.duplicate]
    log(logger, logging.INFO, "http.relayed", records=len(new), before=len(stored) - len(new))
    response = _outcome_response(operation_outcome([_stored_issue(s) for s in stored]), 202)
    if not new:
        response.set_status(200)
    response.headers["X-Record-Ids"] = ",".join(s.id for s in stored)
    return response


def _stored_issue(s: Stored) -> Issue:
    said = "relayed before as" if s.duplicate else "stored"
    return Issue("information", "informational", f"{said} {s.id} seq {s.seq} ({s.type_id})")


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


@web.middleware
async def fhir_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Every error an OperationOutcome, never an HTML page or a stack trace."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = {404: "not-found", 405: "not-supported"}.get(exc.status, "invalid")
        return _outcome_response(operation_outcome([Issue("error", code, exc.reason)]), exc.status)
    except EdgeError as exc:
        # The outbox cannot take records now: the sender should retry later.
        log(logger, logging.ERROR, "http.unavailable", error=str(exc))
        issue = Issue("error", "transient", "the agent cannot store records now; retry later")
        return _outcome_response(operation_outcome([issue]), 503)


def create_app(intake: Intake, *, max_body_bytes: int) -> web.Application:
    # The body limit is checked by hand (to answer with an OperationOutcome), with a margin.
    app = web.Application(client_max_size=max_body_bytes + 1, middlewares=[fhir_errors])
    app[INTAKE] = intake
    app[MAX_BODY] = max_body_bytes
    app.add_routes(routes)
    return app
