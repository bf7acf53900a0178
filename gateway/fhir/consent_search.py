"""``GET /fhir/Consent?patient=Patient/<pseudonym>``: a person's Consents in the caller's
pilot, as a searchset Bundle, so that a consent administrator finds the Consents it made
without keeping their ids (FHIR R4B Consent search parameters ``patient`` and ``status``).

For the pilot's consent administrators and auditors, as reading a Consent is. Gated like a
data search: one decision, one ``access`` entry (type ``fhir.Consent``) committed before
the Bundle leaves. A purpose of use is optional here (managing consent is not reading
data), but one given, in the header or the token, is checked and logged.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web
from multidict import MultiMapping

from pilots import can_audit, can_manage_consent
from pilots.consent_build import STATUSES

from ..access.consents import ConsentState
from ..access.gate import gated
from ..access.purpose import HEADER, request_purpose
from ..appkeys import ACCESS
from ..errors import Forbidden
from ..smart.bearer import issuer
from ..smart.scopes import allows
from .bundle import Match, searchset
from .outcome import FHIR_JSON
from .params import pilot_param, subject_of
from .results import BadSearch, Handling, handle, one, prefers_strict
from .search import pilot_of, preference_applied

routes = web.RouteTableDef()

DATA_TYPE = "fhir.Consent"
FILTERS = frozenset({"patient", "status", "pilot"})


@dataclass(frozen=True)
class ConsentSearch:
    subject: str
    statuses: frozenset[str] | None
    pilot: str | None
    taken: Handling


def parse_consent_search(query: MultiMapping[str], *, strict: bool = False) -> ConsentSearch:
    taken = handle(query, filters=FILTERS, strict=strict, sortable=False)
    status_text = one(taken.filters, "status")
    statuses = None
    if status_text is not None:
        statuses = frozenset(s.strip() for s in status_text.split(","))
        unknown = sorted(statuses - set(STATUSES))
        if unknown:
            raise BadSearch(
                f"status {unknown[0][:40]!r} is not a Consent status ({' | '.join(STATUSES)})"
            )
    return ConsentSearch(
        subject=subject_of(one(taken.filters, "patient"), "patient"),
        statuses=statuses,
        pilot=pilot_param(taken.filters),
        taken=taken,
    )


@routes.get("/fhir/Consent")
async def search_consents(request: web.Request) -> web.Response:
    access = request.app[ACCESS]
    async with gated(request) as gate:
        gate.data_type = DATA_TYPE
        header, bound = request.headers.get(HEADER), gate.caller.token.purposes
        if (header is not None and header.strip()) or bound:
            gate.purpose = request_purpose(header, bound)
        params = parse_consent_search(
            request.query, strict=prefers_strict(request.headers.get("Prefer"))
        )
        gate.subject = params.subject
        pilot = pilot_of(request, gate, params.pilot)
        if not allows(list(gate.caller.token.scopes), "Consent", "s"):
            raise Forbidden(
                "the access token has no scope to search Consent", code="insufficient_scope"
            )
        decision = can_manage_consent(pilot, gate.caller.org)
        if not decision.allowed:
            decision = can_audit(pilot, gate.caller.org)
        if not decision.allowed:
            await gate.log(decision)
            raise Forbidden(decision.detail, code=decision.reason.value)
        found = [
            state
            for state in access.book.of_subject(pilot.id, params.subject)
            if _wanted(state, params.statuses)
        ]
        results = params.taken.results
        page = found[results.offset : results.offset + results.count]
        await gate.log(decision, count=len(page))
    base = issuer(request)
    body = searchset(
        base=base,
        path="/fhir/Consent",
        applied=params.taken.applied,
        results=results,
        page=[_match(base, state) for state in page],
        total=len(found),
        ignored=params.taken.ignored,
    )
    return web.Response(body=body, content_type=FHIR_JSON, headers=preference_applied(request))


def _wanted(state: ConsentState, statuses: frozenset[str] | None) -> bool:
    # A Consent whose resource was erased has nothing to show; its entries stay on the log.
    return state.consent is not None and (statuses is None or state.status in statuses)


def _match(base: str, state: ConsentState) -> Match:
    assert state.consent is not None
    return Match(
        f"{base}/fhir/Consent/{state.consent_id}", state.consent.model_dump_json().encode()
    )
