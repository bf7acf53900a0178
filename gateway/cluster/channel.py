"""The sequencer's side of the channel: front ends connect, send verified records and
hub-made jobs, and get receipts, job results and the log's head after every commit.

Rules it keeps (docs/architecture.md, "The hub's processes"):

- Nothing is answered before it is durable: receipts and ``Done`` leave after the commit.
- A commit that changes what front ends decide on (registry, consent, client, erasure
  entries) is sent to every front end as a :class:`Head` that asks for an ``Ack``; the job
  that made it is answered only once every connected front end acknowledged it, so the
  change is in force on every front end's next message or request. A front end that does
  not acknowledge within ``ACK_TIMEOUT_S`` is cut off (it stops; its supervisor restarts it,
  and a restarted front end replays the log before it serves).
- Front ends decide changes on the state they follow (the registry, a Consent): a job says
  which log size it decided on and what it guards (``registry``, ``consent:<pilot>:<id>``);
  one decided before a change to what it guards that it had not seen is refused
  (``conflict``), so two front ends never both add what only one may, nor does an update
  decided on an active Consent undo the withdrawal another front end just committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ledger.errors import StorageError, StoreError
from ledger.store import Entry, NewEntry

from ..ingest.checkpoints import SignedHead
from ..ingest.receipts import Receipt
from ..ingest.sequencer import Pending, Sequencer
from .errors import ChannelError
from .standby import Standby
from .wire import (
    Ack,
    Done,
    Failed,
    FrameWriter,
    Head,
    Hello,
    Job,
    Receipts,
    Records,
    StateEntry,
    Sync,
    ToFront,
    blinded,
    entries_out,
    new_entry,
    read_to_sequencer,
)

log = logging.getLogger("swiftchain.hub.channel")

#: Entry kinds front ends keep state from.
STATE_KINDS = frozenset({"registry", "consent", "client", "access", "erasure"})
#: Of those, the ones every front end must have applied before the writer is answered.
BARRIER_KINDS = frozenset({"registry", "consent", "client", "erasure"})
ACK_TIMEOUT_S = 5.0
#: Why a standby refuses a write (the front end answers 503 with it).
STANDBY = (
    "this hub is a standby: another hub holds the log's lease;"
    " retry there, or here once it takes over"
)
#: Buffered bytes to a front end beyond which the sequencer waits for it to read.
HIGH_WATER = 8 * 1024 * 1024


class FrontEnd:
    """One connected front end: the receipt sink of the records it sent."""

    def __init__(self, worker: int, writer: asyncio.StreamWriter) -> None:
        self.worker = worker
        self.out = FrameWriter(writer, before=self._flush)
        self.acked = 0
        self._items: list[
            tuple[str, str, str | None, int | None, str | None, str | None, str | None]
        ] = []
        self._covering: tuple[str | None, str | None] = (None, None)

    @property
    def closed(self) -> bool:
        return self.out.closed

    # -- ReceiptSink ------------------------------------------------------------------------
    def send(self, topic: str, receipt: Receipt) -> None:
        """Batch the receipt: those of a turn leave in one ``Receipts`` per checkpoint."""
        covering = (receipt.checkpoint, receipt.cosigned)
        if self._items and covering != self._covering:
            self._flush()
        self._covering = covering
        self._items.append(
            (
                topic,
                receipt.status,
                receipt.id,
                receipt.index,
                receipt.leaf_hash,
                receipt.reason,
                receipt.detail,
            )
        )
        self.out.schedule()

    def _flush(self) -> None:
        if self._items:
            checkpoint, cosigned = self._covering
            items, self._items = self._items, []
            self.out.send(Receipts(checkpoint, cosigned, items))

    def write(self, message: ToFront) -> None:
        """Queue a frame (after the receipts batched so far, which it may depend on)."""
        self._flush()
        self.out.send(message)

    def close(self) -> None:
        self.out.close()


class ChannelServer:
    """Serves front ends on a Unix socket for one sequencer."""

    def __init__(
        self,
        sequencer: Sequencer | None,
        path: Path,
        secret: str,
        *,
        status: Callable[[], dict[str, Any] | None] = lambda: None,
        published: Callable[[], tuple[int, str | None]] = lambda: (0, None),
        standby: Standby | None = None,
    ) -> None:
        self.sequencer = sequencer
        #: Until :meth:`activate`: the log as a standby follows it (no sequencer yet).
        self.standby = standby
        self.path = path
        self.secret = secret
        self.status = status
        self.published = published
        self.fronts: set[FrontEnd] = set()
        self._server: asyncio.Server | None = None
        self._acked = asyncio.Condition()
        self._jobs: set[asyncio.Task[None]] = set()
        #: Per guarded name: the lock held from a job's check to its commit, and the index
        #: of the last entry committed under it.
        self._guards: dict[str, asyncio.Lock] = {}
        self._changed: dict[str, int] = {}
        if sequencer is not None:
            sequencer.on_committed = self._committed

    def activate(self, sequencer: Sequencer) -> None:
        """The lease is taken and the writer open: from now on this sequencer answers, and
        every front end hears so (it starts ingest, takes writes)."""
        self.sequencer, self.standby = sequencer, None
        sequencer.on_committed = self._committed
        self.broadcast_status()

    def follow(self, state: list[StateEntry]) -> None:
        """A standby's news from the database, to every front end (no ack: no writer waits)."""
        message = self.head(state, False)
        for front in list(self.fronts):
            front.write(message)

    def _size(self) -> int:
        if self.sequencer is not None:
            return self.sequencer.ledger.writer.size()
        return self.standby.size if self.standby is not None else 0

    @property
    def serving(self) -> bool:
        return self._server is not None

    async def start(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._server = await asyncio.start_unix_server(self._serve, path=str(self.path))
        self.path.chmod(0o600)
        log.info("sequencer channel on %s", self.path)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for front in list(self.fronts):
            front.close()
        if self._server is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):
                    await self._server.wait_closed()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    # -- the head ---------------------------------------------------------------------------
    def head(self, state: list[StateEntry], ack: bool) -> Head:
        seq = self.sequencer
        if seq is None:
            assert self.standby is not None
            return self.standby.head(state, ack)
        ledger = seq.ledger
        latest = ledger.checkpoints.latest
        published_size, published = self.published()
        return Head(
            size=ledger.writer.size(),
            head_size=latest.size if latest is not None else 0,
            root=latest.root if latest is not None else b"",
            note=latest.note if latest is not None else "",
            persisted_size=ledger.checkpoints.persisted_size,
            cosigned=seq.cosigned(),
            write_failure=seq.write_failure,
            witnesses=self.status(),
            state=state,
            ack=ack,
            published=published,
            published_size=published_size,
        )

    def _committed(self, stored: list[Entry], made: list[NewEntry], head: SignedHead) -> None:
        state: list[StateEntry] = []
        for e, n in zip(stored, made, strict=True):
            if e.kind in STATE_KINDS:
                opening = n.opening.encode() if n.opening is not None else None
                state.append(
                    StateEntry(e.index, e.kind, e.leaf, opening, n.blinded_for is not None)
                )
        if not self.fronts:
            return
        ack = any(s.kind in BARRIER_KINDS for s in state)
        message = self.head(state, ack)
        for front in list(self.fronts):
            front.write(message)

    def broadcast_status(self) -> None:
        """A head without entries (after a witness round, a stored checkpoint)."""
        message = self.head([], False)
        for front in list(self.fronts):
            front.write(message)

    async def _barrier(self, size: int) -> None:
        """Until every connected front end has acknowledged ``size``; cut off the late."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + ACK_TIMEOUT_S
        async with self._acked:
            while True:
                late = [f for f in self.fronts if f.acked < size]
                if not late:
                    return
                left = deadline - loop.time()
                if left <= 0:
                    for f in late:
                        log.error(
                            "front end %d did not apply entry %d within %.0f s; cutting it off",
                            f.worker,
                            size - 1,
                            ACK_TIMEOUT_S,
                        )
                        self._drop(f)
                    return
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(left):
                        await self._acked.wait()

    # -- one connection -----------------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        front: FrontEnd | None = None
        try:
            hello = await read_to_sequencer(reader)
            if hello is None:
                writer.close()  # a probe (the supervisor waiting for the channel)
                return
            if not isinstance(hello, Hello) or not hmac.compare_digest(hello.secret, self.secret):
                log.warning("a connection to the sequencer channel without the run's secret")
                writer.close()
                return
            front = FrontEnd(hello.worker, writer)
            self.fronts.add(front)
            front.acked = self._size()
            front.write(self.head([], False))
            log.info("front end %d (pid %d) connected", hello.worker, hello.pid)
            while True:
                message = await read_to_sequencer(reader)
                if message is None:
                    break
                if isinstance(message, Records):
                    sequencer = self.sequencer
                    if sequencer is None:
                        # A standby's front ends do not ingest; records sent just before
                        # they heard so get no receipt, and their agents resend them.
                        continue
                    for item in message.items:
                        sequencer.offer(Pending(new_entry(item.entry), item.topic, front))
                elif isinstance(message, Job):
                    task = asyncio.create_task(self._job(front, message))
                    self._jobs.add(task)
                    task.add_done_callback(self._jobs.discard)
                elif isinstance(message, Ack):
                    front.acked = max(front.acked, message.size)
                    async with self._acked:
                        self._acked.notify_all()
                elif isinstance(message, Sync):
                    front.write(self.head([], False))
                if writer.transport.get_write_buffer_size() > HIGH_WATER:
                    await writer.drain()
        except (ChannelError, ConnectionError) as exc:
            log.warning("front end %s: %s", front.worker if front else "?", exc)
        finally:
            if front is not None:
                self._drop(front)
                log.info("front end %d disconnected", front.worker)

    def _drop(self, front: FrontEnd) -> None:
        self.fronts.discard(front)
        front.close()
        # Its records in flight still commit; their receipts go nowhere and the agents
        # resend (they then get ``duplicate``).
        asyncio.get_running_loop().create_task(self._wake_barriers())

    async def _wake_barriers(self) -> None:
        async with self._acked:
            self._acked.notify_all()

    async def _job(self, front: FrontEnd, job: Job) -> None:
        guard = sorted(set(job.guard) | ({"registry"} if job.ahead else set()))
        async with contextlib.AsyncExitStack() as held:
            for name in guard:
                await held.enter_async_context(self._guards.setdefault(name, asyncio.Lock()))
            if self._stale(guard, job.based_on):
                front.write(Failed(job.job, f"{', '.join(guard)} changed meanwhile", True, True))
                return
            stored = await self._commit(front, job)
            if stored is None:
                return
            if stored:
                for name in guard:
                    self._changed[name] = stored[-1].index
        if any(e.kind in BARRIER_KINDS for e in stored):
            await self._barrier(stored[-1].index + 1)
        front.write(Done(job.job, entries_out(stored)))

    def _stale(self, guard: list[str], based_on: int) -> bool:
        """Whether an entry at or past ``based_on`` changed what ``guard`` names."""
        if self.sequencer is None:
            return False  # refused in _commit
        if "registry" in guard and self.sequencer.ledger.registry.applied >= based_on:
            return True
        return any(self._changed.get(name, -1) >= based_on for name in guard)

    async def _commit(self, front: FrontEnd, job: Job) -> list[Entry] | None:
        """The job's entries committed, or None (its ``Failed`` sent)."""
        sequencer = self.sequencer
        if sequencer is None:
            front.write(Failed(job.job, STANDBY, True))
            return None
        try:
            entries = [new_entry(e) for e in job.entries]
            if job.ahead:
                return await sequencer.append_registry(entries)
            return await sequencer.append(
                entries,
                erase=job.erase,
                forget=job.forget,
                blind=[blinded(b) for b in job.blind],
                erase_scopes=job.erase_scopes,
                retire=job.retire,
            )
        except StorageError as exc:
            front.write(Failed(job.job, str(exc), True))
        except (StoreError, ChannelError) as exc:
            front.write(Failed(job.job, str(exc), False))
        except Exception as exc:
            log.exception("job %d of front end %d failed", job.job, front.worker)
            front.write(Failed(job.job, f"the sequencer failed: {exc}", False))
        return None
