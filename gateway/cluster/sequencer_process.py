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
from collections.abc import Callable

from ledger.errors import StoreError

from ..alliance.setup import open_witnessing
from ..hub_ledger import open_ledger
from ..ingest.checkpoints import StoreNotice
from ..ingest.receipts import ReceiptQueue
from ..ingest.sequencer import Sequencer
from ..metrics import HubMetrics
from ..settings import HubSettings
from .channel import ChannelServer

log = logging.getLogger("swiftchain.hub.sequencer")


async def serve_sequencer(settings: HubSettings, secret: str) -> None:
    """Until cancelled (SIGTERM); then drain within ``drain_timeout_s``."""
    s = settings
    metrics = HubMetrics()
    ledger = open_ledger(s)
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

    server = ChannelServer(sequencer, s.sequencer_path, secret, status=status, published=published)
    head = ledger.checkpoints.latest
    if head is not None:
        metrics.checkpoint_signed(head.size)
    log.info(
        "sequencer of %s: %d entries, %d sources",
        s.db_path,
        ledger.writer.size(),
        len(ledger.registry.sources),
    )
    # What was loaded at open (the registry, the tree) lives as long as the process: out of
    # the collector's sight, so that full collections do not walk it under load.
    gc.freeze()
    tasks: list[asyncio.Task[None]] = []
    try:
        await server.start()
        tasks.append(asyncio.create_task(sequencer.run(), name="sequencer"))
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
