"""Who may record, change and withdraw a Consent, as one pure decision.

A Consent belongs to the organisation that recorded it: its *custodian*, named on the log
in every ``consent`` entry (and, when the resource says, in ``Consent.organization``, which
must then name that same organisation). The rules, in the order they are asked:

1. The caller must hold one of the pilot's consent administrator roles (``not_a_member``,
   ``not_consent_admin``).
2. A grant (a new Consent) is recorded in the caller's own name (``Consent.organization``,
   when given, names the caller: ``consent_organization_mismatch``), only for data types
   the caller's roles may record consents for (the pilot's ``record_consent`` rules:
   ``role_may_not_record_consent``), and carries its evidence: who attests the patient's
   agreement, ``Consent.sourceAttachment`` or ``Consent.sourceReference``
   (``consent_evidence_missing``).
3. Only the custodian changes or withdraws a Consent (``consent_not_custodian``). A Consent
   whose custodian is not known (recorded before custodians were on the log, by a client
   no longer registered) may be withdrawn by any consent administrator of the pilot, a
   withdrawal only narrows, but changed by none (``consent_custodian_unknown``).
4. A withdrawn Consent (``inactive``, or ``entered-in-error``) stays so: an update is
   refused (``consent_withdrawn_final``); consenting again is a new grant with a new id.
   A withdrawal may be repeated (to erase what an earlier one kept).
5. An update may only narrow (:func:`pilots.consent_widening.widenings`); anything that
   could permit more is ``consent_widening_needs_grant``.

Allowed decisions say which ``consent`` entry to write: ``consent_grant``,
``consent_update`` or ``consent_withdraw`` (an update to a status that permits nothing).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from fhir.resources.R4B.consent import Consent

from .consent_widening import widenings
from .decision import Decision, Reason
from .models import Pilot
from .policy import can_manage_consent, roles_of
from .terminology import DATA_TYPE_SYSTEM, RESOURCE_TYPES_SYSTEM

ConsentChange = Literal["create", "update", "withdraw"]
#: Statuses a Consent never leaves (R4B Consent.status): withdrawn, or never valid.
FINAL_STATUSES = frozenset({"inactive", "entered-in-error"})
#: The ``consent`` entry action each allowed decision writes.
ENTRY_ACTIONS = {
    Reason.CONSENT_GRANT: "grant",
    Reason.CONSENT_UPDATE: "update",
    Reason.CONSENT_WITHDRAW: "withdraw",
}


@dataclass(frozen=True, slots=True)
class StoredConsent:
    """A Consent as the log has it: its custodian, its status and (when not erased) its
    current version."""

    custodian: str | None
    status: str
    consent: Consent | None


def decide_consent_change(
    pilot: Pilot,
    *,
    org: str,
    change: ConsentChange,
    stored: StoredConsent | None,
    proposed: Consent | None = None,
) -> Decision:
    """May ``org`` make ``change`` to a Consent (``stored``: as the log has it, None for a
    new one) so that it becomes ``proposed`` (not needed to withdraw)?"""
    admin = can_manage_consent(pilot, org)
    if not admin.allowed:
        return admin
    if change == "create":
        return _grant(pilot, org, stored, proposed)
    if stored is None:
        return Decision.deny(Reason.CONSENT_MISSING, "there is no such Consent to change")
    if stored.custodian is not None and stored.custodian != org:
        return Decision.deny(
            Reason.CONSENT_NOT_CUSTODIAN,
            f"this Consent belongs to {stored.custodian!r}, who recorded it; {org!r} may "
            "neither change nor withdraw it",
        )
    if change == "withdraw":
        return Decision.allow(Reason.CONSENT_WITHDRAW, f"{org!r} withdraws the Consent")
    if stored.custodian is None:
        return Decision.deny(
            Reason.CONSENT_CUSTODIAN_UNKNOWN,
            "the log does not say who recorded this Consent: it may be withdrawn, not "
            "changed; record a new Consent instead",
        )
    return _update(pilot, org, stored, proposed)


def _grant(pilot: Pilot, org: str, stored: StoredConsent | None, proposed: Any) -> Decision:
    if stored is not None:
        return Decision.deny(
            Reason.CONSENT_WIDENING_NEEDS_GRANT,
            "a Consent of that id exists: a new grant has a new id",
        )
    assert isinstance(proposed, Consent), "a grant needs the Consent to record"
    refused = _refusal(pilot, org, proposed)
    if refused is not None:
        return refused
    if proposed.sourceAttachment is None and proposed.sourceReference is None:
        return Decision.deny(
            Reason.CONSENT_EVIDENCE_MISSING,
            "a grant carries its evidence: Consent.sourceAttachment (the signed form) or "
            "Consent.sourceReference (the document that attests the patient's agreement)",
        )
    return Decision.allow(Reason.CONSENT_GRANT, f"{org!r} records a new Consent as custodian")


def _update(pilot: Pilot, org: str, stored: StoredConsent, proposed: Any) -> Decision:
    assert isinstance(proposed, Consent), "an update needs the new version"
    if stored.status in FINAL_STATUSES:
        return Decision.deny(
            Reason.CONSENT_WITHDRAWN_FINAL,
            f"the Consent is {stored.status} and stays so: consenting again is a new "
            "Consent with a new id (POST /fhir/Consent)",
        )
    refused = _refusal(pilot, org, proposed)
    if refused is not None:
        return refused
    if stored.consent is None:
        return Decision.deny(
            Reason.CONSENT_WIDENING_NEEDS_GRANT,
            "the stored version is not on file to compare with: record a new Consent",
        )
    wider = widenings(stored.consent, proposed)
    if wider:
        return Decision.deny(
            Reason.CONSENT_WIDENING_NEEDS_GRANT,
            f"this update would permit more ({'; '.join(wider[:3])}): record a new Consent "
            "with its own evidence instead",
        )
    if stored.status == "active" and proposed.status != "active":
        return Decision.allow(
            Reason.CONSENT_WITHDRAW, f"{org!r} sets the Consent to {proposed.status}"
        )
    return Decision.allow(Reason.CONSENT_UPDATE, f"{org!r} narrows or restates the Consent")


def _refusal(pilot: Pilot, org: str, proposed: Consent) -> Decision | None:
    # Not ``a or b``: a Decision is falsy when it denies.
    refused = _organization(proposed, org)
    return refused if refused is not None else _recordable(pilot, org, proposed)


def _organization(proposed: Consent, org: str) -> Decision | None:
    target = f"Organization/{org}"
    refs = [str(ref.reference or "") for ref in proposed.organization or ()]
    if all(r == target or r.endswith("/" + target) for r in refs):
        return None
    return Decision.deny(
        Reason.CONSENT_ORGANIZATION_MISMATCH,
        f"Consent.organization must name the recording organisation Organization/{org} "
        "(and only it)",
    )


def _recordable(pilot: Pilot, org: str, proposed: Consent) -> Decision | None:
    missing = sorted(covered_types(pilot, proposed) - recordable_types(pilot, org))
    if not missing:
        return None
    return Decision.deny(
        Reason.ROLE_MAY_NOT_RECORD_CONSENT,
        f"no role of {org!r} may record consents for {', '.join(missing)} in pilot {pilot.id!r}",
    )


def recordable_types(pilot: Pilot, org: str) -> frozenset[str]:
    """The data types ``org`` may record Consents for: its roles' ``record_consent`` rules,
    or, where the pilot has none, every type that needs consent (for its consent
    administrators)."""
    roles = roles_of(pilot, org)
    if not roles & set(pilot.consent_administrators):
        return frozenset()
    if not pilot.record_consent:
        return frozenset(t.id for t in pilot.data_types if t.consent_required)
    return frozenset(t for rule in pilot.record_consent if rule.role in roles for t in rule.types)


def covered_types(pilot: Pilot, consent: Consent) -> frozenset[str]:
    """The pilot's types needing consent that ``consent``'s grant (its root provision)
    covers: the ones its ``class`` names, or all of them where it names none."""
    needing = [t for t in pilot.data_types if t.consent_required]
    root = consent.provision
    if root is None:
        return frozenset()
    if not root.class_fhir:
        return frozenset(t.id for t in needing)
    named = set(_class_types(root.class_fhir))
    return frozenset(t.id for t in needing if t.id in named)


def _class_types(classes: Iterable[Any]) -> Iterable[str]:
    for c in classes:
        if c.system == DATA_TYPE_SYSTEM:
            yield str(c.code)
        elif c.system == RESOURCE_TYPES_SYSTEM:
            yield f"fhir.{c.code}"
