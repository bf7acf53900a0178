"""Opening the ledger as the hub's single writer.

On SQLite, a lock file next to the ledger makes "single writer" true across processes: the
running hub holds it, and offline registry commands take it too, or tell the operator to go
through the running hub's admin API instead. On PostgreSQL, where hubs on several machines
share one log, the lease of :mod:`ledger.lease` does: the writer's every commit is fenced
by it, and a hub that finds it held waits as a standby (:func:`take_lease`).

The key store (:func:`open_key_store`) is opened wherever the ledger is: the writer seals
under it, and every reader of bodies opens them with it.

The log's crypto suite (:mod:`ledger.suite`) is the suite of the hub's signing key: a new
ledger is created in it, and a hub whose key is of another suite than its ledger's refuses
to start (:func:`open_ledger`).
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from ledger.checkpoint import NoteSigner, NoteVerifier
from ledger.errors import FencedError, KeyFileError, LedgerError, StorageError, StoreError
from ledger.keys import load_private_key
from ledger.keystore import KeyStore
from ledger.lease import Lease
from ledger.postgres import Url
from ledger.store import SUITE_META, LedgerReader, LedgerWriter
from ledger.suite import Suite
from ledger.verify import COPY_META, LEAVES_ONLY

from .errors import ConfigError, HubRunningError
from .ingest.checkpoints import Checkpointer, SignedHead
from .registry.state import Registry
from .settings import HubSettings

LOG_KEY_META = "log_key"
#: The PostgreSQL schema of the ledger's tables unless the URL names another.
LEDGER_SCHEMA = "ledger"

log = logging.getLogger("swiftchain.hub")


def lock_path(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".lock")


@dataclass
class WriterLock:
    path: Path
    fd: int = field(default=-1, repr=False)

    def acquire(self, wait_s: float = 0.0) -> None:
        """Take the lock; with ``wait_s``, wait that long for a writer that is exiting (a
        killed hub's sequencer, which the kernel is still taking down)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() < deadline:
                    time.sleep(0.1)
                    continue
            os.close(fd)
            raise HubRunningError(
                f"another process (a running hub?) is the writer of {self.path.with_suffix('')};"
                " stop it, or make registry changes through its admin API (--url)"
            ) from None
        # The pid is for the operator only; the lock is the flock. On a full disk writing it
        # fails, and that must not stop a hub that can still serve reads.
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except OSError:
            pass
        self.fd = fd

    def release(self) -> None:
        if self.fd >= 0:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = -1


@dataclass
class HubLedger:
    """The writer, a reader of its own for the event loop, the signer and the registry."""

    settings: HubSettings
    lock: WriterLock | None
    """The file lock on SQLite; None on PostgreSQL, where ``lease`` is the guarantee."""
    writer: LedgerWriter
    reader: LedgerReader
    signer: NoteSigner
    checkpoints: Checkpointer
    registry: Registry
    write_failure: str | None = None
    """Why the last write at open failed (a full disk), or None: the hub then serves reads
    and refuses writes until a commit succeeds."""
    lease: Lease | None = None
    keys: KeyStore | None = None
    """The key store the writer seals under and the reader opens with."""

    @property
    def verifier(self) -> NoteVerifier:
        return self.signer.verifier

    @property
    def suite(self) -> Suite:
        """The log's crypto suite: its hub key's, and its ledger's (they agree at open)."""
        return self.writer.suite

    def size(self) -> int:
        return self.writer.size()

    def close(self) -> None:
        self.reader.close()
        self.writer.close()
        if self.keys is not None:
            self.keys.close()
        if self.lock is not None:
            self.lock.release()
        if self.lease is not None:
            self.lease.close()


def open_key_store(settings: HubSettings) -> KeyStore:
    """The key store of the hub's ledger (``key_store``, beside the ledger by default: a
    SQLite file made on first open, mode 0600), with ``key_store_master_key`` if set."""
    try:
        return KeyStore.open(
            settings.key_store_location(), master_key=settings.key_store_master_key
        )
    except KeyFileError as exc:
        raise ConfigError(f"key_store_master_key: {exc}") from None


def load_signer(settings: HubSettings) -> NoteSigner:
    if not settings.signing_key.is_file():
        raise ConfigError(
            f"no hub signing key at {settings.signing_key};"
            f" make one with: swiftchain keys new {settings.signing_key}"
        )
    try:
        return NoteSigner(settings.origin, load_private_key(settings.signing_key))
    except LedgerError as exc:
        raise ConfigError(str(exc)) from None


def suite_refusal(settings: HubSettings, suite: Suite) -> ConfigError | None:
    """Why a hub whose key is of ``suite`` cannot be the writer of its ledger, or None: an
    existing log's suite is fixed when it is created (the ``suite`` row of its ``meta``;
    none: an ``ed25519-sha256`` log of before suites)."""
    try:
        with LedgerReader(settings.ledger_location) as reader:
            stored = reader.suite
            # A log of before suites that is still empty takes the suite of its first hub.
            if stored is suite or (reader.meta(SUITE_META) is None and reader.size() == 0):
                return None
    except LedgerError:
        return None  # not a ledger at all, or out of reach: the writer's error says so
    return ConfigError(
        f"{settings.ledger_name} is an {stored.name} log, and this hub's signing key"
        f" {settings.signing_key} is an {suite.key_kind} key, of suite {suite.name}: a log's"
        " crypto suite is fixed when it is created; use the hub key that made the log (an"
        f" {stored.key_kind} key), or start a new ledger"
    )


#: How long a starting hub waits for the previous writer of its ledger to exit.
WRITER_EXIT_WAIT_S = 10.0


def new_lease(settings: HubSettings) -> Lease:
    """The lease of this hub's log on PostgreSQL (not yet taken)."""
    location = settings.ledger_location
    assert isinstance(location, str)
    return Lease(
        Url(location, default_schema=LEDGER_SCHEMA), settings.origin, ttl_s=settings.lease_ttl_s
    )


def take_lease(settings: HubSettings, *, wait_s: float | None) -> Lease:
    """The log's lease, taken: at once, within ``wait_s``, or (None) however long the
    holder lives, as a standby waits. HubRunningError when it is still held after."""
    lease = new_lease(settings)
    deadline = None if wait_s is None else time.monotonic() + wait_s
    told = 0.0
    try:
        while not lease.try_acquire([]):
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                state = lease.state()
                raise HubRunningError(
                    f"{settings.ledger_name} is the log of a running hub ({state.holder});"
                    " stop it, or make registry changes through its admin API (--url)"
                )
            if now - told > 30:
                log.info("standby: the log is held by %s; waiting", lease.state().holder)
                told = now
            time.sleep(LEASE_POLL_S)
    except BaseException:
        lease.conn.close()
        raise
    return lease


async def keep_lease(lease: Lease) -> None:
    """Renew ``lease`` every third of its ttl; return FencedError's way once it is lost (the
    process stops: a hub that lost the log never writes again). A database that does not
    answer is retried: the lease holds for its ttl, and a standby cannot take it meanwhile
    either."""
    every = lease.ttl_s / 3
    while True:
        await asyncio.sleep(every)
        try:
            await asyncio.to_thread(lease.renew)
        except FencedError:
            raise
        except StorageError as exc:
            log.warning("cannot renew the log's lease (%s); retrying", exc)


#: How often a standby looks at the lease.
LEASE_POLL_S = 0.25


def open_ledger(
    settings: HubSettings, lease: Lease | None = None, *, wait_s: float | None = WRITER_EXIT_WAIT_S
) -> HubLedger:
    """Lock, open (or create) the ledger, record the log key, rebuild the registry.

    On PostgreSQL the log's ``lease`` must be held: given, or taken here within ``wait_s``
    (None: as long as its holder lives, as a standby waits); the writer fences every commit
    with it. HubRunningError when the file lock or the lease stays held."""
    signer = load_signer(settings)
    suite = signer.verifier.suite
    location = settings.ledger_location
    name = settings.ledger_name
    lock: WriterLock | None = None
    if isinstance(location, Path):
        lock = WriterLock(lock_path(location))
        lock.acquire(wait_s=WRITER_EXIT_WAIT_S)
    elif lease is None:
        lease = take_lease(settings, wait_s=wait_s)
    keys: KeyStore | None = None
    try:
        keys = open_key_store(settings)
        try:
            if lease is not None:
                writer = LedgerWriter(
                    location, origin=settings.origin, suite=suite, fence=lease.fence, keys=keys
                )
            else:
                writer = LedgerWriter(
                    location,
                    origin=settings.origin,
                    suite=suite,
                    max_page_count=settings.max_page_count,
                    keys=keys,
                )
        except StoreError:
            # The writer refuses a log of another suite; say which key the hub has.
            if (refusal := suite_refusal(settings, suite)) is not None:
                raise refusal from None
            raise
        if lease is not None:
            assert writer.conn is not None
            lease.sessions = [writer.conn.backend_pid()]
            writer.conn.on_reconnect.append(lease.writer_reconnected)
            lease.renew()
        try:
            if writer.meta(COPY_META) == LEAVES_ONLY:
                # A mirror's copy holds no bodies by design; a hub on it would serve a log
                # whose verifier no longer looks for lost bodies.
                raise ConfigError(
                    f"{name} is a mirror's leaves-only copy of a log, not a hub's"
                    " ledger; copy the hub's own file, or start a new ledger"
                )
            log_key = signer.verifier.encode()
            stored = writer.meta(LOG_KEY_META)
            if stored is None:
                try:
                    writer.set_meta(LOG_KEY_META, log_key)
                except (sqlite3.Error, StoreError) as exc:
                    raise StoreError(f"cannot record the log key in {name}: {exc}") from None
            elif stored != log_key:
                raise ConfigError(
                    f"{name} was signed with log key {stored!r}, not this hub's"
                    f" {log_key!r}; use the hub key that made the log"
                )
            reader = LedgerReader(location, keys=keys)
            registry = Registry.replay(reader.leaves("registry"), settings.pilots, suite)
            checkpoints = Checkpointer(settings.origin, signer)
            stored_cp = reader.latest_checkpoint()
            if stored_cp is not None:
                checkpoints.adopt(SignedHead(stored_cp.size, bytes(stored_cp.root), stored_cp.note))
            size = writer.size()
            write_failure = None
            if stored_cp is None or stored_cp.size < size:
                head = checkpoints.sign(size, writer.current_root())
                try:
                    writer.add_checkpoint(head.size, head.root, head.note)
                except StoreError as exc:
                    # A crash on a full disk leaves entries no stored checkpoint covers. The
                    # head is signed and served from memory; housekeeping stores it once the
                    # disk has room. Refusing to start would stop the reads too.
                    write_failure = str(exc)
                    log.warning("%s; serving reads, refusing writes until there is room", exc)
                else:
                    checkpoints.persisted(head)
        except BaseException:
            writer.close()
            raise
    except BaseException:
        if keys is not None:
            keys.close()
        if lock is not None:
            lock.release()
        if lease is not None:
            lease.close()
        raise
    return HubLedger(
        settings, lock, writer, reader, signer, checkpoints, registry, write_failure, lease, keys
    )
