"""The application's typed state keys (one place, so route modules need not import the
factory)."""

from __future__ import annotations

from aiohttp import web

from .access.control import AccessControl
from .hub import Hub
from .settings import HubSettings

SETTINGS = web.AppKey("settings", HubSettings)
HUB = web.AppKey("hub", Hub)
ACCESS = web.AppKey("access", AccessControl)


def hub_of(request: web.Request) -> Hub:
    return request.app[HUB]
