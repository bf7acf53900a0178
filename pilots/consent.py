"""Evaluating a patient's FHIR R4B ``Consent`` for one access, as a pure function.

Semantics (R4B Consent, opt-in reading):

- Only ``status: active`` consents permit; each other status denies with its own reason.
- ``patient`` must be ``Patient/<subject>`` (the record's pilot-scoped pseudonym) and
  ``scope`` patient-privacy (or research).
- The root ``provision`` is the grant: when its criteria hold (``period`` contains ``at``;
  ``actor`` names ``Organization/<org>``; ``purpose`` holds the PurposeOfUse code with the
  v3-ActReason system; ``class`` names the data type (our id under ``urn:swiftchain:data-type``
  or the FHIR resource type under ``http://hl7.org/fhir/resource-types``); ``code`` holds one
  of the record's LOINC codes; ``action``, ``dataPeriod``), access is permitted. An empty
  criterion matches anything. R4B forbids ``type`` on the root; if one is given anyway, a
  root ``deny`` is honoured as "deny unless a nested permit applies".
- Nested provisions are exceptions, evaluated the same way. Among the provisions that apply
  at one level a ``deny`` wins; a more deeply nested provision overrides its parent. A
  nested provision without ``type`` counts as ``deny``.
- Where the request leaves something unknown (no ``codes``, no ``observed_at``), a permit
  that depends on it does not apply and a deny that depends on it does: uncertainty
  resolves toward deny. Pass them to decide for one record.
- Dates without a time are taken as UTC days; a period's ``end`` includes all of its last
  unit (FHIR Period: 2012-02-03 ends at the end of that day). ``at`` is always a parameter.

``provision.securityLabel`` and ``provision.data`` are not evaluated.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fhir.resources.R4B.consent import Consent
from pydantic import ValidationError

from ledger.canonical import canonical_json

from .consent_build import ConsentStatus, ProvisionRule, make_consent, with_status
from .decision import Decision, Reason
from .errors import ConsentError
from .periods import aware, lower, upper
from .terminology import (
    ACT_REASON_SYSTEM,
    CONSENT_ACTION_SYSTEM,
    CONSENT_SCOPE_SYSTEM,
    DATA_TYPE_SYSTEM,
    LOINC_SYSTEM,
    RESOURCE_TYPES_SYSTEM,
)

__all__ = [
    "ConsentStatus",
    "ProvisionRule",
    "consent_hash",
    "consent_json",
    "decide_consent",
    "make_consent",
    "parse_consent",
    "with_status",
]

_STATUS_DENIALS: dict[str, tuple[Reason, str]] = {
    "draft": (Reason.CONSENT_DRAFT, "the consent is a draft, not yet agreed"),
    "proposed": (Reason.CONSENT_PROPOSED, "the consent is proposed, not yet agreed"),
    "rejected": (Reason.CONSENT_REJECTED, "the patient rejected this consent"),
    "inactive": (Reason.CONSENT_INACTIVE, "the consent was withdrawn or is no longer in force"),
    "entered-in-error": (Reason.CONSENT_ENTERED_IN_ERROR, "the consent was entered in error"),
}
#: Consent.scope codes of a privacy consent (the only kind that permits access here).
PRIVACY_SCOPES = frozenset({"patient-privacy", "research"})


@dataclass(frozen=True, slots=True)
class _Request:
    org: str
    purpose: str
    data_type: str
    resource_type: str | None
    at: datetime
    codes: frozenset[str] | None
    observed_at: datetime | None
    action: str


@dataclass(frozen=True, slots=True)
class _Outcome:
    permit: bool
    path: str


def decide_consent(
    consent: Consent | None,
    *,
    org: str,
    purpose: str,
    data_type: str,
    at: datetime,
    subject: str,
    codes: Collection[str] | None = None,
    observed_at: datetime | None = None,
    action: str = "access",
) -> Decision:
    """Does ``consent`` let ``org`` access ``subject``'s ``data_type`` for ``purpose`` at
    ``at``? ``data_type`` is the pilot's id (``fhir.Observation``); ``codes`` are the LOINC
    codes of the record (when deciding for one record); ``observed_at`` its time.
    """
    at = aware("at", at)
    if consent is None:
        return Decision.deny(Reason.CONSENT_MISSING, f"no consent on file for {subject!r}")
    status = str(consent.status) if consent.status is not None else None
    if status != "active":
        if status in _STATUS_DENIALS:
            reason, text = _STATUS_DENIALS[status]
            return Decision.deny(reason, f"consent {consent.id}: {text}")
        return Decision.deny(
            Reason.CONSENT_STATUS_UNKNOWN, f"consent {consent.id} has status {status!r}"
        )
    patient = consent.patient.reference if consent.patient is not None else None
    if not _names(patient, "Patient", subject):
        return Decision.deny(
            Reason.CONSENT_SUBJECT_MISMATCH,
            f"consent {consent.id} is about {patient or 'nobody'}, not Patient/{subject}",
        )
    scopes = {c.code for c in _codings([consent.scope], CONSENT_SCOPE_SYSTEM)}
    if not scopes & PRIVACY_SCOPES:
        return Decision.deny(
            Reason.CONSENT_WRONG_SCOPE,
            f"consent {consent.id} is not a privacy consent (scope {sorted(scopes) or 'none'})",
        )
    root = consent.provision
    if root is None:
        return Decision.deny(
            Reason.CONSENT_NO_PROVISION, f"consent {consent.id} states no provision"
        )
    request = _request(org, purpose, data_type, at, codes, observed_at, action)
    root_type = str(root.type) if root.type is not None else "permit"
    miss = _mismatch(root, request, deny=root_type == "deny")
    if miss is not None and root_type == "permit":
        reason, text = miss
        return Decision.deny(reason, f"consent {consent.id}: {text}")
    outcome = _evaluate(root, request, "provision", root_type) if miss is None else None
    if outcome is not None and outcome.permit:
        return Decision.allow(
            Reason.CONSENT_PERMITS,
            f"consent {consent.id} ({outcome.path}) permits {org!r} to access {data_type!r} "
            f"for {purpose}",
        )
    where = outcome.path if outcome is not None else "provision"
    return Decision.deny(
        Reason.CONSENT_DENIED,
        f"consent {consent.id} ({where}) denies {org!r} access to {data_type!r} for {purpose}",
    )


def denies_by_name(
    consent: Consent | None,
    *,
    org: str,
    purpose: str,
    data_type: str,
    at: datetime,
    subject: str,
    codes: Collection[str] | None = None,
    observed_at: datetime | None = None,
) -> bool:
    """Whether an active ``consent`` of ``subject`` holds a deny provision that names
    ``purpose`` and applies to this request (its own criteria hold), wherever it is nested.

    This is the patient's explicit refusal ("not even in an emergency"), which holds even
    where the grant never covered that purpose and so never reached the exception.
    """
    at = aware("at", at)
    if consent is None or consent.status != "active" or consent.provision is None:
        return False
    patient = consent.patient.reference if consent.patient is not None else None
    if not _names(patient, "Patient", subject):
        return False
    request = _request(org, purpose, data_type, at, codes, observed_at, "access")
    root = consent.provision
    stack: list[tuple[Any, str]] = [(root, str(root.type) if root.type else "permit")]
    while stack:
        provision, kind = stack.pop()
        named = {c.code for c in provision.purpose or () if c.system == ACT_REASON_SYSTEM}
        if kind == "deny" and purpose in named and _mismatch(provision, request, deny=True) is None:
            return True
        stack.extend((c, str(c.type) if c.type else "deny") for c in provision.provision or ())
    return False


def _request(
    org: str,
    purpose: str,
    data_type: str,
    at: datetime,
    codes: Collection[str] | None,
    observed_at: datetime | None,
    action: str,
) -> _Request:
    return _Request(
        org=org,
        purpose=purpose,
        data_type=data_type,
        resource_type=data_type.removeprefix("fhir.") if data_type.startswith("fhir.") else None,
        at=at,
        codes=frozenset(codes) if codes is not None else None,
        observed_at=aware("observed_at", observed_at) if observed_at is not None else None,
        action=action,
    )


def _evaluate(provision: Any, request: _Request, path: str, kind: str) -> _Outcome:
    """The outcome of a provision that applies: its own type unless a nested one applies
    (deny first among siblings)."""
    applying: list[_Outcome] = []
    for i, child in enumerate(provision.provision or ()):
        child_kind = str(child.type) if child.type is not None else "deny"
        if _mismatch(child, request, deny=child_kind == "deny") is None:
            applying.append(_evaluate(child, request, f"{path}.provision[{i}]", child_kind))
    for outcome in applying:
        if not outcome.permit:
            return outcome
    if applying:
        return applying[0]
    return _Outcome(permit=kind == "permit", path=path)


def _mismatch(provision: Any, request: _Request, *, deny: bool) -> tuple[Reason, str] | None:
    """The first criterion of ``provision`` that the request does not meet, or None.

    ``deny`` provisions apply where the request leaves a criterion unknown.
    """
    period = provision.period
    if period is not None:
        if period.start is not None and request.at < lower(period.start):
            return Reason.CONSENT_NOT_YET_VALID, f"in force only from {period.start}"
        if period.end is not None and request.at >= upper(period.end):
            return Reason.CONSENT_EXPIRED, f"expired at the end of {period.end}"
    actors = [a.reference.reference for a in provision.actor or () if a.reference is not None]
    if provision.actor and not any(_names(ref, "Organization", request.org) for ref in actors):
        return (
            Reason.CONSENT_ACTOR_NOT_PERMITTED,
            f"Organization/{request.org} is not among {', '.join(map(str, actors)) or 'nobody'}",
        )
    if provision.purpose:
        purposes = {c.code for c in provision.purpose if c.system == ACT_REASON_SYSTEM}
        if request.purpose not in purposes:
            return (
                Reason.CONSENT_PURPOSE_NOT_PERMITTED,
                f"purpose {request.purpose} is not among {', '.join(sorted(purposes)) or 'none'}",
            )
    if provision.class_fhir:
        if not any(_is_class(c, request) for c in provision.class_fhir):
            named = sorted(str(c.code) for c in provision.class_fhir)
            return (
                Reason.CONSENT_CLASS_NOT_PERMITTED,
                f"data type {request.data_type!r} is not among {', '.join(named)}",
            )
    if provision.code:
        named_codes = {c.code for c in _codings(provision.code, LOINC_SYSTEM)}
        unknown = request.codes is None
        if not (deny and unknown) and not (request.codes or frozenset()) & named_codes:
            what = "the record's codes are not known" if unknown else "no code matches"
            return (
                Reason.CONSENT_CODE_NOT_PERMITTED,
                f"{what} (LOINC {', '.join(sorted(map(str, named_codes)))})",
            )
    if provision.action:
        actions = {c.code for c in _codings(provision.action, CONSENT_ACTION_SYSTEM)}
        if request.action not in actions:
            return (
                Reason.CONSENT_ACTION_NOT_PERMITTED,
                f"action {request.action!r} is not among {', '.join(sorted(actions)) or 'none'}",
            )
    data_period = provision.dataPeriod
    if data_period is not None:
        observed = request.observed_at
        if observed is None:
            if not deny:
                return Reason.CONSENT_DATA_PERIOD, "the record's time is not known"
        elif (data_period.start is not None and observed < lower(data_period.start)) or (
            data_period.end is not None and observed >= upper(data_period.end)
        ):
            return Reason.CONSENT_DATA_PERIOD, f"data observed at {observed.isoformat()}"
    return None


def _is_class(coding: Any, request: _Request) -> bool:
    if coding.system == DATA_TYPE_SYSTEM:
        return bool(coding.code == request.data_type)
    if coding.system == RESOURCE_TYPES_SYSTEM and request.resource_type is not None:
        return bool(coding.code == request.resource_type)
    return False


def _codings(concepts: Iterable[Any], system: str) -> list[Any]:
    return [c for cc in concepts if cc is not None for c in cc.coding or () if c.system == system]


def _names(reference: object, resource_type: str, ident: str) -> bool:
    """Whether a FHIR reference (relative or absolute) is ``<resource_type>/<ident>``."""
    if not isinstance(reference, str):
        return False
    target = f"{resource_type}/{ident}"
    return reference == target or reference.endswith("/" + target)


# -- parsing and hashing ---------------------------------------------------------------------


#: R4B lets ``Consent.provision.provision`` nest without limit; the model validates (and
#: :func:`decide_consent` reads) it recursively, and ~200 levels overflow the stack. No real
#: consent goes past a grant, its exceptions and theirs.
MAX_PROVISION_DEPTH = 8


def _provision_depth(provision: object) -> int:
    """How deeply ``provision`` nests (the root is 1), counted without recursion and only up
    to one past :data:`MAX_PROVISION_DEPTH`."""
    deepest = 0
    level: list[object] = [provision] if provision is not None else []
    while level and deepest <= MAX_PROVISION_DEPTH:
        deepest += 1
        children: list[object] = []
        for node in level:
            if isinstance(node, Mapping) and isinstance(node.get("provision"), list):
                children.extend(node["provision"])
        level = children
    return deepest


def parse_consent(value: Mapping[str, Any] | str | bytes) -> Consent:
    """A FHIR R4B Consent from its JSON (text or parsed). Raises ConsentError."""
    try:
        document = json.loads(value) if isinstance(value, str | bytes) else dict(value)
    except (ValueError, TypeError, RecursionError) as exc:
        # RecursionError: nested deeper than the stack (a 10,000-deep body was a 500).
        raise ConsentError(f"not JSON: {exc}") from None
    if not isinstance(document, dict) or document.get("resourceType") != "Consent":
        raise ConsentError("not a FHIR Consent resource (resourceType must be 'Consent')")
    if _provision_depth(document.get("provision")) > MAX_PROVISION_DEPTH:
        raise ConsentError(
            f"Consent.provision is nested more than {MAX_PROVISION_DEPTH} levels deep;"
            " flatten its exceptions"
        )
    try:
        return Consent.model_validate(document)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConsentError(
            f"not a valid R4B Consent: {where}: {first['msg']} ({exc.error_count()} problem(s))"
        ) from None


def consent_json(consent: Consent) -> dict[str, Any]:
    """The FHIR JSON form of ``consent`` (as the ``consent`` ledger entry commits to)."""
    document: dict[str, Any] = consent.model_dump(mode="json")
    return document


def consent_hash(consent: Consent) -> str:
    """Hex SHA-256 of the RFC 8785 (JCS) canonical JSON of ``consent``."""
    return hashlib.sha256(canonical_json(consent_json(consent))).hexdigest()
