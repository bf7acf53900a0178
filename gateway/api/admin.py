"""The admin API: registry changes (each one a ``registry`` entry on the log) and the
dead-letter table. Bearer-token protected; off unless ``admin_token`` is set."""

from __future__ import annotations

import asyncio
import json

from aiohttp import web

from ledger.store import Entry

from .. import registry as reg
from ..appkeys import hub_of
from .models import (
    CommittedEntry,
    DeadLetterList,
    KeyRevoke,
    KeyRotate,
    OrgAdd,
    RegistryChange,
    SourceAdd,
    SourceRevoke,
)
from .params import int_param, json_body, require_admin

routes = web.RouteTableDef()

ACTOR = "admin-api"


def _admin(request: web.Request) -> None:
    token = hub_of(request).settings.admin_token
    require_admin(request, token.get_secret_value() if token else None)


def _committed(entries: list[Entry]) -> web.Response:
    body = RegistryChange(
        entries=[
            CommittedEntry(
                index=e.index, leaf_hash=bytes(e.leaf_hash).hex(), entry=json.loads(e.leaf)
            )
            for e in entries
        ]
    )
    return web.json_response(text=body.model_dump_json(), status=201)


@routes.post("/api/v1/admin/registry/orgs")
async def org_add(request: web.Request) -> web.Response:
    _admin(request)
    body = await json_body(request, OrgAdd)
    done = await hub_of(request).change_registry(
        lambda r: reg.plan_org_add(r, body.org, name=body.name, actor=ACTOR)
    )
    return _committed(done)


@routes.post("/api/v1/admin/registry/sources")
async def source_add(request: web.Request) -> web.Response:
    _admin(request)
    b = await json_body(request, SourceAdd)
    done = await hub_of(request).change_registry(
        lambda r: reg.plan_source_add(
            r,
            pilot=b.pilot,
            source=b.source,
            org=b.org,
            types=b.types,
            public_key=b.public_key,
            actor=ACTOR,
            valid_from=b.valid_from,
            valid_until=b.valid_until,
        )
    )
    return _committed(done)


@routes.post("/api/v1/admin/registry/sources/revoke")
async def source_revoke(request: web.Request) -> web.Response:
    _admin(request)
    b = await json_body(request, SourceRevoke)
    done = await hub_of(request).change_registry(
        lambda r: reg.plan_source_revoke(
            r, pilot=b.pilot, source=b.source, actor=ACTOR, reason=b.reason
        )
    )
    return _committed(done)


@routes.post("/api/v1/admin/registry/keys/rotate")
async def key_rotate(request: web.Request) -> web.Response:
    _admin(request)
    b = await json_body(request, KeyRotate)
    done = await hub_of(request).change_registry(
        lambda r: reg.plan_key_rotate(
            r,
            pilot=b.pilot,
            source=b.source,
            public_key=b.public_key,
            actor=ACTOR,
            valid_from=b.valid_from,
            valid_until=b.valid_until,
        )
    )
    return _committed(done)


@routes.post("/api/v1/admin/registry/keys/revoke")
async def key_revoke(request: web.Request) -> web.Response:
    _admin(request)
    b = await json_body(request, KeyRevoke)
    done = await hub_of(request).change_registry(
        lambda r: reg.plan_key_revoke(r, key=b.key_id, actor=ACTOR, at=b.at, reason=b.reason)
    )
    return _committed(done)


@routes.get("/api/v1/admin/dead-letters")
async def dead_letters(request: web.Request) -> web.Response:
    _admin(request)
    limit = min(int_param(request, "limit", 100), 1000)
    hub = hub_of(request)
    # Newest first, including those not yet flushed by the housekeeping task.
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, hub.dead_letters.write, hub.dead_letters.take())
    body = DeadLetterList(dead_letters=hub.dead_letters.latest(limit))
    return web.json_response(text=body.model_dump_json())
