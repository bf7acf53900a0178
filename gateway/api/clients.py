"""Admin API for hospital clients: register (or replace) one, list them, remove one.

Registering a client again, or removing it, ends every access token of its earlier
registration at once (the tokens carry the registration's version)."""

from __future__ import annotations

import asyncio

from aiohttp import web
from pydantic import TypeAdapter, ValidationError

from ..access.clients import ClientId, ClientList, ClientRegistration, check_registration
from ..appkeys import ACCESS
from ..errors import BadParameter, NotFound
from .admin import _admin
from .params import json_body

routes = web.RouteTableDef()

_CLIENT_ID: TypeAdapter[str] = TypeAdapter(ClientId)


@routes.post("/api/v1/admin/clients")
async def register(request: web.Request) -> web.Response:
    _admin(request)
    access = request.app[ACCESS]
    reg = await json_body(request, ClientRegistration)
    client = check_registration(reg, access.pilots)
    # The access file commits with an fsync: off the event loop.
    await asyncio.get_running_loop().run_in_executor(None, access.db.put_client, client)
    return web.json_response(reg.model_dump(), status=201)


@routes.get("/api/v1/admin/clients")
async def list_clients(request: web.Request) -> web.Response:
    _admin(request)
    access = request.app[ACCESS]
    rows = await asyncio.get_running_loop().run_in_executor(None, access.db.clients)
    return web.json_response(ClientList(clients=[r.public() for r in rows]).model_dump())


@routes.delete("/api/v1/admin/clients/{client_id}")
async def remove(request: web.Request) -> web.Response:
    """Remove a client: it gets no new token, and its tokens stop working at once."""
    _admin(request)
    access = request.app[ACCESS]
    client_id = request.match_info["client_id"]
    try:
        _CLIENT_ID.validate_python(client_id)
    except ValidationError:
        raise BadParameter(
            "client_id must be 1-128 of A-Z a-z 0-9 . _ : -", code="client_id"
        ) from None
    loop = asyncio.get_running_loop()
    if not await loop.run_in_executor(None, access.db.remove_client, client_id):
        raise NotFound(f"no registered client {client_id!r}")
    return web.json_response({"client_id": client_id, "removed": True})
