"""Whether a record may enter the log as far as consent goes, as pure functions: the hub
asks at ingest (before any signature work) and the answer becomes a ``rejected`` receipt.

A record about a person whose data type needs consent must name a Consent that is on file,
is about that person, has ``status: active`` and whose root ``provision.period`` contains
the time of ingest; and the record's source must be one the Consent lets write about that
person (:func:`decide_writer`). Who may later *read* it is
:func:`pilots.access.decide_access`'s question, not this one.

A Consent names the sources that may write about its patient as actors of its root
provision whose reference is ``Device/<source id>`` (the source's id in the pilot's
registry; R4B ``Consent.provision.actor.reference`` may be a Device). Those actors are not
recipients: recipients are ``Organization/<org>`` actors, so a Consent that names sources
names its recipients too.
"""

from __future__ import annotations

from datetime import datetime

from fhir.resources.R4B.consent import Consent

from .decision import Decision, Reason
from .models import Pilot
from .periods import aware, lower, upper


def needs_consent(pilot: Pilot | None, data_type: str, subject: str | None) -> bool:
    """Records about a person need consent unless the pilot says their type does not;
    a type the hub has no definition for is treated as needing it (deny by default)."""
    if subject is None:
        return False
    dt = pilot.data_type(data_type) if pilot is not None else None
    return dt is None or dt.consent_required


def consent_in_force(consent: Consent | None, *, subject: str, at: datetime) -> Decision:
    """Is ``consent`` (None: not on file) about ``subject``, active, and in force at ``at``?"""
    at = aware("at", at)
    if consent is None:
        return Decision.deny(Reason.CONSENT_MISSING, f"no consent on file for {subject!r}")
    if consent.status != "active":
        return Decision.deny(
            Reason.CONSENT_INACTIVE, f"consent {consent.id} has status {consent.status!r}"
        )
    if not names_patient(consent, subject):
        return Decision.deny(
            Reason.CONSENT_SUBJECT_MISMATCH,
            f"consent {consent.id} is not about Patient/{subject}",
        )
    period = consent.provision.period if consent.provision is not None else None
    if period is not None:
        if period.start is not None and at < lower(period.start):
            return Decision.deny(
                Reason.CONSENT_NOT_YET_VALID,
                f"consent {consent.id} is in force from {period.start}",
            )
        if period.end is not None and at >= upper(period.end):
            return Decision.deny(
                Reason.CONSENT_EXPIRED, f"consent {consent.id} expired at the end of {period.end}"
            )
    return Decision.allow(Reason.CONSENT_PERMITS, f"consent {consent.id} is active")


def named_sources(consent: Consent) -> frozenset[str]:
    """The source ids ``consent`` names (``Device/<source id>`` actors of its root
    provision; nested provisions are exceptions to the grant and name none)."""
    root = consent.provision
    if root is None:
        return frozenset()
    out = set()
    for actor in root.actor or ():
        ref = actor.reference.reference if actor.reference is not None else None
        if isinstance(ref, str) and "Device/" in ref:
            ident = ref.rsplit("Device/", 1)[1]
            if ident:
                out.add(ident)
    return frozenset(out)


def decide_writer(
    consent: Consent, *, custodian: str | None, source: str, source_org: str
) -> Decision:
    """May ``source`` (operated by ``source_org``) write about ``consent``'s patient? Yes
    for the sources of the Consent's custodian and the sources the Consent names."""
    if custodian is not None and source_org == custodian:
        return Decision.allow(
            Reason.SOURCE_OF_CUSTODIAN,
            f"source {source!r} is operated by {custodian!r}, custodian of consent {consent.id}",
        )
    if source in named_sources(consent):
        return Decision.allow(
            Reason.SOURCE_NAMED_BY_CONSENT, f"consent {consent.id} names Device/{source}"
        )
    return Decision.deny(
        Reason.SOURCE_NOT_PERMITTED,
        f"source {source!r} of {source_org!r} may not write about this patient: it is not a "
        f"source of the custodian ({custodian or 'unknown'}) and consent {consent.id} does "
        "not name it (Device/<source> in provision.actor)",
    )


def names_patient(consent: Consent, subject: str) -> bool:
    """Whether ``consent.patient`` is ``Patient/<subject>`` (relative or absolute)."""
    return consent_subject(consent) == subject


def consent_subject(consent: Consent) -> str | None:
    """The pseudonym in ``Consent.patient`` (``Patient/<pseudonym>``), or None."""
    ref = consent.patient.reference if consent.patient is not None else None
    if not isinstance(ref, str) or "Patient/" not in ref:
        return None
    ident = ref.rsplit("Patient/", 1)[1]
    return ident or None
