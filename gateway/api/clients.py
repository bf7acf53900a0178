"""Admin API for hospital clients: register (or replace) one, list them."""

from __future__ import annotations

import asyncio

from aiohttp import web

from ..access.clients import ClientList, ClientRegistration, check_registration
from ..appkeys import ACCESS
from .admin import _admin
from .params import json_body

routes = web.RouteTableDef()


@routes.post("/api/v1/admin/clients")
async def register(request: web.Request) -> web.Response:
    _admin(request)
    access = request.app[ACCESS]
    reg = await json_body(request, ClientRegistration)
    client = check_registration(reg, access.pilots)
    await asyncio.get_running_loop().run_in_executor(None, access.db.put_client, client)
    return web.json_response(reg.model_dump(), status=201)


@routes.get("/api/v1/admin/clients")
async def list_clients(request: web.Request) -> web.Response:
    _admin(request)
    access = request.app[ACCESS]
    rows = await asyncio.get_running_loop().run_in_executor(None, access.db.clients)
    return web.json_response(ClientList(clients=[r.public() for r in rows]).model_dump())
