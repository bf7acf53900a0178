"""The admin API: registry changes (each one a ``registry`` entry on the log) and the
dead-letter table. Bearer-token protected; off unless ``admin_token`` is set."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

from aiohttp import web
from pydantic import BaseModel

from ..appkeys import hub_of
from ..registry.changes import CHANGES, plan
from .models import CommittedEntry, DeadLetterList, RegistryChange
from .params import int_param, json_body, require_admin

routes = web.RouteTableDef()

ACTOR = "admin-api"


def _admin(request: web.Request) -> None:
    token = hub_of(request).settings.admin_token
    require_admin(request, token.get_secret_value() if token else None)


def _change_handler(model: type[BaseModel]) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        _admin(request)
        change = await json_body(request, model)
        done = await hub_of(request).change_registry(lambda r: plan(change, r, ACTOR))
        body = RegistryChange(
            entries=[
                CommittedEntry(
                    index=e.index, leaf_hash=bytes(e.leaf_hash).hex(), entry=json.loads(e.leaf)
                )
                for e in done
            ]
        )
        return web.json_response(text=body.model_dump_json(), status=201)

    return handler


for _path, _model in CHANGES.items():
    routes.post(f"/api/v1/admin/registry/{_path}")(_change_handler(_model))


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
