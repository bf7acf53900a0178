"""The mirror's copy of the log and its progress, in one ledger file of its own.

The file is an ordinary ledger (:class:`ledger.store.LedgerWriter`): entries with their exact
leaf bytes, signatures and node hashes, and the hub's checkpoints, so that
``swiftchain ledger verify`` checks it like the hub's own. It never holds a body or an
opening (``meta`` ``copy`` = ``leaves`` tells the verifier so): erasure stays erasure. The
mirror's own state sits in ``meta`` beside it, each value written in one durable commit:
the pending checkpoint (before any entry it covers is fetched), the cosigned mirror
checkpoint (after the entries and the hub's checkpoint are stored), and fork evidence.
Each page of entries is one transaction, so a kill -9 loses at most the page in flight.
The copy is a log of the hub's crypto suite, the pinned log key's, fixed when it is made.
"""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledger.checkpoint import NoteVerifier, parse_checkpoint
from ledger.errors import LedgerError
from ledger.store import Entry, LedgerReader, LedgerWriter, NewEntry
from ledger.verify import COPY_META, LEAVES_ONLY

from .errors import MirrorConfigError
from .plan import Head

LOG_KEY_META = "log_key"
PENDING_META = "mirror.pending"
COSIGNED_META = "mirror.cosigned"
FORK_META = "mirror.fork"


@dataclass(frozen=True)
class HeldCheckpoint:
    """A hub checkpoint the mirror holds: its head and the signed note as the hub served it."""

    head: Head
    note: str

    @classmethod
    def of(cls, note: str) -> HeldCheckpoint:
        cp = parse_checkpoint(note).checkpoint
        return cls(Head(cp.size, cp.root_hash), note)


class MirrorStore:
    """The single writer of a mirror's ledger file."""

    def __init__(self, path: Path, log_key: NoteVerifier) -> None:
        self._lock = _take_lock(path)
        try:
            # StoreError if the file is a copy of a log of another suite.
            self.writer = LedgerWriter(path, origin=log_key.name, suite=log_key.suite)
            stored = self.writer.meta(LOG_KEY_META)
            if stored is None:
                self.writer.set_meta(LOG_KEY_META, log_key.encode())
                self.writer.set_meta(COPY_META, LEAVES_ONLY)
            elif stored != log_key.encode():
                self.writer.close()
                raise MirrorConfigError(
                    f"{path} mirrors the log of key {stored!r}, not {log_key.encode()!r}"
                )
        except LedgerError as exc:
            os.close(self._lock)
            raise MirrorConfigError(f"cannot open the mirror's ledger {path}: {exc}") from None
        except MirrorConfigError:
            os.close(self._lock)
            raise

    def close(self) -> None:
        self.writer.close()
        os.close(self._lock)

    @property
    def stored(self) -> int:
        return self.writer.size()

    # -- checkpoints ------------------------------------------------------------------------
    def verified(self) -> HeldCheckpoint | None:
        """The mirror checkpoint: the largest hub checkpoint whose entries are all held."""
        cp = self.writer.latest_checkpoint()
        return None if cp is None else HeldCheckpoint(Head(cp.size, bytes(cp.root)), cp.note)

    def pending(self) -> HeldCheckpoint | None:
        note = self.writer.meta(PENDING_META)
        return None if not note else HeldCheckpoint.of(note)

    def reference(self) -> HeldCheckpoint | None:
        """The largest checkpoint accepted: the pending one if any, else the verified one."""
        return self.pending() or self.verified()

    def set_pending(self, held: HeldCheckpoint) -> None:
        self.writer.set_meta(PENDING_META, held.note)

    def commit_checkpoint(self, held: HeldCheckpoint, cosigned: str) -> None:
        """The hub's checkpoint into the log's checkpoints, then the cosigned note served."""
        self.writer.add_checkpoint(held.head.size, held.head.root, held.note)
        self.writer.set_meta(COSIGNED_META, cosigned)
        self.writer.set_meta(PENDING_META, "")

    def cosigned(self) -> str | None:
        return self.writer.meta(COSIGNED_META) or None

    # -- entries ----------------------------------------------------------------------------
    def append(self, batch: list[NewEntry]) -> list[Entry]:
        return self.writer.append(batch)

    def root(self, size: int) -> bytes:
        return self.writer.root(size)

    def current_root(self) -> bytes:
        return self.writer.current_root()

    def registry_leaves(self) -> list[bytes]:
        return [leaf for _, leaf in self.writer.leaves("registry")]

    # -- forks ------------------------------------------------------------------------------
    def fork(self) -> dict[str, Any] | None:
        raw = self.writer.meta(FORK_META)
        return None if not raw else dict(json.loads(raw))

    def record_fork(self, evidence: dict[str, Any]) -> None:
        self.writer.set_meta(FORK_META, json.dumps(evidence, sort_keys=True))


def _take_lock(path: Path) -> int:
    """One writer per mirror: a second ``mirror run`` on the same directory is refused."""
    lock = path.with_name(path.name + ".lock")
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise MirrorConfigError(f"cannot create {lock}: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise MirrorConfigError(f"another mirror is running on {path.parent}") from None
    return fd


def read_state(path: Path) -> dict[str, Any]:
    """A mirror's progress read from its file without taking the writer (``mirror status``)."""
    with LedgerReader(path) as reader:
        latest = reader.latest_checkpoint()
        pending = reader.meta(PENDING_META) or None
        fork = reader.meta(FORK_META)
        return {
            "origin": reader.meta("origin"),
            "suite": reader.suite.name,
            "stored": reader.size(),
            "verified": latest.size if latest else 0,
            "pending": parse_checkpoint(pending).checkpoint.size if pending else None,
            "fork": json.loads(fork) if fork else None,
        }
