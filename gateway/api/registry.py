"""The public registry: organisations, sources and their keys with validity periods, so
that every record signature on the log can be checked from outside."""

from __future__ import annotations

from aiohttp import web

from ..appkeys import hub_of
from .models import KeyList, OrgList, SourceList
from .params import str_param

routes = web.RouteTableDef()


@routes.get("/api/v1/registry/orgs")
async def orgs(request: web.Request) -> web.Response:
    body = OrgList(orgs=hub_of(request).registry.public_orgs())
    return web.json_response(text=body.model_dump_json())


@routes.get("/api/v1/registry/sources")
async def sources(request: web.Request) -> web.Response:
    pilot = str_param(request, "pilot")
    rows = hub_of(request).registry.public_sources()
    body = SourceList(sources=[s for s in rows if pilot is None or s["pilot"] == pilot])
    return web.json_response(text=body.model_dump_json())


@routes.get("/api/v1/registry/keys")
async def keys(request: web.Request) -> web.Response:
    pilot, source = str_param(request, "pilot"), str_param(request, "source")
    rows = hub_of(request).registry.public_keys()
    body = KeyList(
        keys=[
            k
            for k in rows
            if (pilot is None or k["pilot"] == pilot) and (source is None or k["source"] == source)
        ]
    )
    return web.json_response(text=body.model_dump_json())
