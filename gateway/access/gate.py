"""The shell every data route runs in: authenticate, then make sure exactly one ``access``
entry is committed for the request (allow with the count served, or deny with the reason),
before the response leaves the hub. A refusal raised inside is logged as a deny, then
rendered by the route family's error middleware. Which routes run in it is the table in
:mod:`.exposure` (``gated``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiohttp import web

from pilots import Decision

from ..appkeys import ACCESS, hub_of
from ..errors import ApiError
from ..smart.bearer import authenticate
from .control import Caller, Refusal


@dataclass
class Gate:
    request: web.Request
    caller: Caller
    purpose: str | None = None
    data_type: str | None = None
    subject: str | None = None
    logged_index: int | None = None
    asked: str | None = None
    """What was asked, where the URL does not say it (a search's form): logged instead of
    the URL's query."""

    async def log(self, decision: Decision | Refusal, count: int | None = None) -> int:
        request = self.request
        entry = await request.app[ACCESS].log_access(
            hub_of(request),
            self.caller,
            decision,
            purpose=self.purpose,
            data_type=self.data_type,
            subject=self.subject,
            request=f"{request.method} {self.asked or request.path_qs}",
            count=count,
        )
        self.logged_index = entry.index
        return entry.index


@asynccontextmanager
async def gated(request: web.Request) -> AsyncIterator[Gate]:
    """``async with gated(request) as gate:`` -- 401 (unlogged) without a valid token."""
    gate = Gate(request, authenticate(request))
    try:
        yield gate
    except ApiError as exc:
        if gate.logged_index is None:
            await gate.log(Refusal(exc.code))
        raise
    except web.HTTPException as exc:
        if gate.logged_index is None and exc.status >= 400:
            await gate.log(Refusal(f"http_{exc.status}"))
        raise
    if gate.logged_index is None:  # a route that forgot to decide: deny, loudly
        await gate.log(Refusal("no_decision"))
        raise web.HTTPInternalServerError(reason="the route made no access decision")
