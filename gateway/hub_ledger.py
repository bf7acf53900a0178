"""Opening the ledger file as the hub's single writer.

A lock file next to the ledger makes "single writer" true across processes: the running hub
holds it, and offline registry commands take it too, or tell the operator to go through the
running hub's admin API instead.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from ledger.checkpoint import NoteSigner, NoteVerifier
from ledger.errors import LedgerError, StoreError
from ledger.keys import load_private_key
from ledger.store import LedgerReader, LedgerWriter
from ledger.verify import COPY_META, LEAVES_ONLY

from .errors import ConfigError, HubRunningError
from .ingest.checkpoints import Checkpointer, SignedHead
from .registry.state import Registry
from .settings import HubSettings

LOG_KEY_META = "log_key"

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
    lock: WriterLock
    writer: LedgerWriter
    reader: LedgerReader
    signer: NoteSigner
    checkpoints: Checkpointer
    registry: Registry
    write_failure: str | None = None
    """Why the last write at open failed (a full disk), or None: the hub then serves reads
    and refuses writes until a commit succeeds."""

    @property
    def verifier(self) -> NoteVerifier:
        return self.signer.verifier

    def size(self) -> int:
        return self.writer.size()

    def close(self) -> None:
        self.reader.close()
        self.writer.close()
        self.lock.release()


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


#: How long a starting hub waits for the previous writer of its ledger to exit.
WRITER_EXIT_WAIT_S = 10.0


def open_ledger(settings: HubSettings) -> HubLedger:
    """Lock, open (or create) the ledger, record the log key, rebuild the registry."""
    signer = load_signer(settings)
    lock = WriterLock(lock_path(settings.db_path))
    lock.acquire(wait_s=WRITER_EXIT_WAIT_S)
    try:
        writer = LedgerWriter(
            settings.db_path, origin=settings.origin, max_page_count=settings.max_page_count
        )
        try:
            if writer.meta(COPY_META) == LEAVES_ONLY:
                # A mirror's copy holds no bodies by design; a hub on it would serve a log
                # whose verifier no longer looks for lost bodies.
                raise ConfigError(
                    f"{settings.db_path} is a mirror's leaves-only copy of a log, not a hub's"
                    " ledger; copy the hub's own file, or start a new ledger"
                )
            log_key = signer.verifier.encode()
            stored = writer.meta(LOG_KEY_META)
            if stored is None:
                try:
                    writer.set_meta(LOG_KEY_META, log_key)
                except sqlite3.Error as exc:
                    raise StoreError(
                        f"cannot record the log key in {settings.db_path}: {exc}"
                    ) from None
            elif stored != log_key:
                raise ConfigError(
                    f"{settings.db_path} was signed with log key {stored!r}, not this hub's"
                    f" {log_key!r}; use the hub key that made the log"
                )
            reader = LedgerReader(settings.db_path)
            registry = Registry.replay(reader.leaves("registry"), settings.pilots)
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
        lock.release()
        raise
    return HubLedger(settings, lock, writer, reader, signer, checkpoints, registry, write_failure)
