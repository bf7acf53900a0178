"""SMART v2 system scopes: ``system/<ResourceType or *>.<cruds>`` (SMART App Launch 2.0 3.0.x).

Swiftchain serves reads and searches, so only ``r`` and ``s`` are granted, except on
``Consent``, which consent administrators also create and update (``c``, ``u``). v1-style
``.read`` is accepted on request and means ``rs``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import OAuthError

_SCOPE = re.compile(r"^system/(\*|[A-Z][A-Za-z]{1,63})\.(read|[cruds]{1,5})$")
GRANTABLE = frozenset("rs")
#: Consents are also created and updated through the hub (by a pilot's consent
#: administrators: whether a client's organisation is one is asked per request).
GRANTABLE_FOR: dict[str, frozenset[str]] = {"Consent": frozenset("crus")}
MAX_SCOPES = 32
#: The FHIR resource types this hub has endpoints for. A scope is granted only for these (or
#: ``*``, meaning these): ``system/Patient.rs`` granted through a registration's
#: ``system/*.rs`` would promise a Patient endpoint that does not exist.
SERVED_TYPES = ("Observation", "DiagnosticReport", "Composition", "Consent")


@dataclass(frozen=True, order=True)
class Scope:
    resource: str
    """A FHIR resource type, or ``*``."""
    permissions: frozenset[str]

    def __str__(self) -> str:
        perms = "".join(p for p in "cruds" if p in self.permissions)
        return f"system/{self.resource}.{perms}"


def parse_scopes(text: str) -> list[Scope]:
    """Parse a space-separated scope string; raise OAuthError('invalid_scope') for bad ones."""
    words = text.split()
    if not words:
        raise OAuthError("invalid_scope", "scope is required, e.g. 'system/Observation.rs'")
    if len(words) > MAX_SCOPES:
        raise OAuthError("invalid_scope", f"at most {MAX_SCOPES} scopes")
    out = []
    for w in words:
        m = _SCOPE.match(w)
        if not m:
            raise OAuthError("invalid_scope", f"{w[:80]!r} is not a SMART v2 system scope")
        resource, perms = m.groups()
        chosen = frozenset("rs") if perms == "read" else frozenset(perms)
        out.append(Scope(resource, chosen))
    return out


def grant(requested: list[Scope], allowed: list[Scope]) -> list[Scope]:
    """The requested scopes narrowed to what the client is registered for and what we serve.

    Raises OAuthError('invalid_scope') when nothing of the request can be granted.
    """
    granted = []
    for r in requested:
        if r.resource != "*" and r.resource not in SERVED_TYPES:
            continue
        perms: set[str] = set()
        for a in allowed:
            if a.resource in ("*", r.resource):
                served = GRANTABLE_FOR.get(r.resource, GRANTABLE)
                perms |= r.permissions & a.permissions & served
        if perms:
            granted.append(Scope(r.resource, frozenset(perms)))
    if not granted:
        raise OAuthError("invalid_scope", "none of the requested scopes is allowed for this client")
    return sorted(set(granted))


def supported_scopes() -> tuple[str, ...]:
    """Every scope this hub grants, widest first per type: what discovery advertises."""
    named = [
        str(Scope(resource, GRANTABLE_FOR.get(resource, GRANTABLE))) for resource in SERVED_TYPES
    ]
    return (*named, str(Scope("*", GRANTABLE)))


def allows(scopes: list[Scope], resource: str, permission: str) -> bool:
    return any(s.resource in ("*", resource) and permission in s.permissions for s in scopes)
