"""A pilot's policy as pure functions: may this organisation read, publish, administer
consents or audit? Deny by default: only a rule in the pilot definition allows anything.

Consent is a separate question (:mod:`pilots.consent`); :func:`pilots.access.decide_access`
asks both: policy first, then consent.
"""

from __future__ import annotations

from .decision import Decision, Reason
from .models import Member, Pilot, ReadRule
from .terminology import BREAK_GLASS, PURPOSES_OF_USE


def roles_of(pilot: Pilot, org: str) -> frozenset[str]:
    """The roles ``org`` holds in ``pilot`` (empty when it is not a member)."""
    member = pilot.member(org)
    return frozenset(member.roles) if member is not None else frozenset()


def _read_rules(pilot: Pilot, member: Member, data_type: str) -> list[ReadRule]:
    return [r for r in pilot.read if r.role in member.roles and data_type in r.types]


def allowed_purposes(pilot: Pilot, org: str, data_type: str) -> frozenset[str]:
    """Every purpose of use for which ``org`` may read ``data_type`` (ETREAT included where
    break-glass is allowed)."""
    member = pilot.member(org)
    if member is None:
        return frozenset()
    rules = _read_rules(pilot, member, data_type)
    purposes = {p for r in rules for p in r.purposes}
    if any(r.break_glass for r in rules):
        purposes.add(BREAK_GLASS)
    return frozenset(purposes)


def readable_types(pilot: Pilot, org: str, purpose: str) -> frozenset[str]:
    """The data types ``org`` may read for ``purpose`` (before any consent)."""
    return frozenset(
        t.id for t in pilot.data_types if decide_read(pilot, org, t.id, purpose).allowed
    )


def decide_read(pilot: Pilot, org: str, data_type: str, purpose: str) -> Decision:
    """May ``org`` read records of ``data_type`` in ``pilot`` for ``purpose`` (an HL7 v3
    PurposeOfUse code)? Policy only: for personal data the subject's consent is also needed.

    ``break_glass`` is set on every decision about an ETREAT request, allowed or denied, so
    the audit flags attempts as well as uses.
    """
    emergency = purpose == BREAK_GLASS
    member = pilot.member(org)
    if member is None:
        return Decision.deny(
            Reason.NOT_A_MEMBER,
            f"organisation {org!r} is not a member of pilot {pilot.id!r}",
            break_glass=emergency,
        )
    if pilot.data_type(data_type) is None:
        return Decision.deny(
            Reason.UNKNOWN_DATA_TYPE,
            f"pilot {pilot.id!r} carries no data type {data_type!r}",
            break_glass=emergency,
        )
    if purpose not in PURPOSES_OF_USE:
        return Decision.deny(
            Reason.UNKNOWN_PURPOSE,
            f"{purpose!r} is not an HL7 v3 PurposeOfUse code",
            break_glass=emergency,
        )
    rules = _read_rules(pilot, member, data_type)
    if not rules:
        return Decision.deny(
            Reason.NO_READ_RULE,
            f"no role of {org!r} ({', '.join(member.roles)}) may read {data_type!r} "
            f"in pilot {pilot.id!r}",
            break_glass=emergency,
        )
    if emergency:
        glass = [r for r in rules if r.break_glass]
        if not glass:
            return Decision.deny(
                Reason.BREAK_GLASS_NOT_ALLOWED,
                f"pilot {pilot.id!r} allows no break-glass (ETREAT) read of {data_type!r} "
                f"by {org!r}",
                break_glass=True,
            )
        return Decision.allow(
            Reason.BREAK_GLASS,
            f"break-glass read of {data_type!r} by {org!r} as {glass[0].role!r}: "
            "emergency treatment, flagged for review",
            break_glass=True,
        )
    for rule in rules:
        if purpose in rule.purposes:
            return Decision.allow(
                Reason.READ_ALLOWED,
                f"{org!r} as {rule.role!r} may read {data_type!r} for {purpose} "
                f"({PURPOSES_OF_USE[purpose]})",
            )
    allowed = sorted({p for r in rules for p in r.purposes})
    return Decision.deny(
        Reason.PURPOSE_NOT_ALLOWED,
        f"{org!r} may read {data_type!r} only for {', '.join(allowed) or 'break-glass'}, "
        f"not {purpose}",
    )


def decide_publish(pilot: Pilot, org: str, data_type: str) -> Decision:
    """May sources of ``org`` publish records of ``data_type`` in ``pilot``?"""
    member = pilot.member(org)
    if member is None:
        return Decision.deny(
            Reason.NOT_A_MEMBER, f"organisation {org!r} is not a member of pilot {pilot.id!r}"
        )
    if pilot.data_type(data_type) is None:
        return Decision.deny(
            Reason.UNKNOWN_DATA_TYPE, f"pilot {pilot.id!r} carries no data type {data_type!r}"
        )
    for rule in pilot.publish:
        if rule.role in member.roles and data_type in rule.types:
            return Decision.allow(
                Reason.PUBLISH_ALLOWED, f"{org!r} as {rule.role!r} may publish {data_type!r}"
            )
    return Decision.deny(
        Reason.PUBLISH_NOT_ALLOWED,
        f"no role of {org!r} ({', '.join(member.roles)}) may publish {data_type!r} "
        f"in pilot {pilot.id!r}",
    )


def _by_role(
    pilot: Pilot, org: str, roles: tuple[str, ...], yes: Reason, no: Reason, what: str
) -> Decision:
    member = pilot.member(org)
    if member is None:
        return Decision.deny(
            Reason.NOT_A_MEMBER, f"organisation {org!r} is not a member of pilot {pilot.id!r}"
        )
    held = [r for r in member.roles if r in roles]
    if held:
        return Decision.allow(yes, f"{org!r} as {held[0]!r} may {what} in pilot {pilot.id!r}")
    return Decision.deny(no, f"no role of {org!r} may {what} in pilot {pilot.id!r}")


def can_manage_consent(pilot: Pilot, org: str) -> Decision:
    """May ``org`` create, update and withdraw Consents in ``pilot``?"""
    return _by_role(
        pilot,
        org,
        pilot.consent_administrators,
        Reason.CONSENT_ADMIN,
        Reason.NOT_CONSENT_ADMIN,
        "administer consents",
    )


def can_audit(pilot: Pilot, org: str) -> Decision:
    """May ``org`` read the access log about every subject in ``pilot``?"""
    return _by_role(pilot, org, pilot.auditors, Reason.AUDITOR, Reason.NOT_AUDITOR, "audit access")
