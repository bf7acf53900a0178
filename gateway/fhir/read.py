"""The read interaction, ``GET /fhir/{Observation|DiagnosticReport|Composition}/{id}``
(FHIR R4B 3.1.0.2): what every searchset entry's ``fullUrl`` names.

Gated like a search: one decision on the record's subject (policy, then the subject's
current Consent, with the record's own codes), then the Consent the record names must
permit the same access; one ``access`` entry, allow or deny, committed before the resource
leaves. ``{id}`` is the resource's own id, or its record's id where the resource has none;
if several held records carry the same resource id, the newest is the current version.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from ..access.gate import gated
from ..access.purpose import HEADER, request_purpose
from ..appkeys import ACCESS, hub_of
from ..errors import Forbidden, NotFound
from ..smart.scopes import allows
from .outcome import FHIR_JSON, NotSupported
from .params import resource_codes
from .results import BadSearch
from .search import SEARCHABLE, pilot_of, record_consent_permits, subject_decision

routes = web.RouteTableDef()

#: FHIR R4B 2.24.0.1 ``id``.
_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


def _read_handler(resource: str) -> Any:
    async def handler(request: web.Request) -> web.Response:
        return await read(request, resource)

    handler.__name__ = f"read_{resource}"
    return handler


for _resource in SEARCHABLE:
    routes.get(f"/fhir/{_resource}/{{id}}")(_read_handler(_resource))


async def read(request: web.Request, resource: str) -> web.Response:
    resource_id = request.match_info["id"]
    if resource_id.startswith(("_", "$")):
        # _history, $everything...: interactions and operations, not ids (an id has no _ or $).
        raise NotSupported(
            f"GET /fhir/{resource}/{resource_id[:40]} is not supported here (see /fhir/metadata)"
        )
    data_type = SEARCHABLE[resource]
    access = request.app[ACCESS]
    async with gated(request) as gate:
        gate.data_type = data_type
        gate.purpose = request_purpose(request.headers.get(HEADER), gate.caller.token.purposes)
        if not _ID.match(resource_id):
            raise BadSearch(f"{resource_id[:40]!r} is not a FHIR id (1-64 of A-Z a-z 0-9 - .)")
        pilot = pilot_of(request, gate, None)
        if not allows(list(gate.caller.token.scopes), resource, "r"):
            raise Forbidden(
                f"the access token has no scope to read {resource}", code="insufficient_scope"
            )
        # On the event loop on purpose: one indexed read.
        row = hub_of(request).ledger.reader.resource(
            pilot=pilot.id, data_type=data_type, resource_id=resource_id
        )
        if row is None:
            raise NotFound(f"no {resource}/{resource_id} in pilot {pilot.id}")
        gate.subject = row.subject
        now = datetime.now(UTC)
        codes = resource_codes(json.loads(row.payload)) or None
        decision = subject_decision(access.book, pilot, gate, row.subject, now, codes)
        if decision.allowed and row.subject is not None:
            own = record_consent_permits(
                access.book, pilot, gate, row, row.subject, now, codes=codes
            )
            decision = decision if own.allowed else own
        if not decision.allowed:
            await gate.log(decision)
            raise Forbidden(decision.detail, code=decision.reason.value)
        await gate.log(decision, count=1)
    return web.Response(
        body=row.payload,
        content_type=FHIR_JSON,
        headers={"X-Ledger-Index": str(row.index)},
    )
