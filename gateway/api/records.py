"""``GET /api/v1/records``: non-personal (city) records by pilot, type and time, JSON.

Same gate as the FHIR facade: a bearer token of the pilot asked about, the
``X-Purpose-Of-Use`` header, the pilot's policy, one ``access`` entry per request committed
before the answer. Personal data is served only through ``/fhir/`` (consent-gated).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

from aiohttp import web

from pilots import decide_access

from ..access.gate import gated
from ..access.purpose import HEADER, request_purpose
from ..appkeys import ACCESS, hub_of
from ..errors import BadParameter, Forbidden
from .params import int_param, str_param

routes = web.RouteTableDef()

_TYPE = re.compile(r"^[a-z][a-z0-9]{0,15}\.[A-Za-z][A-Za-z0-9-]{0,62}$")
_TIME = re.compile(r"^\d{4}-\d\d-\d\d(T\d\d:\d\d:\d\d(\.\d{1,6})?Z)?$")
KNOWN = frozenset({"pilot", "type", "from", "to", "limit", "after"})


def _time(request: web.Request, name: str) -> str | None:
    value = str_param(request, name)
    if value is None or value == "":
        return None
    if not _TIME.match(value):
        raise BadParameter(f"{name} must be YYYY-MM-DD or an RFC 3339 UTC time")
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadParameter(f"{name} is not a real time") from None
    return value.removesuffix("Z")


@routes.get("/api/v1/records")
async def records(request: web.Request) -> web.Response:
    access = request.app[ACCESS]
    async with gated(request) as gate:
        gate.purpose = request_purpose(request.headers.get(HEADER), gate.caller.token.purposes)
        unknown = sorted(set(request.query) - KNOWN)
        if unknown:
            raise BadParameter(f"unknown query parameter {unknown[0][:40]!r}")
        pilot_id = str_param(request, "pilot")
        data_type = str_param(request, "type")
        if not pilot_id or not data_type:
            raise BadParameter("pilot and type are required")
        if not _TYPE.match(data_type):
            raise BadParameter("type must be a data type id such as city.air-quality")
        gate.data_type = data_type
        if pilot_id != gate.caller.pilot:
            raise Forbidden(
                f"this access token is for pilot {gate.caller.pilot!r}, not {pilot_id[:64]!r}",
                code="wrong_pilot",
            )
        pilot = access.pilots.get(pilot_id)
        if pilot is None:
            raise Forbidden(f"this hub has no definition of pilot {pilot_id!r}", code="no_pilot")
        dt = pilot.data_type(data_type)
        if dt is not None and dt.personal:
            raise BadParameter(
                f"{data_type} is personal data: search it through /fhir/ with a subject",
                code="personal_data",
            )
        since, until = _time(request, "from"), _time(request, "to")
        limit = min(int_param(request, "limit", 100), 1000) or 1
        after = int_param(request, "after", 0) if request.query.get("after") else -1
        decision = decide_access(
            pilot,
            org=gate.caller.org,
            data_type=data_type,
            purpose=gate.purpose,
            at=datetime.now(UTC),
        )
        if not decision.allowed:
            await gate.log(decision)
            raise Forbidden(decision.detail, code=decision.reason.value)
        # On the event loop on purpose: one indexed range read, well under a millisecond,
        # cheaper than a hop to a thread.
        rows = hub_of(request).ledger.reader.type_records(
            pilot=pilot.id,
            data_type=data_type,
            since=since,
            until=until,
            after=after,
            limit=limit,
        )
        index = await gate.log(decision, count=len(rows))
    body = {
        "records": [
            {
                "index": r.index,
                "id": r.id,
                "source": r.source,
                "type": data_type,
                "observed_at": r.observed_at,
                "payload": json.loads(r.payload),
            }
            for r in rows
        ],
        "access_index": index,
        "next_after": rows[-1].index if len(rows) == limit else None,
    }
    return web.json_response(body)
