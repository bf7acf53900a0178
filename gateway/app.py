"""The hub's aiohttp application factory.

State lives in typed ``web.AppKey``s; the background parts start and stop in cleanup
contexts, in this order (and the reverse on shutdown, which is the drain):

1. the ledger store (open, registry replay; finally the last checkpoint and close),
2. the access state (consents, clients, the token key) and the retention sweep,
3. the broker link (reconnect loop; on shutdown flush receipts, then disconnect),
4. the witness rounds, when the settings name a trust policy (on shutdown, after the last
   commit, one last round for the last checkpoint),
5. the sequencer and the checkpoint task (on shutdown commit what is queued),
6. the intake (on shutdown stop taking messages, verify what was taken).

In a front end (``gateway.cluster``) the sequencer and the witness rounds run in the
sequencer process: step 1 reaches it and replays the log, step 2 then follows its commits,
step 5 keeps the dead letters and, on shutdown, waits for the answers to the records sent;
without shared subscriptions only the first front end has steps 3 and 6.

The whole stop shares one budget, ``drain_timeout_s``, started by the shutdown signal
(:class:`gateway.hub.Drain`); its end is logged as "drained in X s" or "drain cut at X s
with N records unreceipted, they will be resent" (QoS 1 and the outboxes make that safe).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from ledger.errors import StoreError

from .access import retention
from .access.control import AccessControl
from .access.exposure import ROUTES, Exposure
from .api import admin, audit, clients, health, ledger, openapi, records, registry
from .appkeys import ACCESS, HUB, SETTINGS
from .dashboard import setup_dashboard
from .errors import NotReady, error_middleware
from .fhir import consent, consent_search, metadata, read, search
from .fhir.outcome import fhir_errors
from .hub import Drain, Hub
from .hub_ledger import HubLedger, keep_lease
from .ingest.checkpoints import StoreNotice
from .ingest.checks import no_consent_check
from .settings import HubSettings
from .smart import routes as smart

log = logging.getLogger("swiftchain.hub")

__all__ = ["HUB", "SETTINGS", "create_app"]


def create_app(settings: HubSettings, front: tuple[int, str] | None = None) -> web.Application:
    """The whole hub, or (``front``: its index and the run's secret) one of its front ends
    beside a sequencer process (``gateway.cluster``); records needing consent are checked
    against the consent book at ingest unless ``settings.enforce_consent`` is off."""
    app = web.Application(
        middlewares=[error_middleware, fhir_errors, _standby_gate], client_max_size=64 * 1024
    )
    app[SETTINGS] = settings
    access = AccessControl(settings)
    app[ACCESS] = access
    consent_check = access.consent_check if settings.enforce_consent else no_consent_check
    late_windows = {pilot.id: pilot.late_delivery_window for pilot in access.pilots.values()}
    app[HUB] = Hub(settings, consent_check, late_windows, front=front)
    app.cleanup_ctx.extend([_store, _access, _broker_link, _witnesses, _sequencer, _intake])
    app.on_shutdown.append(_begin_drain)
    if front is not None:
        app.on_response_prepare.append(_front_header(front[0]))
    for module in (health, ledger, registry, admin, openapi):
        app.add_routes(module.routes)
    for module in (smart, clients, records, audit, metadata, search, read, consent, consent_search):
        app.add_routes(module.routes)
    setup_dashboard(app)
    return app


#: Names the front-end process that answered (an operator's aid: which process's log to read).
FRONT_HEADER = "Swiftchain-Front"


def _front_header(
    index: int,
) -> Callable[[web.Request, web.StreamResponse], Awaitable[None]]:
    value = str(index)

    async def name(request: web.Request, response: web.StreamResponse) -> None:
        response.headers[FRONT_HEADER] = value

    return name


def http_shutdown_timeout(settings: HubSettings) -> float:
    """How long the stop waits for HTTP requests in flight: half the drain, so that the
    records in flight keep the other half whatever the HTTP clients do."""
    return settings.drain_timeout_s / 2


async def _begin_drain(app: web.Application) -> None:
    app[HUB].begin_drain()


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
    await hub.start()
    try:
        yield
    finally:
        hub.close()
        if hub.drain is not None:
            log.info("%s", hub.drain.outcome())


async def _access(app: web.Application) -> AsyncIterator[None]:
    """Consents, clients and the token key; the retention sweep (after the store opened,
    before the intake takes records that the consent check needs the book for)."""
    hub, access = app[HUB], app[ACCESS]
    access.open(hub)
    follow = None
    if hub.remote is not None:
        # A front end: now that the log is replayed, follow the sequencer's commits.
        hub.remote.go_live()
        follow = _spawn(hub.remote.run(), "sequencer-channel")
    # One retention sweep per hub: the embedded hub's, or the first front end's.
    sweeps = hub.front is None or hub.front[0] == 0
    task = _spawn(retention.run(hub, access), "retention") if sweeps else None
    try:
        yield
    finally:
        if task is not None:
            await _stop(task)
        if follow is not None and hub.remote is not None:
            hub.remote.close()
            await _stop(follow)
        access.close()


async def _broker_link(app: web.Application) -> AsyncIterator[None]:
    hub = app[HUB]
    if not hub.ingests:
        yield
        return
    task = _spawn(_once_active(hub, hub.link.run()), "mqtt-link")
    try:
        yield
    finally:
        drain = hub.begin_drain()
        await hub.link.flush(drain.left())
        drain.unreceipted = hub.unreceipted()
        await _stop(task)


async def _once_active(hub: Hub, step: Coroutine[Any, Any, None]) -> None:
    """``step`` once this hub's sequencer holds the log: a standby's front ends take no
    records (gateway/cluster/standby.py)."""
    if hub.remote is not None and not hub.remote.active.is_set():
        log.info("standby: MQTT ingest starts once this hub takes the log over")
        try:
            await hub.remote.active.wait()
        except asyncio.CancelledError:
            step.close()
            raise
        log.info("this hub holds the log now: starting MQTT ingest")
    await step


@web.middleware
async def _standby_gate(request: web.Request, handler: Handler) -> web.StreamResponse:
    """On a standby hub, only the public log answers (gateway/cluster/standby.py)."""
    if request.app[HUB].standby:
        route = request.match_info.route.resource
        path = route.canonical if route is not None else request.path
        method = "GET" if request.method == "HEAD" else request.method
        if ROUTES.get((method, path)) is not Exposure.PUBLIC or method != "GET":
            raise NotReady(
                "this hub is a standby (another hub holds the log); it serves the public log"
                " only until it takes over: use the active hub"
            )
    return await handler(request)


async def _sequencer(app: web.Application) -> AsyncIterator[None]:
    hub = app[HUB]
    sequencer = hub.local_sequencer
    if sequencer is None:
        # A front end: the sequencer is a process of its own; only the dead letters here.
        cp_task = _spawn(_housekeeping(hub), "housekeeping")
        try:
            yield
        finally:
            await _stop(cp_task)
            if hub.remote is not None:
                # The answers for records sent still come back, before the broker link
                # closes (bounded by the drain); the rest are resent by their agents.
                await hub.remote.drain(hub.begin_drain().left())
        return
    seq_task = _spawn(sequencer.run(), "sequencer")
    cp_task = _spawn(_housekeeping(hub), "checkpoints")
    lease = hub.ledger.lease if isinstance(hub.ledger, HubLedger) else None
    lease_task = _spawn(keep_lease(lease), "lease") if lease is not None else None
    try:
        yield
    finally:
        if lease_task is not None:
            await _stop(lease_task)
        drain = hub.begin_drain()
        sequencer.close()
        # A timeout cancels the task; a commit already in its thread still completes, and
        # its records, without receipts, come back as duplicates.
        await _bounded(seq_task, drain, "the last commits")
        await _stop(cp_task)
        try:
            await _bounded(sequencer.persist_checkpoint(), drain, "the last checkpoint")
        except (StoreError, NotReady) as exc:
            log.warning("the last checkpoint is not stored (%s); the next start signs it", exc)


async def _witnesses(app: web.Application) -> AsyncIterator[None]:
    """The rounds that take each new checkpoint to the witnesses (when there are any)."""
    hub = app[HUB]
    witnessing = hub.witnessing
    task = _spawn(witnessing.run(), "witnesses") if witnessing is not None else None
    try:
        yield
    finally:
        if task is not None and witnessing is not None:
            await _stop(task)
            drain = hub.begin_drain()
            try:
                await _bounded(witnessing.last_round(), drain, "the last witness round")
            except Exception:
                log.exception("the last witness round failed")


async def _intake(app: web.Application) -> AsyncIterator[None]:
    hub = app[HUB]
    if not hub.ingests:
        yield
        return
    intake = hub.intake
    task = _spawn(intake.run(), "intake")
    hub.link.on_message = intake.offer
    try:
        yield
    finally:
        drain = hub.begin_drain()
        hub.link.on_message = None
        await _bounded(intake.drain(), drain, "verifying the records taken")
        await _stop(task)


async def _bounded(step: Awaitable[Any], drain: Drain, what: str) -> None:
    """Await one step of the stop within what is left of the drain's budget."""
    try:
        async with asyncio.timeout(drain.left()):
            await step
    except TimeoutError:
        drain.cut = True
        log.warning("%s did not finish within the drain (%.1f s)", what, drain.budget_s)


async def _housekeeping(hub: Hub) -> None:
    """Persist the latest checkpoint and the dead letters once per interval."""
    loop = asyncio.get_running_loop()
    notice = StoreNotice(log)
    while True:
        await asyncio.sleep(hub.settings.checkpoint_interval_s)
        try:
            try:
                await hub.sequencer.persist_checkpoint()
            except StoreError as exc:
                notice.failed(exc)
            else:
                notice.stored()
            letters = hub.dead_letters.take()
            if letters:
                await loop.run_in_executor(None, hub.dead_letters.write, letters)
        except Exception:
            log.exception("housekeeping failed; retrying next interval")
