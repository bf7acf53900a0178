"""``GET /api/v1/audit?subject=<pseudonym>``: every ``access`` entry about one person in the
caller's pilot -- who, when, for what purpose, allowed or denied, and the log index (for an
inclusion proof against a signed checkpoint). For the pilot's auditors and the person's
advocates (its consent administrators).

Break-glass reads (ETREAT, allowed) are flagged on their own (``break_glass_read``) and
counted at the top (``break_glass_reads``): each is for review. ``break_glass`` alone is
also set on refused emergency attempts."""

from __future__ import annotations

import json
import re

from aiohttp import web

from pilots import can_audit, can_manage_consent

from ..appkeys import ACCESS, hub_of
from ..errors import BadParameter, Forbidden
from ..smart.bearer import authenticate
from .params import int_param

routes = web.RouteTableDef()

_PSEUDONYM = re.compile(r"^[A-Za-z0-9_-]{8,128}$")


@routes.get("/api/v1/audit")
async def audit(request: web.Request) -> web.Response:
    caller = authenticate(request)
    access = request.app[ACCESS]
    subject = request.query.get("subject", "").removeprefix("Patient/")
    if not _PSEUDONYM.match(subject):
        raise BadParameter("subject must be a pseudonym (8-128 of A-Z a-z 0-9 _ -)")
    limit = min(int_param(request, "limit", 1000), 1000) or 1
    pilot = access.pilots.get(caller.pilot)
    if pilot is None:
        raise Forbidden(f"this hub has no definition of pilot {caller.pilot!r}", code="no_pilot")
    decision = can_audit(pilot, caller.org)
    if not decision.allowed:
        decision = can_manage_consent(pilot, caller.org)
    if not decision.allowed:
        raise Forbidden(
            f"{caller.org!r} is neither an auditor nor a consent administrator of {pilot.id!r}",
            code="not_auditor",
        )
    reader = hub_of(request).ledger.reader
    indexes = access.access_indexes(pilot.id, subject)[-limit:]
    entries = []
    glass_reads = 0
    for index in indexes:
        entry = reader.entry(index)
        leaf = json.loads(entry.leaf)
        break_glass = bool(leaf.get("break_glass", False))
        glass_read = break_glass and leaf.get("decision") == "allow"
        glass_reads += glass_read
        entries.append(
            {
                "index": index,
                "leaf_hash": bytes(entry.leaf_hash).hex(),
                "at": leaf.get("at"),
                "client": leaf.get("client"),
                "org": leaf.get("org"),
                "purpose": leaf.get("purpose"),
                "type": leaf.get("type"),
                "decision": leaf.get("decision"),
                "reason": leaf.get("reason"),
                "break_glass": break_glass,
                "break_glass_read": glass_read,
                "count": leaf.get("count"),
            }
        )
    body = {
        "pilot": pilot.id,
        "subject": subject,
        "log_size": reader.size(),
        "break_glass_reads": glass_reads,
        "entries": entries,
    }
    return web.json_response(body)
