"""Patients' Consents as the log says they are.

The book holds, per pilot and consent id, the version named by the latest ``consent`` entry
on the log (its FHIR resource comes from the access store, by hash), and its custodian: the
organisation that recorded it, named in every ``consent`` entry (for entries from before
custodians were recorded: the organisation of the client that wrote the first one). It is
rebuilt from the log at start and changed only in the sequencer's commit callback, so a
withdrawal is in force before the withdrawing request is answered, and on the very next
request: nothing is cached that could outlive it.

A v2 ``consent`` entry names its Consent and subject only in its opening (off the log):
the book is replayed from the opened leaves. A Consent withdrawn with erasure has its
openings blinded and its versions deleted, so a hub started after that no longer knows it:
a record naming it is refused as ``consent_required``, a search about its person finds no
Consent (denied either way).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fhir.resources.R4B.consent import Consent

from ledger.canonical import canonical_json
from ledger.entries import ConsentEntry
from ledger.envelope import SignedRecord
from ledger.errors import InvalidEnvelope
from ledger.suite import DEFAULT_SUITE, Suite
from pilots import Pilot, StoredConsent, decide_writer, parse_consent
from pilots.consent import consent_json
from pilots.errors import ConsentError
from pilots.ingest import consent_in_force, needs_consent

from ..ingest.checks import Rejected
from .db import AccessDb

log = logging.getLogger("swiftchain.hub.consents")


@dataclass(frozen=True)
class ConsentState:
    pilot: str
    consent_id: str
    subject: str
    status: str
    resource_hash: str
    index: int
    """Log index of the ``consent`` entry that made this the current version."""
    consent: Consent | None
    """None when the resource is not in the access store (erased, or lost)."""
    custodian: str | None = None
    """The organisation the Consent belongs to; None when the log does not say."""

    def stored(self) -> StoredConsent:
        """What :func:`pilots.decide_consent_change` needs to know of it."""
        return StoredConsent(self.custodian, self.status, self.consent)


def _stored_consent(raw: bytes | None, index: int) -> Consent | None:
    """The Consent resource the access store holds for the entry at ``index``, if any."""
    if raw is None:
        return None
    try:
        return parse_consent(raw)
    except ConsentError:
        log.error("the stored Consent of entry %d does not parse", index)
        return None


class ConsentBook:
    def __init__(self, pilots: dict[str, Pilot]) -> None:
        self.pilots = pilots
        self._by_id: dict[tuple[str, str], ConsentState] = {}
        self._by_subject: dict[tuple[str, str], list[str]] = {}
        self._entries: dict[tuple[str, str], list[int]] = {}
        #: The index of the last ``consent`` entry applied.
        self.applied = -1

    # -- building -----------------------------------------------------------------------------
    @classmethod
    def replay(
        cls, pilots: dict[str, Pilot], leaves: Iterable[tuple[int, dict[str, Any]]], db: AccessDb
    ) -> ConsentBook:
        """The book from the log's ``consent`` entries, opened
        (:meth:`ledger.queries.LedgerQueries.opened_leaves`)."""
        book = cls(pilots)
        latest: dict[tuple[str, str], tuple[int, ConsentEntry]] = {}
        first: dict[tuple[str, str], ConsentEntry] = {}
        for index, view in leaves:
            if view.get("v") == 2 and "consent" not in view:
                continue  # its opening is blinded: a Consent withdrawn with erasure
            try:
                # An opened view: its person commitment is gone, nothing is hashed.
                entry = ConsentEntry.from_leaf(view)
            except InvalidEnvelope:
                log.error("consent entry %d does not parse; ignored", index)
                continue
            latest[(entry.pilot, entry.consent)] = (index, entry)
            first.setdefault((entry.pilot, entry.consent), entry)
        resources = db.consent_resources(e.resource_hash for _, e in latest.values())
        for index, entry in sorted(latest.values(), key=lambda item: item[0]):
            consent = _stored_consent(resources.get(entry.resource_hash), index)
            if entry.custodian is None:
                origin = first[(entry.pilot, entry.consent)]
                custodian = origin.custodian or _legacy_custodian(origin, db)
                entry = entry.model_copy(update={"custodian": custodian})
            book.apply(index, entry, consent)
        return book

    def apply_view(self, index: int, view: dict[str, Any], db: AccessDb) -> ConsentEntry | None:
        """Apply one committed ``consent`` entry, opened, as a front end hears of it (its
        resource from the access store, where its writer stored it before the commit);
        the entry, or None when its opening is not in the view."""
        if view.get("v") == 2 and "consent" not in view:
            return None
        try:
            # An opened view (as the sequencer opened it): nothing is hashed.
            entry = ConsentEntry.from_leaf(view)
        except InvalidEnvelope:
            log.error("consent entry %d does not parse; ignored", index)
            return None
        raw = db.consent_resources([entry.resource_hash]).get(entry.resource_hash)
        consent = _stored_consent(raw, index)
        if entry.custodian is None:
            known = self.get(entry.pilot, entry.consent)
            custodian = known.custodian if known is not None else _legacy_custodian(entry, db)
            entry = entry.model_copy(update={"custodian": custodian})
        self.apply(index, entry, consent)
        return entry

    def apply(self, index: int, entry: ConsentEntry, consent: Consent | None) -> None:
        """Make ``entry`` (at ``index``) the Consent's current version; an index already
        applied (a front end hears of its own change twice) is skipped."""
        if index <= self.applied:
            return
        self.applied = index
        key = (entry.pilot, entry.consent)
        self._entries.setdefault(key, []).append(index)
        self._by_id[key] = ConsentState(
            entry.pilot,
            entry.consent,
            entry.subject,
            entry.status,
            entry.resource_hash,
            index,
            consent,
            entry.custodian,
        )
        ids = self._by_subject.setdefault((entry.pilot, entry.subject), [])
        if entry.consent in ids:
            ids.remove(entry.consent)
        ids.append(entry.consent)

    # -- reading ------------------------------------------------------------------------------
    def get(self, pilot: str, consent_id: str) -> ConsentState | None:
        return self._by_id.get((pilot, consent_id))

    def indexes_of(self, pilot: str, consent_id: str) -> list[int]:
        """Log indexes of every ``consent`` entry of one Consent seen since the book was
        built (what an erasure blinds)."""
        return list(self._entries.get((pilot, consent_id), ()))

    def of_subject(self, pilot: str, subject: str) -> list[ConsentState]:
        """The subject's consents in this pilot, most recently changed last."""
        ids = self._by_subject.get((pilot, subject), [])
        return [self._by_id[(pilot, i)] for i in ids]

    def current_for(self, pilot: str, subject: str) -> ConsentState | None:
        """The consent that speaks for ``subject`` now: the latest active one, else the
        latest of any status (so a withdrawal is what answers)."""
        states = self.of_subject(pilot, subject)
        for state in reversed(states):
            if state.status == "active":
                return state
        return states[-1] if states else None

    # -- the ingest hook (gateway.ingest.checks.ConsentCheck) ----------------------------
    def check_record(self, record: SignedRecord, source_org: str) -> None:
        """Raise Rejected('consent_required' | 'consent_not_active' | 'source_not_permitted')
        for a record about a person that its pilot's data type says needs consent, without
        one in force, or from a source (operated by ``source_org``) that the Consent does not
        let write about that person."""
        header, subject, consent_id = record.header, record.subject, record.consent
        if not needs_consent(self.pilots.get(header.pilot), header.type, subject):
            return
        assert subject is not None  # needs_consent is False without one
        if consent_id is None:
            raise Rejected(
                "consent_required", f"{header.type} about a person names no consent", header.id
            )
        state = self.get(header.pilot, consent_id)
        if state is None or state.consent is None:
            raise Rejected(
                "consent_required",
                f"consent {consent_id!r} is not on file in pilot {header.pilot!r}",
                header.id,
            )
        verdict = consent_in_force(state.consent, subject=subject, at=datetime.now(UTC))
        if not verdict.allowed:
            raise Rejected("consent_not_active", verdict.detail, header.id)
        writer = decide_writer(
            state.consent, custodian=state.custodian, source=header.source, source_org=source_org
        )
        if not writer.allowed:
            raise Rejected("source_not_permitted", writer.detail, header.id)


def _legacy_custodian(first: ConsentEntry, db: AccessDb) -> str | None:
    """For a Consent whose entries name no custodian: the organisation of the client that
    wrote its first entry, if that client is still registered."""
    client = db.client(first.actor)
    return client.org if client is not None and client.pilot == first.pilot else None


def consent_bytes(consent: Consent, suite: Suite = DEFAULT_SUITE) -> tuple[str, bytes]:
    """(hash, stored JSON) of a Consent: the hash the ``consent`` entry commits to, hex
    HASH(JCS(Consent)) in the log's ``suite``'s hash (SHA-256, as
    :func:`pilots.consent_hash`; SM3 on an ``sm2-sm3`` log)."""
    document = consent_json(consent)
    digest = suite.hexdigest(canonical_json(document))
    return digest, json.dumps(document, separators=(",", ":")).encode()
