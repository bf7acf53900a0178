"""One sequencer at a time per log on PostgreSQL: a lease with a fencing number.

A log's lease is one row of the ``lease`` table, in the ledger's own schema:

- ``epoch``, the fencing number, goes up by one at every takeover;
- ``holder`` names the holding process (host, pid, a random tag), for operators;
- ``sessions`` are the holder's PostgreSQL backends (its writer's and its lease's);
- ``renewed_at`` is when the holder last renewed it, on the *server's* clock (``now()``), so
  no two machines' clocks are ever compared.

The rules, each with a test (tests/unit/ledger/test_lease.py and the hub's failover tests):

1. **Fencing.** Every write transaction of the holder's writer starts with
   :meth:`Lease.fence`: ``UPDATE lease SET renewed_at = now() WHERE name = ? AND epoch = ?``.
   No row means another process took the lease: the transaction is rolled back and
   :class:`~ledger.errors.FencedError` raised, before anything was written. The UPDATE
   takes the row's lock until the commit, so a takeover (which updates the same row) waits
   for a commit in progress, then sees its fresh ``renewed_at`` and gives up; and a commit
   that starts after a takeover finds the new epoch. No commit of an old holder can land
   after a new holder's first: the row lock orders them, whatever each process's pauses.
2. **Takeover.** A standby takes the lease when the holder is gone: none of its sessions is
   alive (a killed process: the kernel closed its sockets and PostgreSQL ended its
   backends, so a takeover takes well under a second), or it has not renewed within
   ``ttl_s`` (a frozen or cut-off process whose sessions linger). A holder frozen in the
   middle of a commit keeps the row locked; the standby then ends that holder's sessions
   (``pg_terminate_backend``), which rolls the commit back, and takes the lease.
3. **Renewal.** The holder renews every ``ttl_s / 3`` on a connection of its own; a renewal
   that finds another epoch means the lease is lost, and the holder stops writing.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from dataclasses import dataclass

from .errors import FencedError, StorageError, StoreError
from .postgres import Connection, Url, connect, errors, failure

log = logging.getLogger("swiftchain.ledger.lease")

#: How long a holder may go without renewing before a standby takes over.
DEFAULT_TTL_S = 5.0
#: How long a takeover waits for the lease row's lock (held by a commit in progress).
LOCK_WAIT_MS = 1000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS lease (
    name TEXT COLLATE "C" PRIMARY KEY,
    epoch BIGINT NOT NULL,
    holder TEXT NOT NULL,
    sessions INTEGER[] NOT NULL,
    renewed_at TIMESTAMPTZ NOT NULL
)
"""


@dataclass(frozen=True)
class LeaseState:
    """The lease row as a reader sees it."""

    epoch: int
    holder: str
    sessions: tuple[int, ...]
    alive: tuple[int, ...]
    """Those of ``sessions`` still connected."""
    idle_s: float
    """Seconds since the last renewal (server clock)."""


def holder_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class Lease:
    """The lease on the log ``name`` of the ledger at ``url``, as this process holds (or
    waits for) it. Not thread-safe; the writer calls :meth:`fence` under its own lock."""

    def __init__(
        self, url: Url, name: str, *, ttl_s: float = DEFAULT_TTL_S, holder: str | None = None
    ) -> None:
        if ttl_s <= 0:
            raise StoreError(f"a lease's ttl must be positive, not {ttl_s}")
        self.url = url
        self.name = name
        self.ttl_s = ttl_s
        self.holder = holder or holder_name()
        self.sessions: list[int] = []
        """The holder's other sessions (its writer's), set at takeover; a writer that
        reconnects updates it (:meth:`add_session`), and each renewal records them."""
        self.epoch: int | None = None
        """The fencing number while held; None before a takeover and once lost."""
        self.conn = connect(url, application=f"swiftchain lease {self.holder}")
        try:
            self.conn.execute(_SCHEMA)
            # Looked for first: an INSERT that meets the row would wait for a holder's commit
            # in progress, forever if that holder is frozen in it.
            if self.conn.execute("SELECT 1 FROM lease WHERE name = ?", (name,)).fetchone() is None:
                self.conn.execute(
                    "INSERT INTO lease VALUES (?, 0, '', '{}', 'epoch') ON CONFLICT DO NOTHING",
                    (name,),
                )
        except errors() as exc:
            self.conn.close()
            raise failure(f"cannot set up the lease of {name} in {url}", exc) from None

    # -- reading ----------------------------------------------------------------------------
    def state(self) -> LeaseState:
        try:
            row = self.conn.execute(
                "SELECT epoch, holder, sessions,"
                " ARRAY(SELECT pid FROM pg_stat_activity WHERE pid = ANY(sessions)),"
                " EXTRACT(EPOCH FROM now() - renewed_at)"
                " FROM lease WHERE name = ?",
                (self.name,),
            ).fetchone()
        except errors() as exc:
            raise failure(f"cannot read the lease of {self.name}", exc) from None
        epoch, holder, sessions, alive, idle = row
        idle_s = float("inf") if idle is None else float(idle)
        return LeaseState(int(epoch), str(holder), tuple(sessions), tuple(alive), idle_s)

    @property
    def held(self) -> bool:
        return self.epoch is not None

    # -- taking it --------------------------------------------------------------------------
    def try_acquire(self, sessions: list[int]) -> bool:
        """Take the lease if its holder is gone (rule 2), for this process's ``sessions``
        (the writer's backend pid; this lease's own is added). True once held."""
        if self.epoch is not None:
            return True
        first = self.state()
        if first.alive and first.idle_s <= self.ttl_s:
            return False  # held: no need to lock the row the holder's commits update
        self.sessions = list(sessions)
        mine = self._sessions()
        c = self.conn
        try:
            with c.lock:
                c.begin()
                try:
                    c.execute(f"SET LOCAL lock_timeout = {LOCK_WAIT_MS}")
                    row = c.execute(
                        "SELECT epoch, holder, sessions,"
                        " ARRAY(SELECT pid FROM pg_stat_activity WHERE pid = ANY(sessions)),"
                        " EXTRACT(EPOCH FROM now() - renewed_at)"
                        " FROM lease WHERE name = ? FOR UPDATE",
                        (self.name,),
                    ).fetchone()
                    epoch, holder, _, alive, idle = row
                    idle_s = float("inf") if idle is None else float(idle)
                    if alive and idle_s <= self.ttl_s:
                        c.rollback()
                        return False
                    # A frozen holder whose sessions linger needs no more: with this row's
                    # lock taken, it has no commit in progress, and any later one of its
                    # commits finds the new epoch (rule 1).
                    new_epoch = int(epoch) + 1
                    c.execute(
                        "UPDATE lease SET epoch = ?, holder = ?, sessions = ?, renewed_at = now()"
                        " WHERE name = ?",
                        (new_epoch, self.holder, mine, self.name),
                    )
                    c.commit()
                except BaseException:
                    c.rollback()
                    raise
        except errors() as exc:
            if getattr(exc, "sqlstate", None) == "55P03":
                # A commit holds the row: a live holder, or one frozen mid-commit (rule 2).
                return self._break_frozen_commit()
            raise failure(f"cannot take the lease of {self.name}", exc) from None
        self.epoch = new_epoch
        log.warning(
            "took the lease of %s: epoch %d (from %s, idle %.1f s, %d sessions alive)",
            self.name,
            new_epoch,
            holder or "nobody",
            idle_s if idle_s != float("inf") else -1,
            len(alive),
        )
        return True

    def _break_frozen_commit(self) -> bool:
        """The row is locked by a commit: if its holder has not renewed within the ttl it is
        frozen mid-commit; end its sessions (its transaction rolls back). Not taken yet: the
        next :meth:`try_acquire` takes it."""
        state = self.state()
        if state.idle_s > self.ttl_s and state.alive:
            log.warning(
                "the lease holder %s is frozen in a commit (idle %.1f s); ending its sessions",
                state.holder,
                state.idle_s,
            )
            try:
                self.conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM unnest(?::int[]) pid",
                    (list(state.alive),),
                )
            except errors() as exc:
                raise failure("cannot end the frozen holder's sessions", exc) from None
        return False

    def _sessions(self) -> list[int]:
        return sorted({*self.sessions, self.conn.backend_pid()})

    def writer_reconnected(self, conn: Connection) -> None:
        """``conn`` (the writer's) has a new backend: the next renewal records it, so that
        a standby does not read this holder's old, ended sessions as its death."""
        self.sessions = [conn.backend_pid()]

    # -- holding it -------------------------------------------------------------------------
    def fence(self, conn: Connection) -> None:
        """Rule 1, inside the writer's transaction on ``conn``, before it writes."""
        epoch = self.epoch
        if epoch is None:
            raise FencedError(f"this process does not hold the lease of {self.name}")
        row = conn.execute(
            "UPDATE lease SET renewed_at = now() WHERE name = ? AND epoch = ? RETURNING epoch",
            (self.name, epoch),
        ).fetchone()
        if row is None:
            self._lost("a commit")

    def renew(self) -> None:
        """Rule 3: raises FencedError once another process holds the lease."""
        epoch = self.epoch
        if epoch is None:
            raise FencedError(f"this process does not hold the lease of {self.name}")
        try:
            with self.conn.lock:
                row = self.conn.execute(
                    "UPDATE lease SET renewed_at = now(), sessions = ?"
                    " WHERE name = ? AND epoch = ? RETURNING epoch",
                    (self._sessions(), self.name, epoch),
                ).fetchone()
        except errors() as exc:
            raise failure(f"cannot renew the lease of {self.name}", exc) from None
        if row is None:
            self._lost("a renewal")

    def _lost(self, what: str) -> None:
        epoch, self.epoch = self.epoch, None
        try:
            state = self.state()
            now = f"epoch {state.epoch}, held by {state.holder}"
        except StorageError:
            now = "unknown"
        log.error(
            "fenced: %s of %s refused: this process held epoch %s, the lease is now %s",
            what,
            self.name,
            epoch,
            now,
        )
        raise FencedError(
            f"the lease of {self.name} was taken over ({now}); this process held epoch {epoch}"
        )

    def release(self) -> None:
        """Give the lease up at a clean stop, so that a standby takes over at once."""
        if self.epoch is not None:
            try:
                self.conn.execute(
                    "UPDATE lease SET sessions = '{}', renewed_at = 'epoch'"
                    " WHERE name = ? AND epoch = ?",
                    (self.name, self.epoch),
                )
            except errors():
                pass  # the server is gone: the ttl frees it
            self.epoch = None

    def close(self) -> None:
        self.release()
        self.conn.close()
