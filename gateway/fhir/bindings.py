"""Required value-set bindings of a FHIR resource (FHIR R4B 4.1.0.1: a ``required``
binding means the code SHALL be from the value set), which ``fhir.resources`` records on
its models but does not enforce: ``Consent.status: "not-a-status"`` validates there.

A Consent the hub decides on must mean one thing, so every coded element whose value set
is closed -- ``Consent.status``, ``provision.type`` at every depth, ``provision.data.meaning``,
``text.status``... -- is checked against it. Pure: walks the validated model."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

#: How ``fhir.resources`` marks a value set it lists only in part: such a binding is not
#: checked (what is listed is not all that is allowed).
OPEN_LIST = "+"
MAX_DEPTH = 64


@dataclass(frozen=True)
class Violation:
    path: str
    """FHIRPath-like location, e.g. ``Consent.provision.provision[0].type``."""
    value: str
    allowed: tuple[str, ...]

    def sentence(self) -> str:
        return (
            f"{self.path}: {self.value[:40]!r} is not in its required value set"
            f" ({' | '.join(self.allowed)})"
        )


def binding_violations(resource: BaseModel, root: str) -> list[Violation]:
    """Every coded element of ``resource`` outside its (closed) required value set."""
    found: list[Violation] = []
    _walk(resource, root, found, 0)
    return found


def _walk(model: BaseModel, path: str, found: list[Violation], depth: int) -> None:
    if depth > MAX_DEPTH:  # bounded: a Consent's nesting is capped far below this
        return
    for name, field in type(model).model_fields.items():
        value = getattr(model, name, None)
        if value is None:
            continue
        where = f"{path}.{field.alias or name}"
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        allowed = extra.get("enum_values")
        items = value if isinstance(value, list) else [value]
        if isinstance(allowed, list) and OPEN_LIST not in allowed:
            for i, item in enumerate(items):
                if isinstance(item, str) and item not in allowed:
                    at = f"{where}[{i}]" if isinstance(value, list) else where
                    found.append(Violation(at, item, tuple(str(a) for a in allowed)))
        for i, item in enumerate(items):
            if isinstance(item, BaseModel):
                at = f"{where}[{i}]" if isinstance(value, list) else where
                _walk(item, at, found, depth + 1)
