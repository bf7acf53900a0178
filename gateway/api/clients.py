"""Admin API for hospital clients: register (or replace) one, list them with their state,
revoke one.

Registering a client again ends every access token of its earlier registration at once (the
tokens carry the registration's version). A revocation is a ``client`` entry on the log (who,
when, why): from the next request the client's tokens and assertions are refused, and its
keys can be registered by no one again. Its row stays, ``revoked``, for the listing and
for precise errors; it may be registered again with a new key."""

from __future__ import annotations

import asyncio
import json

from aiohttp import web

from ..access.clients import ClientList, ClientRegistration, check_registration
from ..access.revocation import ClientRevoke
from ..appkeys import ACCESS, hub_of
from .admin import ACTOR, _admin
from .models import CommittedEntry
from .params import json_body

routes = web.RouteTableDef()


@routes.post("/api/v1/admin/clients")
async def register(request: web.Request) -> web.Response:
    _admin(request)
    access = request.app[ACCESS]
    reg = await json_body(request, ClientRegistration)
    client = check_registration(reg, access.pilots)
    async with access.client_changes:
        # The access store commits with an fsync (or a round trip): off the event loop.
        await asyncio.get_running_loop().run_in_executor(None, access.db.put_client, client)
    return web.json_response(reg.model_dump(), status=201)


@routes.get("/api/v1/admin/clients")
async def list_clients(request: web.Request) -> web.Response:
    _admin(request)
    access = request.app[ACCESS]
    rows = await asyncio.get_running_loop().run_in_executor(None, access.db.clients)
    return web.json_response(ClientList(clients=[r.public() for r in rows]).model_dump())


@routes.post("/api/v1/admin/clients/revoke")
async def revoke(request: web.Request) -> web.Response:
    """Revoke a client: a ``client`` entry on the log, in force on the next request."""
    _admin(request)
    change = await json_body(request, ClientRevoke)
    actor = f"{ACTOR}/{change.requested_by}" if change.requested_by else ACTOR
    stored = await request.app[ACCESS].revoke_client(hub_of(request), change, actor)
    body = CommittedEntry(
        index=stored.index, leaf_hash=bytes(stored.leaf_hash).hex(), entry=json.loads(stored.leaf)
    )
    return web.json_response(text=body.model_dump_json(), status=201)
