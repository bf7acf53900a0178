"""Whether a new version of a Consent could permit something its stored version does not.

An update may only narrow a Consent: fewer actors (recipients, sources), purposes, data
classes, codes or actions, a shorter ``period`` or ``dataPeriod``, more exceptions that
deny, or a status that permits nothing. Anything that could permit more needs a new grant
(a new Consent, with a new id and its own evidence). Criteria are compared the way
:func:`pilots.consent.decide_consent` reads them (an empty criterion matches anything).

The comparison is conservative where the evaluation's semantics would make it subtle:
the root provision's ``type`` may not change, every stored nested provision (exception)
must be kept exactly, and new nested provisions may only deny (no ``permit`` anywhere in
them). Changing or removing an exception therefore needs a new grant, even where the edit
would in fact narrow. ``provision.securityLabel`` and ``provision.data`` are not evaluated,
so they are not compared.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from fhir.resources.R4B.consent import Consent

from ledger.canonical import canonical_json

from .consent import PRIVACY_SCOPES
from .periods import lower, upper
from .terminology import (
    ACT_REASON_SYSTEM,
    CONSENT_ACTION_SYSTEM,
    CONSENT_SCOPE_SYSTEM,
    DATA_TYPE_SYSTEM,
    LOINC_SYSTEM,
    RESOURCE_TYPES_SYSTEM,
)

#: Consent.status values under which a Consent permits anything (R4B: only ``active``).
_PERMITTING = "active"


def widenings(stored: Consent, proposed: Consent) -> list[str]:
    """How ``proposed`` could permit more than ``stored``, one sentence each; empty when
    it only narrows (or changes nothing that is evaluated)."""
    if not _can_permit(proposed):
        return []
    if not _can_permit(stored):
        return [_why_stored_permits_nothing(stored)]
    root, new_root = stored.provision, proposed.provision
    assert root is not None and new_root is not None  # _can_permit checked both
    out: list[str] = []
    kind, new_kind = str(root.type or "permit"), str(new_root.type or "permit")
    if kind != new_kind:
        out.append(f"the root provision's type changes from {kind} to {new_kind}")
    out.extend(_criteria(root, new_root, "provision"))
    out.extend(_exceptions(root, new_root))
    return out


def _can_permit(consent: Consent) -> bool:
    scopes = {c.code for c in _codings([consent.scope], CONSENT_SCOPE_SYSTEM)}
    return (
        consent.status == _PERMITTING
        and bool(scopes & PRIVACY_SCOPES)
        and consent.provision is not None
    )


def _why_stored_permits_nothing(stored: Consent) -> str:
    if stored.status != _PERMITTING:
        return f"the stored version has status {stored.status!r} and permits nothing"
    if stored.provision is None:
        return "the stored version states no provision and permits nothing"
    return "the stored version is not a privacy consent and permits nothing"


def _criteria(old: Any, new: Any, where: str) -> Iterable[str]:
    """Each criterion of ``new`` that admits a request ``old`` did not."""
    for name, values in (
        ("actor", _actors),
        ("purpose", _purposes),
        ("class", _classes),
        ("code", _codes),
        ("action", _actions),
    ):
        was, now = values(old), values(new)
        if was is None:
            continue  # no restriction before: nothing can be wider
        if now is None:
            yield f"{where}.{name}: any, where it was limited to {', '.join(sorted(was))}"
        elif now - was:
            yield f"{where}.{name}: adds {', '.join(sorted(now - was))}"
    for name in ("period", "dataPeriod"):
        yield from _period(getattr(old, name), getattr(new, name), f"{where}.{name}")


def _period(old: Any, new: Any, where: str) -> Iterable[str]:
    if old is None:
        return
    start, new_start = old.start, new.start if new is not None else None
    if start is not None and (new_start is None or lower(new_start) < lower(start)):
        yield f"{where}.start: {_show(new_start)}, earlier than {_show(start)}"
    end, new_end = old.end, new.end if new is not None else None
    if end is not None and (new_end is None or upper(new_end) > upper(end)):
        yield f"{where}.end: {_show(new_end)}, later than {_show(end)}"


def _show(value: Any) -> str:
    """A FHIR date or dateTime as FHIR writes it; ``open`` for none."""
    if value is None:
        return "open"
    return str(value.isoformat()) if hasattr(value, "isoformat") else str(value)


def _exceptions(old: Any, new: Any) -> Iterable[str]:
    kept = Counter(_json(p) for p in new.provision or ())
    for i, child in enumerate(old.provision or ()):
        key = _json(child)
        if kept[key] > 0:
            kept[key] -= 1
        else:
            yield f"provision.provision[{i}] (an exception) is changed or removed"
    # What is left in ``kept`` was added; each added exception must deny throughout.
    for i, child in enumerate(new.provision or ()):
        key = _json(child)
        if kept[key] > 0:
            kept[key] -= 1
            if _grants(child):
                yield f"new provision.provision[{i}] permits (new exceptions may only deny)"


def _grants(provision: Any) -> bool:
    """Whether ``provision`` or any provision nested in it is a ``permit``."""
    stack = [provision]
    for _ in range(10_000):  # bounded: a parsed Consent is finite, this is only a guard
        if not stack:
            return False
        node = stack.pop()
        if node.type is not None and str(node.type) == "permit":
            return True
        stack.extend(node.provision or ())
    return True  # too large to tell: treat as widening


def _json(provision: Any) -> bytes:
    return canonical_json(provision.model_dump(mode="json", exclude_none=True))


# -- criteria as decide_consent reads them (None: no restriction) ----------------------------


def _actors(provision: Any) -> frozenset[str] | None:
    if not provision.actor:
        return None
    return frozenset(
        _relative(a.reference.reference)
        for a in provision.actor
        if a.reference is not None and a.reference.reference is not None
    )


def _purposes(provision: Any) -> frozenset[str] | None:
    if not provision.purpose:
        return None
    return frozenset(str(c.code) for c in provision.purpose if c.system == ACT_REASON_SYSTEM)


def _classes(provision: Any) -> frozenset[str] | None:
    if not provision.class_fhir:
        return None
    out = set()
    for c in provision.class_fhir:
        # A resource type names the pilot's ``fhir.<type>`` data type (consent._is_class).
        if c.system == DATA_TYPE_SYSTEM:
            out.add(str(c.code))
        elif c.system == RESOURCE_TYPES_SYSTEM:
            out.add(f"fhir.{c.code}")
    return frozenset(out)


def _codes(provision: Any) -> frozenset[str] | None:
    if not provision.code:
        return None
    return frozenset(str(c.code) for c in _codings(provision.code, LOINC_SYSTEM))


def _actions(provision: Any) -> frozenset[str] | None:
    if not provision.action:
        return None
    return frozenset(str(c.code) for c in _codings(provision.action, CONSENT_ACTION_SYSTEM))


def _relative(reference: str) -> str:
    """``https://x/fhir/Organization/a`` and ``Organization/a`` name the same actor."""
    parts = reference.rstrip("/").split("/")
    return "/".join(parts[-2:]) if len(parts) >= 2 else reference


def _codings(concepts: Iterable[Any], system: str) -> list[Any]:
    return [c for cc in concepts if cc is not None for c in cc.coding or () if c.system == system]
