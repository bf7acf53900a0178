"""``GET /api/v1/audit?subject=<pseudonym>``: every ``access`` entry about one person in the
caller's pilot -- who, when, for what purpose, allowed or denied, and the log index (for an
inclusion proof against a signed checkpoint). For the pilot's auditors and the person's
advocates (its consent administrators).

The view is itself a read about the person: it passes the gate, and its ``access`` entry
(purpose ``HCOMPL`` for an auditor's mandate, ``PATRQT`` for the person's own view through a
consent administrator; a refusal as a deny) is committed before the answer, whose
``access_index`` names it.

Break-glass reads (ETREAT, allowed) are flagged on their own (``break_glass_read``) and
counted at the top (``break_glass_reads``): each is for review. ``break_glass`` alone is
also set on refused emergency attempts."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from aiohttp import web

from ledger.errors import InvalidEnvelope
from ledger.sealed import Opening, opened, subject_tag, unblind
from ledger.store import Entry, LedgerReader
from ledger.suite import Suite
from pilots import can_audit, can_manage_consent

from ..access.control import AccessControl
from ..access.gate import gated
from ..access.purpose import AUDIT_PURPOSE, OWN_AUDIT_PURPOSE
from ..appkeys import ACCESS, hub_of
from ..errors import BadParameter, Forbidden
from .params import int_param

routes = web.RouteTableDef()
log = logging.getLogger("swiftchain.hub.audit")

_PSEUDONYM = re.compile(r"^[A-Za-z0-9_-]{8,128}$")


@routes.get("/api/v1/audit")
async def audit(request: web.Request) -> web.Response:
    access = request.app[ACCESS]
    async with gated(request) as gate:
        caller = gate.caller
        subject = request.query.get("subject", "").removeprefix("Patient/")
        if not _PSEUDONYM.match(subject):
            raise BadParameter("subject must be a pseudonym (8-128 of A-Z a-z 0-9 _ -)")
        gate.subject = subject
        limit = min(int_param(request, "limit", 1000), 1000) or 1
        pilot = access.pilots.get(caller.pilot)
        if pilot is None:
            raise Forbidden(
                f"this hub has no definition of pilot {caller.pilot!r}", code="no_pilot"
            )
        decision, gate.purpose = can_audit(pilot, caller.org), AUDIT_PURPOSE
        if not decision.allowed:
            decision, gate.purpose = can_manage_consent(pilot, caller.org), OWN_AUDIT_PURPOSE
        if not decision.allowed:
            gate.purpose = None
            raise Forbidden(
                f"{caller.org!r} is neither an auditor nor a consent administrator of {pilot.id!r}",
                code="not_auditor",
            )
        hub = hub_of(request)
        # A read barrier: the access entries other front ends committed are indexed here
        # before the trail is read (a no-op for a hub in one process).
        await hub.sync()
        reader = hub.ledger.reader
        openings = _openings(access, reader, pilot.id, subject)
        entries = [
            _entry(reader.entry(index), opening, reader.suite)
            for index, opening in sorted(openings.items())[-limit:]
        ]
        # This read is itself an access entry about the person, committed before the answer
        # (it shows in the next view).
        access_index = await gate.log(decision, count=len(entries))
    body = {
        "pilot": pilot.id,
        "subject": subject,
        "log_size": reader.size(),
        "access_index": access_index,
        "break_glass_reads": sum(e["break_glass_read"] for e in entries),
        "entries": entries,
    }
    return web.json_response(body)


def _openings(
    access: AccessControl, reader: LedgerReader, pilot: str, subject: str
) -> dict[int, Opening | None]:
    """Index -> opening of every ``access`` entry about the person: a v1 leaf names them in
    the open (no opening), a v2 one through its held opening or, once the person was erased,
    its blinded one, which their pseudonym opens."""
    indexes = access.access_indexes(pilot, subject)
    held = reader.openings(indexes)
    found: dict[int, Opening | None] = {i: held.get(i) for i in indexes}
    for index, box in reader.blinded(subject_tag(pilot, subject)):
        if reader.entry(index).kind != "access":
            continue  # the person's consent entries, blinded with them
        try:
            found[index] = unblind(box, pilot=pilot, subject=subject, index=index)
        except InvalidEnvelope:
            log.error("blinded opening of entry %d does not open", index)
    return found


def _entry(entry: Entry, opening: Opening | None, suite: Suite) -> dict[str, Any]:
    """One decision as the view shows it, with the opening (salt and fields) that lets the
    reader check it against the public leaf (``leaf_hash``, an inclusion proof), its
    commitment in the log's ``suite``."""
    leaf = opened(json.loads(entry.leaf), opening, suite)
    break_glass = bool(leaf.get("break_glass", False))
    return {
        "opening": opening.public() if opening is not None else None,
        "index": entry.index,
        "leaf_hash": bytes(entry.leaf_hash).hex(),
        "at": leaf.get("at"),
        "client": leaf.get("client"),
        "org": leaf.get("org"),
        "purpose": leaf.get("purpose"),
        "type": leaf.get("type"),
        "decision": leaf.get("decision"),
        "reason": leaf.get("reason"),
        "break_glass": break_glass,
        "break_glass_read": break_glass and leaf.get("decision") == "allow",
        "count": leaf.get("count"),
    }
