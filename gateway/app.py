"""The hub's aiohttp application factory.

State lives in typed ``web.AppKey``s; the background parts start and stop in cleanup
contexts, in this order (and the reverse on shutdown, which is the drain):

1. the ledger store (open, registry replay; finally the last checkpoint and close),
2. the broker link (reconnect loop; on shutdown flush receipts, then disconnect),
3. the sequencer and the checkpoint task (on shutdown commit what is queued),
4. the intake (on shutdown stop taking messages, verify what was taken).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Coroutine
from typing import Any

from aiohttp import web

from .access import retention
from .access.control import AccessControl
from .api import admin, audit, clients, health, ledger, openapi, records, registry
from .appkeys import ACCESS, HUB, SETTINGS
from .dashboard import setup_dashboard
from .errors import error_middleware
from .fhir import consent, consent_search, metadata, read, search
from .fhir.outcome import fhir_errors
from .hub import Hub
from .ingest.checks import no_consent_check
from .settings import HubSettings
from .smart import routes as smart

log = logging.getLogger("swiftchain.hub")

__all__ = ["HUB", "SETTINGS", "create_app"]


def create_app(settings: HubSettings) -> web.Application:
    """The whole hub; records needing consent are checked against the consent book at
    ingest unless ``settings.enforce_consent`` is off."""
    app = web.Application(middlewares=[error_middleware, fhir_errors], client_max_size=64 * 1024)
    app[SETTINGS] = settings
    access = AccessControl(settings)
    app[ACCESS] = access
    consent_check = access.consent_check if settings.enforce_consent else no_consent_check
    late_windows = {pilot.id: pilot.late_delivery_window for pilot in access.pilots.values()}
    app[HUB] = Hub(settings, consent_check, late_windows)
    app.cleanup_ctx.extend([_store, _access, _broker_link, _sequencer, _intake])
    for module in (health, ledger, registry, admin, openapi):
        app.add_routes(module.routes)
    for module in (smart, clients, records, audit, metadata, search, read, consent, consent_search):
        app.add_routes(module.routes)
    setup_dashboard(app)
    return app


async def _stop(task: asyncio.Task[Any]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _spawn(coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
    task = asyncio.create_task(coro, name=name)
    task.add_done_callback(_report_crash)
    return task


def _report_crash(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.error("hub task %s stopped: %r", task.get_name(), exc, exc_info=exc)


async def _store(app: web.Application) -> AsyncIterator[None]:
    hub = app[HUB]
    hub.open()
    try:
        yield
    finally:
        hub.close()


async def _access(app: web.Application) -> AsyncIterator[None]:
    """Consents, clients and the token key; the retention sweep (after the store opened,
    before the intake takes records that the consent check needs the book for)."""
    hub, access = app[HUB], app[ACCESS]
    access.open(hub)
    task = _spawn(retention.run(hub, access), "retention")
    try:
        yield
    finally:
        await _stop(task)
        access.close()


async def _broker_link(app: web.Application) -> AsyncIterator[None]:
    hub = app[HUB]
    task = _spawn(hub.link.run(), "mqtt-link")
    try:
        yield
    finally:
        await hub.link.flush(hub.settings.drain_timeout_s)
        await _stop(task)


async def _sequencer(app: web.Application) -> AsyncIterator[None]:
    hub = app[HUB]
    sequencer = hub.sequencer
    seq_task = _spawn(sequencer.run(), "sequencer")
    cp_task = _spawn(_housekeeping(hub), "checkpoints")
    try:
        yield
    finally:
        sequencer.close()
        await _bounded(seq_task, hub.settings.drain_timeout_s, "sequencer")
        await _stop(cp_task)
        await sequencer.persist_checkpoint()


async def _intake(app: web.Application) -> AsyncIterator[None]:
    hub = app[HUB]
    intake = hub.intake
    task = _spawn(intake.run(), "intake")
    hub.link.on_message = intake.offer
    try:
        yield
    finally:
        hub.draining = True
        hub.link.on_message = None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(hub.settings.drain_timeout_s):
                await intake.drain()
        await _stop(task)


async def _bounded(task: Awaitable[None], seconds: float, what: str) -> None:
    try:
        async with asyncio.timeout(seconds):
            await task
    except TimeoutError:
        log.error("%s did not drain within %.1fs", what, seconds)


async def _housekeeping(hub: Hub) -> None:
    """Persist the latest checkpoint and the dead letters once per interval."""
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(hub.settings.checkpoint_interval_s)
        try:
            await hub.sequencer.persist_checkpoint()
            letters = hub.dead_letters.take()
            if letters:
                await loop.run_in_executor(None, hub.dead_letters.write, letters)
        except Exception:
            log.exception("housekeeping failed; retrying next interval")
