"""Access control's state in one running hub: the pilots, the access store (clients, Consent
resources), the consent book, the access-token key, and the per-person index of ``access``
entries. Every decision, allow or deny, is written through :meth:`AccessControl.log_access`
(the sequencer's group commit) before a byte of data is answered; every client revocation
through :meth:`AccessControl.revoke_client`, in force from its commit.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ledger.entries import AccessEntry, ClientEntry
from ledger.envelope import SignedRecord, utc_now
from ledger.errors import StoreError
from ledger.sealed import subject_tag
from ledger.store import Entry, NewEntry
from pilots import Decision, Pilot, load_pilots
from pilots.errors import PilotError

from ..errors import ConfigError, NotReady
from ..hub import Hub
from ..settings import HubSettings
from ..smart.assertion import JtiMemory, expected_audiences
from ..smart.key import TokenKey, load_or_create_token_key
from ..smart.tokens import AccessToken
from .consents import ConsentBook
from .db import AccessDb, Revocation
from .revocation import ClientRevoke, plan_revocation, replay_revocations

log = logging.getLogger("swiftchain.hub.access")


@dataclass(frozen=True)
class Refusal:
    """A request refused before any policy question (bad purpose, wrong pilot, bad
    parameter): logged as a ``deny`` with the error's code as the reason."""

    reason: str
    break_glass: bool = False
    allowed: bool = False


@dataclass(frozen=True)
class Caller:
    """Who is asking: from a verified access token."""

    client_id: str
    org: str
    pilot: str
    token: AccessToken


@dataclass
class AccessControl:
    settings: HubSettings
    pilots: dict[str, Pilot] = field(default_factory=dict)
    jti_memory: JtiMemory = field(default_factory=JtiMemory)
    #: Verified bearer tokens (raw token -> claims) until they expire: a signature check
    #: per request would cost more than the whole search.
    token_cache: dict[tuple[str, str], AccessToken] = field(default_factory=dict)
    _db: AccessDb | None = None
    _book: ConsentBook | None = None
    _key: TokenKey | None = None
    #: (pilot, subject) -> log indexes of ``access`` entries about that person.
    _audit: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    _audit_applied: int = -1
    #: Tags (:func:`ledger.sealed.subject_tag`) of the people erased: openings about them
    #: are stored blinded, also those of later requests about them.
    erased: set[str] = field(default_factory=set)
    #: Held by a Consent change from reading the stored state to its entry's commit: a
    #: change decided on a state that another change is replacing (a PUT racing a
    #: withdrawal) would otherwise undo it.
    consent_changes: asyncio.Lock = field(default_factory=asyncio.Lock)
    #: Held by a registration or a revocation from reading the client's row to writing it:
    #: a revocation must name the registration it ends.
    client_changes: asyncio.Lock = field(default_factory=asyncio.Lock)

    def __post_init__(self) -> None:
        try:
            self.pilots = load_pilots(self.settings.pilot_definitions)
        except PilotError as exc:
            raise ConfigError(f"pilot definitions: {exc}") from None

    # -- lifecycle ------------------------------------------------------------------------------
    def open(self, hub: Hub) -> None:
        self._key = load_or_create_token_key(self.settings.token_key_path)
        self._db = AccessDb(self.settings.access_location())
        self.jti_memory.store = self._db
        audiences = expected_audiences(self.settings.public_url, self.settings.token_audiences)
        if self._db.versions and not audiences:
            log.warning(
                "%d hospital client(s) registered, but neither public_url nor token_audiences"
                " is set: /oauth/token refuses every request (503) until one is",
                len(self._db.versions),
            )
        reader = hub.ledger.reader
        replay_revocations(self._db, reader.leaves("client"))
        self._book = ConsentBook.replay(self.pilots, reader.opened_leaves("consent"), self._db)
        for index, view in reader.opened_leaves("access"):
            self._index_access(index, view)
        self.erased = reader.blinded_tags()
        if hub.follower is not None:
            hub.follower.on("consent", self._follow_consent)
            hub.follower.on("access", self._follow_access)
            hub.follower.on("client", self._follow_client)
            # A front end holds what it just loaded (Consents, registry, pilots) for its
            # whole life: out of the collector's sight, or every full collection walks it.
            # With 10,000 Consents loaded, one took ~400 ms every ~5 s under load: the
            # search p99 (bench/query.py). Only in a front-end process, which runs one hub
            # for its life (an embedded hub shares its process, with tests for one).
            gc.freeze()

    # -- following the log (a front end: changes made through the other front ends) -------
    def _follow_consent(self, index: int, view: dict[str, Any], blinded: bool) -> None:
        entry = self.book.apply_view(index, view, self.db)
        if entry is not None and entry.erase:
            self.erased.add(subject_tag(entry.pilot, entry.subject))
            self.forget_subject(entry.pilot, entry.subject)

    def _follow_access(self, index: int, view: dict[str, Any], blinded: bool) -> None:
        if not blinded:
            self._index_access(index, view)

    def _follow_client(self, index: int, view: dict[str, Any], blinded: bool) -> None:
        if view.get("action") == "client.revoke":
            self.db.record_revocation(ClientEntry.model_validate(view), index)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    @property
    def db(self) -> AccessDb:
        if self._db is None:
            raise NotReady("the access store is not open yet")
        return self._db

    @property
    def book(self) -> ConsentBook:
        if self._book is None:
            raise NotReady("consents are not loaded yet")
        return self._book

    @property
    def key(self) -> TokenKey:
        if self._key is None:
            raise NotReady("the token key is not loaded yet")
        return self._key

    # -- the ingest hook --------------------------------------------------------------------------
    def consent_check(self, record: SignedRecord, source_org: str) -> None:
        """``gateway.ingest.checks.ConsentCheck``: before the book is loaded nothing is ingested."""
        self.book.check_record(record, source_org)

    # -- the audit trail ---------------------------------------------------------------------------
    async def log_access(
        self,
        hub: Hub,
        caller: Caller | None,
        decision: Decision | Refusal,
        *,
        purpose: str | None,
        data_type: str | None,
        subject: str | None,
        request: str,
        count: int | None = None,
        client_id: str | None = None,
        org: str | None = None,
    ) -> Entry:
        """Commit one ``access`` entry (durable, through the sequencer); returns it."""
        entry = AccessEntry(
            at=utc_now(),
            client=(caller.client_id if caller else client_id) or "anonymous",
            org=caller.org if caller else org,
            pilot=caller.pilot if caller else None,
            purpose=purpose,
            type=data_type,
            subject=subject,
            decision="allow" if decision.allowed else "deny",
            reason=str(decision.reason),
            break_glass=decision.break_glass,
            request=request[:512],
            count=count,
        )
        leaf, opening = entry.sealed(suite=hub.ledger.reader.suite)
        erased = self.erased_subject(entry.pilot, subject)

        def committed(done: list[Entry]) -> None:
            if not erased:
                # What the index files it by (a whole model_dump per search cost more).
                filed: dict[str, object] = {"subject": subject, "pilot": entry.pilot}
                for e in done:
                    self._index_access(e.index, filed)
            if entry.break_glass and entry.decision == "allow":
                # Every emergency read is for review: count it once it is on the log.
                hub.metrics.break_glass_reads.labels(entry.pilot or "", entry.reason).inc()

        blinded_for = (entry.pilot or "", subject) if erased and subject else None
        (stored,) = await hub.sequencer.append(
            [NewEntry("access", leaf, opening=opening, blinded_for=blinded_for)],
            committed=committed,
        )
        return stored

    def erased_subject(self, pilot: str | None, subject: str | None) -> bool:
        """Whether ``subject`` of ``pilot`` was erased (their openings are kept blinded)."""
        return bool(pilot and subject and subject_tag(pilot, subject) in self.erased)

    async def revoke_client(self, hub: Hub, change: ClientRevoke, actor: str) -> Entry:
        """Commit the ``client`` entry revoking ``change.client_id``'s registration, then
        record it in the access store; returns the entry. In force from its commit: the
        bearer check reads :attr:`AccessDb.revoked`."""
        db = self.db
        loop = asyncio.get_running_loop()
        async with self.client_changes:
            # The access store is read off the event loop (another writer may hold its lock).
            row = await loop.run_in_executor(None, db.client_row, change.client_id)
            entry = plan_revocation(row, change, actor, utc_now())

            def committed(done: list[Entry]) -> None:
                revocation = Revocation(entry.at, entry.actor, entry.reason, done[0].index)
                db.revoked[entry.registration] = revocation.describe()

            (stored,) = await hub.sequencer.append(
                [NewEntry("client", entry.leaf())], committed=committed
            )
            try:
                # The access store commits with an fsync (or a round trip): off the event loop.
                await loop.run_in_executor(None, db.record_revocation, entry, stored.index)
            except StoreError:
                # In force anyway (in memory from the commit, and the log is the truth): the
                # next start records it in the file.
                log.exception("revocation %d is not in the access store yet", stored.index)
        log.warning(
            "client %s of %s revoked by %s (log entry %d): %s",
            entry.client,
            entry.org,
            entry.actor,
            stored.index,
            entry.reason,
        )
        return stored

    def _index_access(self, index: int, leaf: dict[str, object]) -> None:
        if index <= self._audit_applied:
            return  # already filed (a front end hears of its own entry twice)
        self._audit_applied = index
        subject, pilot = leaf.get("subject"), leaf.get("pilot")
        if isinstance(subject, str) and isinstance(pilot, str):
            self._audit.setdefault((pilot, subject), []).append(index)

    def access_indexes(self, pilot: str, subject: str) -> list[int]:
        """The ``access`` entries about a person whose openings are held in the open (an
        erased person's are blinded: :meth:`forget_subject`)."""
        return list(self._audit.get((pilot, subject), ()))

    def forget_subject(self, pilot: str, subject: str) -> list[int]:
        """Drop a person from the audit index (their openings are being blinded); returns
        the indexes that were filed under them."""
        return self._audit.pop((pilot, subject), [])


def now_utc() -> datetime:
    return datetime.now(UTC)
