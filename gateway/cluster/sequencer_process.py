"""The sequencer process: the log's one writer, its checkpoints and witness rounds, and the
channel its front ends reach it by. No HTTP and no MQTT of its own: front ends do both.

It stops on SIGTERM (its supervisor sends it once every front end stopped): what is queued
is committed, the last checkpoint stored, one last witness round made.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Callable

from ledger.errors import StoreError

from ..alliance.setup import open_witnessing
from ..hub_ledger import keep_lease, new_lease, open_ledger
from ..ingest.checkpoints import StoreNotice
from ..ingest.receipts import ReceiptQueue
from ..ingest.sequencer import Sequencer
from ..metrics import HubMetrics
from ..settings import HubSettings
from .channel import ChannelServer
from .standby import Standby

log = logging.getLogger("swiftchain.hub.sequencer")


async def serve_sequencer(settings: HubSettings, secret: str) -> None:
    """Until cancelled (SIGTERM); then drain within ``drain_timeout_s``.

    On PostgreSQL, first the log's lease: held by another hub, this process serves its
    front ends as a standby (:mod:`.standby`) until it takes the lease over."""
    s = settings
    metrics = HubMetrics()
    server = ChannelServer(None, s.sequencer_path, secret)
    lease = None
    started = time.monotonic()
    if s.on_postgres:
        lease = await asyncio.to_thread(new_lease, s)
        if not await asyncio.to_thread(lease.try_acquire, []):
            standby = Standby(s)
            server.standby = standby
            await server.start()
            try:
                await standby.wait_for_lease(lease, server.follow)
            except BaseException:
                await server.stop()
                await asyncio.to_thread(lease.close)
                raise
            started = time.monotonic()
    try:
        ledger = await asyncio.to_thread(open_ledger, s, lease)
    except BaseException:
        await server.stop()
        raise
    sequencer = Sequencer(
        ledger,
        ReceiptQueue(metrics),
        metrics,
        max_records=s.batch_max_records,
        max_wait_ms=s.batch_max_ms,
    )
    witnessing = open_witnessing(s, ledger, metrics)
    if witnessing is not None:
        sequencer.cosigned = witnessing.quorum_checkpoint

    def status() -> dict[str, object] | None:
        return witnessing.status(ledger.writer.size()) if witnessing is not None else None

    def published() -> tuple[int, str | None]:
        if witnessing is None:
            return 0, None
        return witnessing.published_size, witnessing.published

    server.status, server.published = status, published
    if server.standby is None:
        server.activate(sequencer)
    else:
        # What the last holder committed after this standby's last look: to the front
        # ends, before this sequencer answers as the log's.
        final = await asyncio.to_thread(server.standby.poll)
        if final:
            server.follow(final)
        server.standby.close()
        server.activate(sequencer)
        log.warning(
            "took the log over: %d entries, continuing the tree (%.2f s after the lease)",
            ledger.writer.size(),
            time.monotonic() - started,
        )
    head = ledger.checkpoints.latest
    if head is not None:
        metrics.checkpoint_signed(head.size)
    log.info(
        "sequencer of %s: %d entries, %d sources",
        s.ledger_name,
        ledger.writer.size(),
        len(ledger.registry.sources),
    )
    # What was loaded at open (the registry, the tree) lives as long as the process: out of
    # the collector's sight, so that full collections do not walk it under load.
    gc.freeze()
    tasks: list[asyncio.Task[None]] = []
    try:
        if not server.serving:
            await server.start()
        tasks.append(asyncio.create_task(sequencer.run(), name="sequencer"))
        if ledger.lease is not None:
            tasks.append(asyncio.create_task(keep_lease(ledger.lease), name="lease"))
        tasks.append(asyncio.create_task(_housekeeping(s, sequencer, server), name="checkpoints"))
        if witnessing is not None:
            tasks.append(asyncio.create_task(witnessing.run(), name="witnesses"))
            tasks.append(asyncio.create_task(_announce(s, published, server), name="announce"))
        await asyncio.gather(*tasks)
    finally:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + s.drain_timeout_s
        for task in tasks[1:]:
            task.cancel()
        sequencer.close()
        if tasks:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                async with asyncio.timeout(max(0.0, deadline - loop.time())):
                    await tasks[0]
        with contextlib.suppress(StoreError, TimeoutError):
            async with asyncio.timeout(max(0.1, deadline - loop.time())):
                await sequencer.persist_checkpoint()
        if witnessing is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(max(0.1, deadline - loop.time())):
                    await witnessing.last_round()
        await server.stop()
        sequencer.shutdown()
        ledger.close()
        log.info("sequencer stopped")


async def _housekeeping(settings: HubSettings, sequencer: Sequencer, server: ChannelServer) -> None:
    """Store the latest checkpoint once per interval, and tell the front ends (stored size,
    witness status)."""
    notice = StoreNotice(log)
    while True:
        await asyncio.sleep(settings.checkpoint_interval_s)
        try:
            await sequencer.persist_checkpoint()
        except StoreError as exc:
            notice.failed(exc)
        else:
            notice.stored()
        server.broadcast_status()


async def _announce(
    settings: HubSettings,
    published: Callable[[], tuple[int, str | None]],
    server: ChannelServer,
) -> None:
    """Tell the front ends of each new cosigned checkpoint (they serve it) after the round
    that got it."""
    last: str | None = None
    while True:
        await asyncio.sleep(settings.witness_interval_s)
        _, note = published()
        if note is not None and note != last:
            last = note
            server.broadcast_status()
