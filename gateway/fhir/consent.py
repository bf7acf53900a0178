"""FHIR R4B Consent through the hub, by the pilot's consent administrators: create, read,
update, and ``$withdraw`` (optionally erasing the bodies the consent covered). Who may do
which is :func:`pilots.decide_consent_change`'s decision (a Consent belongs to the
organisation that recorded it; an update only narrows; a withdrawal is final); a refusal is
a 403 OperationOutcome with its reason. Each change is a ``consent`` entry (the hash of the
Consent's JCS, the action, the status and the custodian) committed through the sequencer;
the book changes in the same commit callback."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from aiohttp import web
from fhir.resources.R4B.consent import Consent

from ledger.entries import ConsentEntry, ErasureEntry
from ledger.envelope import utc_now
from ledger.queries import HeldBody
from ledger.sealed import blind, subject_tag
from ledger.store import Blinded, Entry, LedgerReader, NewEntry
from pilots import (
    Decision,
    Pilot,
    can_audit,
    can_manage_consent,
    decide_consent_change,
    parse_consent,
    with_status,
)
from pilots.consent_authority import ENTRY_ACTIONS
from pilots.errors import ConsentError
from pilots.ingest import consent_subject

from ..access.consents import consent_bytes
from ..access.control import AccessControl, Caller
from ..access.gate import gated
from ..access.purpose import AUDIT_PURPOSE, CONSENT_ADMIN_PURPOSE
from ..appkeys import ACCESS, hub_of
from ..cluster.errors import PlanConflict
from ..errors import BadParameter, Conflict, Forbidden, NotFound
from ..smart.bearer import authenticate
from ..smart.scopes import allows
from .bindings import binding_violations
from .outcome import FHIR_JSON

routes = web.RouteTableDef()

MAX_CONSENT_BYTES = 64 * 1024
#: The pilots' data type of a Consent, named in the ``access`` entry of a Consent read.
CONSENT_TYPE = "fhir.Consent"
_PSEUDONYM_OK = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


def _admin(request: web.Request, permission: str) -> tuple[Caller, Pilot, AccessControl]:
    """The caller of a Consent change, if a consent administrator with the scope for it."""
    caller = authenticate(request)
    access = request.app[ACCESS]
    if not allows(list(caller.token.scopes), "Consent", permission):
        raise Forbidden(
            f"the access token has no Consent.{permission} scope", code="insufficient_scope"
        )
    pilot = access.pilots.get(caller.pilot)
    if pilot is None:
        raise Forbidden(f"this hub has no definition of pilot {caller.pilot!r}", code="no_pilot")
    decision = can_manage_consent(pilot, caller.org)
    if not decision.allowed:
        raise Forbidden(decision.detail, code=decision.reason.value)
    return caller, pilot, access


async def _body(request: web.Request) -> Consent:
    if (request.content_length or 0) > MAX_CONSENT_BYTES:
        raise BadParameter("the Consent is too large", code="too_large")
    raw = await request.read()
    if len(raw) > MAX_CONSENT_BYTES:
        raise BadParameter("the Consent is too large", code="too_large")
    try:
        consent = parse_consent(raw)
    except ConsentError as exc:
        raise BadParameter(str(exc), code="invalid_consent") from None
    # fhir.resources does not enforce required bindings: a status or provision type outside
    # its value set would be committed and then decided on as something it is not.
    violations = binding_violations(consent, "Consent")
    if violations:
        more = f" (+{len(violations) - 1} more)" if len(violations) > 1 else ""
        raise BadParameter(violations[0].sentence() + more, code="invalid_consent")
    return consent


def _subject(consent: Consent) -> str:
    subject = consent_subject(consent)
    if subject is None or not 8 <= len(subject) <= 128 or set(subject) - _PSEUDONYM_OK:
        raise BadParameter(
            "Consent.patient must reference Patient/<pseudonym> (8-128 of A-Z a-z 0-9 _ -)",
            code="invalid_consent",
        )
    return subject


def _response(consent: Consent, entry: Entry, status: int, base: str) -> web.Response:
    headers = {"X-Ledger-Index": str(entry.index), "ETag": f'W/"{entry.index}"'}
    if status == 201:
        headers["Location"] = f"{base}/fhir/Consent/{consent.id}"
    return web.Response(
        text=consent.model_dump_json(), status=status, content_type=FHIR_JSON, headers=headers
    )


async def commit_consent(
    request: web.Request,
    caller: Caller,
    pilot: Pilot,
    consent: Consent,
    action: str,
    *,
    custodian: str | None,
    erase: bool = False,
) -> tuple[Entry, int]:
    """Store the version, commit its ``consent`` entry (with erasures), update the book.

    With ``erase``, the person is erased in the same commit: the bodies the Consent covered
    go (with their openings and origins), and the openings that name the person -- this
    Consent's entries, the access entries about them -- are blinded
    (:func:`ledger.sealed.blind`); the data keys they were sealed under are destroyed after
    it; then the Consent's stored versions and the dead letters naming them go too. Nothing
    in the hub's files names them after that, and their audit view still opens for whoever
    knows their pseudonym."""
    access = request.app[ACCESS]
    hub = hub_of(request)
    # The log size the caller decided on (nothing was awaited since): the guard below
    # refuses the change if another front end changed this Consent after it, even while
    # this one awaits the access store and hears of that change meanwhile.
    decided_on = hub.ledger.size()
    subject = _subject(consent)
    assert consent.id is not None
    suite = hub.ledger.reader.suite
    digest, stored = consent_bytes(consent, suite)
    loop = asyncio.get_running_loop()
    # The access store commits with an fsync (or a round trip): off the event loop.
    await loop.run_in_executor(None, access.db.put_consent, digest, consent.id, pilot.id, stored)
    now = utc_now()
    entry = ConsentEntry(
        action=action,
        at=now,
        actor=caller.client_id,
        pilot=pilot.id,
        consent=consent.id,
        subject=subject,
        status=str(consent.status),
        resource_hash=digest,
        erase=erase,
        custodian=custodian,
    )
    leaf, opening = entry.sealed(suite=suite)
    erased: list[HeldBody] = []
    blinded: list[Blinded] = []
    if erase:
        erased = hub.ledger.reader.bodies_of_consent(pilot.id, subject, consent.id)
        named = [*access.book.indexes_of(pilot.id, consent.id)]
        named += access.forget_subject(pilot.id, subject)
        blinded = blind_openings(hub.ledger.reader, named, pilot.id, subject)
    entries = [
        NewEntry(
            "consent",
            leaf,
            opening=opening,
            blinded_for=(pilot.id, subject) if erase else None,
        )
    ]
    for body in erased:
        erasure, held = ErasureEntry(
            at=now,
            actor=caller.client_id,
            index=body.index,
            record=body.record,
            reason="consent-withdrawn",
        ).sealed(suite=suite)
        entries.append(NewEntry("erasure", erasure, opening=held))

    def committed(done: list[Entry]) -> None:
        access.book.apply(done[0].index, entry, consent)
        if erase:
            access.erased.add(subject_tag(pilot.id, subject))

    try:
        stored_entries = await hub.sequencer.append(
            entries,
            erase=[body.index for body in erased],
            blind=blinded,
            committed=committed,
            guard=[f"consent:{pilot.id}:{consent.id}"],
            based_on=decided_on,
            # Every data key of the person's records under this Consent and of their access
            # entries goes after the commit: the copies of what it erases left anywhere
            # (a backup, PostgreSQL's dead rows and WAL) no longer open.
            erase_scopes=[(pilot.id, subject, consent.id)] if erase else [],
        )
    except PlanConflict:
        raise Conflict(
            f"Consent/{consent.id} changed meanwhile (through another process of the hub);"
            " read it again and retry",
            code="consent_changed",
        ) from None
    if erase:
        await _forget_elsewhere(request, pilot.id, subject, consent.id)
    return stored_entries[0], len(erased)


def blind_openings(
    reader: LedgerReader, indexes: list[int], pilot: str, subject: str
) -> list[Blinded]:
    """The held openings at ``indexes``, blinded for ``subject``."""
    held = reader.openings(indexes)
    return [
        Blinded(i, subject_tag(pilot, subject), blind(o, pilot=pilot, subject=subject, index=i))
        for i, o in sorted(held.items())
    ]


async def _forget_elsewhere(request: web.Request, pilot: str, subject: str, consent: str) -> None:
    """After an erasure's commit: the Consent's stored versions, the dead letters naming the
    person, and the openings of access entries about them committed meanwhile."""
    access = request.app[ACCESS]
    hub = hub_of(request)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, access.db.forget_consent, consent, pilot)
    await loop.run_in_executor(None, hub.dead_letters.scrub, [subject, consent])
    late = access.forget_subject(pilot, subject)
    if late:
        blinded = blind_openings(hub.ledger.reader, late, pilot, subject)
        await hub.sequencer.append([], blind=blinded)


@routes.post("/fhir/Consent")
async def create(request: web.Request) -> web.Response:
    caller, pilot, access = _admin(request, "c")
    consent = await _body(request)
    if consent.id is None:
        consent = Consent.model_validate({**consent.model_dump(mode="json"), "id": _new_id()})
    assert consent.id is not None
    _subject(consent)
    async with access.consent_changes:
        if access.book.get(pilot.id, consent.id) is not None:
            raise web.HTTPConflict(reason=f"Consent/{consent.id} exists; update it with PUT")
        decision = decide_consent_change(
            pilot, org=caller.org, change="create", stored=None, proposed=consent
        )
        entry, _ = await commit_consent(
            request, caller, pilot, consent, _action(decision), custodian=caller.org
        )
    return _response(consent, entry, 201, _base(request))


@routes.get("/fhir/Consent/{id}")
async def read(request: web.Request) -> web.Response:
    """A Consent is data about its person: the read passes the gate, and its ``access``
    entry (purpose ``PATADMIN`` for a consent administrator, ``HCOMPL`` for an auditor) is
    committed before the answer, about the person whose Consent it is."""
    access = request.app[ACCESS]
    async with gated(request) as gate:
        gate.data_type = CONSENT_TYPE
        caller = gate.caller
        if not allows(list(caller.token.scopes), "Consent", "r"):
            raise Forbidden("the access token has no Consent.r scope", code="insufficient_scope")
        pilot = access.pilots.get(caller.pilot)
        if pilot is None:
            raise Forbidden(
                f"this hub has no definition of pilot {caller.pilot!r}", code="no_pilot"
            )
        consent_id = request.match_info["id"]
        state = access.book.get(pilot.id, consent_id)
        if state is not None:
            gate.subject = state.subject  # a refused attempt is on the person's trail too
        decision, purpose = can_manage_consent(pilot, caller.org), CONSENT_ADMIN_PURPOSE
        if not decision.allowed:
            decision, purpose = can_audit(pilot, caller.org), AUDIT_PURPOSE
        if not decision.allowed:
            await gate.log(decision)
            raise Forbidden(decision.detail, code=decision.reason.value)
        gate.purpose = purpose
        if state is None:
            await gate.log(decision, count=0)
            raise NotFound(f"no Consent/{consent_id[:64]} in pilot {pilot.id}")
        if state.consent is None:
            await gate.log(decision, count=0)
            raise web.HTTPGone(reason="this Consent's resource was erased; its hash is on the log")
        await gate.log(decision, count=1)
    headers = {"X-Ledger-Index": str(state.index), "ETag": f'W/"{state.index}"'}
    return web.Response(
        text=state.consent.model_dump_json(), content_type=FHIR_JSON, headers=headers
    )


@routes.put("/fhir/Consent/{id}")
async def update(request: web.Request) -> web.Response:
    caller, pilot, access = _admin(request, "u")
    consent_id = request.match_info["id"]
    if access.book.get(pilot.id, consent_id) is None:
        raise NotFound(f"no Consent/{consent_id[:64]} in pilot {pilot.id}; create it with POST")
    consent = await _body(request)
    if consent.id != consent_id:
        raise BadParameter("the Consent's id must be the id in the URL", code="id_mismatch")
    async with access.consent_changes:
        state = access.book.get(pilot.id, consent_id)
        assert state is not None  # a Consent is never removed from the book
        if _subject(consent) != state.subject:
            raise BadParameter("a Consent's patient cannot change", code="subject_changed")
        decision = decide_consent_change(
            pilot, org=caller.org, change="update", stored=state.stored(), proposed=consent
        )
        entry, _ = await commit_consent(
            request, caller, pilot, consent, _action(decision), custodian=state.custodian
        )
    return _response(consent, entry, 200, _base(request))


@routes.post("/fhir/Consent/{id}/$withdraw")
async def withdraw(request: web.Request) -> web.Response:
    caller, pilot, access = _admin(request, "u")
    consent_id = request.match_info["id"]
    erase_text = request.query.get("erase", "false")
    if erase_text not in ("true", "false"):
        raise BadParameter("erase must be true or false")
    async with access.consent_changes:
        state = access.book.get(pilot.id, consent_id)
        if state is None:
            raise NotFound(f"no Consent/{consent_id[:64]} in pilot {pilot.id}")
        decision = decide_consent_change(
            pilot, org=caller.org, change="withdraw", stored=state.stored()
        )
        action = _action(decision)
        if state.consent is None:
            raise web.HTTPGone(reason="this Consent's resource was erased")
        consent = with_status(state.consent, "inactive")
        entry, erased = await commit_consent(
            request,
            caller,
            pilot,
            consent,
            action,
            custodian=state.custodian,
            erase=erase_text == "true",
        )
    response = _response(consent, entry, 200, _base(request))
    response.headers["X-Erased-Bodies"] = str(erased)
    return response


def _action(decision: Decision) -> str:
    """The ``consent`` entry action of an allowed change; a refusal is a 403 with its reason."""
    if not decision.allowed:
        raise Forbidden(decision.detail, code=decision.reason.value)
    return ENTRY_ACTIONS[decision.reason]


def _new_id() -> str:
    return uuid.uuid4().hex


def _base(request: web.Request) -> str:
    from ..smart.bearer import issuer

    return issuer(request)


def consent_json(consent: Consent) -> dict[str, Any]:
    document: dict[str, Any] = consent.model_dump(mode="json")
    return document
