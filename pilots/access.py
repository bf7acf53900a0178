"""The whole read decision, policy then consent (docs/http.md, "Data, consent and audit").

The hub calls :func:`decide_access` once per request (and per record when the consent
depends on the record's codes or time), writes the decision as an ``access`` entry, and
only then answers.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from fhir.resources.R4B.consent import Consent

from .consent import decide_consent, denies_by_name
from .decision import Decision, Reason
from .models import Pilot
from .policy import decide_read
from .terminology import BREAK_GLASS


def decide_access(
    pilot: Pilot,
    *,
    org: str,
    data_type: str,
    purpose: str,
    at: datetime,
    subject: str | None = None,
    consent: Consent | None = None,
    codes: Collection[str] | None = None,
    observed_at: datetime | None = None,
) -> Decision:
    """May ``org`` read ``subject``'s ``data_type`` for ``purpose`` at ``at``?

    1. The pilot's policy must allow the role, type and purpose (deny by default).
    2. For types with ``consent_required``, ``consent`` (the subject's Consent, or None)
       must permit the organisation, purpose, type and time.
    3. Break-glass (ETREAT, where the pilot allows it) goes ahead without a permitting
       consent, flagged, except where the consent denies ETREAT by name: a patient's
       explicit "not even in an emergency" holds; and except where the patient withdrew
       the consent (``inactive``) and the pilot's ``break_glass_after_withdrawal`` is
       ``refuse`` (the default): a withdrawal is also a refusal of emergency access.
    """
    policy = decide_read(pilot, org, data_type, purpose)
    if not policy.allowed:
        return policy
    dt = pilot.data_type(data_type)
    if dt is None or not dt.consent_required:
        return policy
    if subject is None:
        return Decision.deny(
            Reason.CONSENT_MISSING,
            f"{data_type!r} needs the subject's consent, and no subject was given",
            break_glass=policy.break_glass,
        )
    verdict = decide_consent(
        consent,
        org=org,
        purpose=purpose,
        data_type=data_type,
        at=at,
        subject=subject,
        codes=codes,
        observed_at=observed_at,
    )
    if verdict.allowed:
        return Decision.allow(verdict.reason, verdict.detail, break_glass=policy.break_glass)
    if purpose != BREAK_GLASS:
        return verdict
    refused = denies_by_name(
        consent,
        org=org,
        purpose=purpose,
        data_type=data_type,
        at=at,
        subject=subject,
        codes=codes,
        observed_at=observed_at,
    )
    if refused:
        return Decision.deny(
            Reason.CONSENT_DENIES_BREAK_GLASS,
            f"the patient's consent refuses emergency access by name ({verdict.detail})",
            break_glass=True,
        )
    if verdict.reason == Reason.CONSENT_INACTIVE:
        if pilot.break_glass_after_withdrawal == "refuse":
            return Decision.deny(
                Reason.CONSENT_WITHDRAWN_DENIES_BREAK_GLASS,
                f"the patient withdrew the consent, and pilot {pilot.id!r} takes a withdrawal "
                f"as a refusal of emergency access too ({verdict.detail})",
                break_glass=True,
            )
        return Decision.allow(
            Reason.BREAK_GLASS_AFTER_WITHDRAWAL,
            f"break-glass read after the patient withdrew the consent ({verdict.detail}): "
            f"pilot {pilot.id!r} allows it; emergency treatment, flagged for review",
            break_glass=True,
        )
    return Decision.allow(
        Reason.BREAK_GLASS_OVERRIDE,
        f"break-glass read without a permitting consent ({verdict.reason.value}): "
        "emergency treatment, flagged for review",
        break_glass=True,
    )
