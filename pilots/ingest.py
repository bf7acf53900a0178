"""Whether a record may enter the log as far as consent goes, as pure functions: the hub
asks at ingest (before any signature work) and the answer becomes a ``rejected`` receipt.

A record about a person whose data type needs consent must name a Consent that is on file,
is about that person, has ``status: active`` and whose root ``provision.period`` contains
the time of ingest. Who may later *read* it is :func:`pilots.access.decide_access`'s
question, not this one.
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
