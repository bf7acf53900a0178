"""Consent-gated FHIR searches: ``GET /fhir/{Observation|DiagnosticReport|Composition}``,
and the same by ``POST /fhir/{type}/_search`` with the parameters form-encoded (FHIR R4B
3.1.0.9.1: a server that searches by GET also searches by POST).

One request, one decision (:func:`pilots.decide_access` on the subject's current Consent),
one ``access`` entry committed before the Bundle leaves; records are then kept only where
the Consent each of them names permits the same access.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
from aiohttp import web
from multidict import MultiDict, MultiMapping
from yarl import URL

from ledger.queries import HeldRecord
from pilots import Decision, Pilot, Reason, decide_access

from ..access.consents import ConsentBook, ConsentState
from ..access.gate import Gate, gated
from ..access.purpose import HEADER, request_purpose
from ..appkeys import ACCESS, hub_of
from ..errors import BadParameter, Forbidden
from ..smart.bearer import issuer
from ..smart.scopes import allows
from .bundle import Match, searchset
from .outcome import FHIR_JSON
from .params import Search, parse_search, resource_codes
from .results import prefers_strict

routes = web.RouteTableDef()

#: FHIR resource type -> the pilots' data type id.
SEARCHABLE = {
    "Observation": "fhir.Observation",
    "DiagnosticReport": "fhir.DiagnosticReport",
    "Composition": "fhir.Composition",
}
FORM = "application/x-www-form-urlencoded"


def pilot_of(request: web.Request, gate: Gate, named: str | None) -> Pilot:
    """The caller's pilot; a request naming another pilot is refused (403)."""
    caller = gate.caller
    if named is not None and named != caller.pilot:
        raise Forbidden(
            f"this access token is for pilot {caller.pilot!r}, not {named!r}", code="wrong_pilot"
        )
    pilot = request.app[ACCESS].pilots.get(caller.pilot)
    if pilot is None:
        raise Forbidden(f"this hub has no definition of pilot {caller.pilot!r}", code="no_pilot")
    return pilot


def _get_handler(resource: str) -> Any:
    async def handler(request: web.Request) -> web.Response:
        return await search(request, resource, request.query)

    handler.__name__ = f"search_{resource}"
    return handler


def _post_handler(resource: str) -> Any:
    async def handler(request: web.Request) -> web.Response:
        query = await search_form(request)
        # The access entry names what was asked: the query the form stands for.
        asked = str(URL(request.path).with_query(query))
        return await search(request, resource, query, asked=asked)

    handler.__name__ = f"search_{resource}_by_post"
    return handler


for _resource in SEARCHABLE:
    routes.get(f"/fhir/{_resource}")(_get_handler(_resource))
    routes.post(f"/fhir/{_resource}/_search")(_post_handler(_resource))


async def search_form(request: web.Request) -> MultiDict[str]:
    """The parameters of a ``POST [type]/_search``: the URL's and the form's together
    (FHIR R4B 3.1.0.9.1 allows both)."""
    if request.content_type != FORM:
        raise web.HTTPUnsupportedMediaType(reason=f"send the search parameters as {FORM}")
    try:
        form = await request.post()
    except (ValueError, UnicodeDecodeError):
        raise BadParameter("the body is not a valid form") from None
    query: MultiDict[str] = MultiDict(request.query)
    for name, value in form.items():
        if not isinstance(value, str):
            raise BadParameter(f"{name} is a file; send search parameters as text")
        query.add(name, value)
    return query


async def search(
    request: web.Request, resource: str, query: MultiMapping[str], asked: str | None = None
) -> web.Response:
    data_type = SEARCHABLE[resource]
    access = request.app[ACCESS]
    async with gated(request) as gate:
        gate.asked = asked
        gate.data_type = data_type
        gate.purpose = request_purpose(request.headers.get(HEADER), gate.caller.token.purposes)
        params = parse_search(query, strict=prefers_strict(request.headers.get("Prefer")))
        gate.subject = params.subject
        pilot = pilot_of(request, gate, params.pilot)
        if not allows(list(gate.caller.token.scopes), resource, "s"):
            raise Forbidden(
                f"the access token has no scope to search {resource}", code="insufficient_scope"
            )
        now = datetime.now(UTC)
        codes = params.codes or None
        current = access.book.current_for(pilot.id, params.subject)
        decision = subject_decision(access.book, pilot, gate, params.subject, now, codes, current)
        if not decision.allowed:
            await gate.log(decision)
            raise Forbidden(decision.detail, code=decision.reason.value)
        # On the event loop on purpose: indexed reads (the subject index, then the page's
        # rows by primary key), well under a millisecond, cheaper than a hop to a thread.
        if params.codes:
            kept = _with_codes(request, pilot, gate, params, now, decision, current)
            page = [
                (resource_id(row), row.payload)
                for row in kept[params.offset : params.offset + params.count]
            ]
            total = len(kept)
        else:
            page, total = _page(request, pilot, gate, params, now, decision, current)
        await gate.log(decision, count=len(page))
    base = issuer(request)
    body = searchset(
        base=base,
        path=f"/fhir/{resource}",
        applied=params.applied,
        results=params.results,
        page=[Match(f"{base}/fhir/{resource}/{rid}", payload) for rid, payload in page],
        total=total,
        ignored=params.ignored,
    )
    return web.Response(body=body, content_type=FHIR_JSON, headers=preference_applied(request))


def _too_costly(limit: int) -> BadParameter:
    return BadParameter(
        f"more than {limit} records match; narrow the search by date", code="too_costly"
    )


def _page(
    request: web.Request,
    pilot: Pilot,
    gate: Gate,
    params: Search,
    now: datetime,
    decision: Decision,
    current: ConsentState | None,
) -> tuple[list[tuple[str, bytes]], int]:
    """The page of a search without codes, as (resource id, body), and the total: every
    match counted from its index and Consent alone, the bodies read of the page's records
    only (bench/query.py: at 100 matches a person, reading every body cost more than the
    rest of the search)."""
    hub = hub_of(request)
    limit = hub.settings.search_max_matches
    reader = hub.ledger.reader
    matches = reader.subject_matches(
        pilot=pilot.id,
        subject=params.subject,
        data_type=gate.data_type or "",
        since=params.since,
        until=params.until,
        limit=limit + 1,
    )
    if len(matches) > limit:
        raise _too_costly(limit)
    book = request.app[ACCESS].book
    verdicts: dict[str | None, bool] = {}
    kept: list[int] = []
    for index, consent in matches:
        ok = verdicts.get(consent)
        if ok is None:
            ok = verdicts[consent] = consent_permits(
                book,
                pilot,
                gate,
                consent,
                f"record {index}",
                params.subject,
                now,
                None,
                decision=decision,
                current=current,
            ).allowed
        if ok:
            kept.append(index)
    if params.results.descending:
        kept.reverse()
    wanted = kept[params.offset : params.offset + params.count]
    # A body erased since the count leaves the page one short: it is not served either way.
    # The bodies alone (a page read a record, not two); a resource without an id of its own
    # is named by its record's, read for those only.
    page = [(index, own_id(payload), payload) for index, payload in reader.held_payloads(wanted)]
    unnamed = [index for index, rid, _ in page if rid is None]
    record_ids = {row.index: row.id for row in reader.held_records(unnamed)} if unnamed else {}
    named = [
        (name, payload)
        for index, rid, payload in page
        if (name := rid or record_ids.get(index)) is not None
    ]
    return named, len(kept)


def _with_codes(
    request: web.Request,
    pilot: Pilot,
    gate: Gate,
    params: Search,
    now: datetime,
    decision: Decision,
    current: ConsentState | None,
) -> list[HeldRecord]:
    """Every match of a search by code, its body read to know its codes."""
    hub = hub_of(request)
    limit = hub.settings.search_max_matches
    rows = hub.ledger.reader.subject_records(
        pilot=pilot.id,
        subject=params.subject,
        data_type=gate.data_type or "",
        since=params.since,
        until=params.until,
        limit=limit + 1,
    )
    if len(rows) > limit:
        raise _too_costly(limit)
    kept = _permitted(rows, request.app[ACCESS].book, pilot, gate, params, now, decision, current)
    if params.results.descending:
        kept.reverse()
    return kept


def preference_applied(request: web.Request) -> dict[str, str]:
    """RFC 7240 3: which ``handling`` this answer followed."""
    strict = prefers_strict(request.headers.get("Prefer"))
    return {"Preference-Applied": "handling=strict" if strict else "handling=lenient"}


def _permitted(
    rows: list[HeldRecord],
    book: ConsentBook,
    pilot: Pilot,
    gate: Gate,
    params: Search,
    now: datetime,
    decision: Decision,
    current: ConsentState | None = None,
) -> list[HeldRecord]:
    """Rows whose own named Consent permits this access (and, when codes were asked for,
    whose resource carries one of them)."""
    verdicts: dict[str | None, bool] = {}
    kept = []
    for row in rows:
        ok = verdicts.get(row.consent)
        if ok is None:
            ok = verdicts[row.consent] = consent_permits(
                book,
                pilot,
                gate,
                row.consent,
                f"record {row.id}",
                params.subject,
                now,
                params.codes or None,
                decision=decision,
                current=current,
            ).allowed
        if not ok:
            continue
        if params.codes and not (resource_codes(msgspec.json.decode(row.payload)) & params.codes):
            continue
        kept.append(row)
    return kept


def subject_decision(
    book: ConsentBook,
    pilot: Pilot,
    gate: Gate,
    subject: str | None,
    now: datetime,
    codes: frozenset[str] | None,
    current: ConsentState | None = None,
) -> Decision:
    """The request's decision: the pilot's policy, then the subject's current Consent (a
    search and a read alike; each record's own Consent is ``record_consent_permits``).
    ``current``: the subject's current Consent where the caller has already looked it up."""
    assert gate.purpose is not None and gate.data_type is not None
    if current is None and subject:
        current = book.current_for(pilot.id, subject)
    return decide_access(
        pilot,
        org=gate.caller.org,
        data_type=gate.data_type,
        purpose=gate.purpose,
        at=now,
        subject=subject,
        consent=current.consent if current is not None else None,
        codes=codes,
    )


def record_consent_permits(
    book: ConsentBook,
    pilot: Pilot,
    gate: Gate,
    row: HeldRecord,
    subject: str,
    now: datetime,
    codes: frozenset[str] | None,
) -> Decision:
    """Does the Consent a record names (its subject's, on file) permit this access?"""
    return consent_permits(book, pilot, gate, row.consent, f"record {row.id}", subject, now, codes)


def consent_permits(
    book: ConsentBook,
    pilot: Pilot,
    gate: Gate,
    consent_id: str | None,
    record: str,
    subject: str,
    now: datetime,
    codes: frozenset[str] | None,
    *,
    decision: Decision | None = None,
    current: ConsentState | None = None,
) -> Decision:
    """Does the Consent ``consent_id`` (named by ``record``; its subject's, on file) permit
    this access? Where it is the subject's ``current`` Consent, on which the request's own
    ``decision`` was just made with the same inputs, that decision is the answer: the
    evaluation is pure, and asking it twice per search cost a tenth of the search."""
    assert gate.purpose is not None and gate.data_type is not None
    state = book.get(pilot.id, consent_id) if consent_id is not None else None
    if state is None or state.subject != subject:
        return Decision.deny(
            Reason.CONSENT_MISSING, f"{record} names no Consent of its subject on file"
        )
    if decision is not None and state is current:
        return decision
    return decide_access(
        pilot,
        org=gate.caller.org,
        data_type=gate.data_type,
        purpose=gate.purpose,
        at=now,
        subject=subject,
        consent=state.consent,
        codes=codes,
    )


def resource_id(row: HeldRecord) -> str:
    """The id a stored resource is read by: its own, or its record's where it has none."""
    return own_id(row.payload) or row.id


def own_id(payload: bytes) -> str | None:
    """A stored resource's own ``id``, if it has one."""
    try:
        value = msgspec.json.decode(payload).get("id")
    except (ValueError, AttributeError):
        value = None
    return value if isinstance(value, str) and value else None
