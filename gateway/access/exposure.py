"""Every route of the hub, and how it is exposed: the one table saying which routes pass
the gate (:mod:`.gate`), so that "every read of a person's data is on the log" is a fact a
test can check. ``tests/integration/gateway/access/test_every_read_logged.py`` walks the
application's router and fails for a route missing here, for a row naming no route, and for
a ``gated`` route whose call leaves no ``access`` entry on the log.

A new route goes here in the same change that adds it: ``gated`` if it answers anything
about a person, else the class that says why it need not be.
"""

from __future__ import annotations

from enum import StrEnum
from types import MappingProxyType
from typing import Final


class Exposure(StrEnum):
    PUBLIC = "public"
    """Nothing about a person: the ledger (leaves and proofs), the registry, health,
    metadata and discovery, the OpenAPI document, the dashboard's counts, the token
    endpoint (which authenticates with an assertion)."""
    ADMIN = "admin"
    """The operator's admin token; each registry and client change is an entry of its own."""
    GATED = "gated"
    """Passes the gate: an access token, then exactly one ``access`` entry (allow or deny)
    committed before the response."""
    CHANGE = "change"
    """A consent administrator's change, answered with what the caller sent: the change is
    a ``consent`` entry naming the caller and the person, committed before the response."""


_P, _A, _G, _C = Exposure.PUBLIC, Exposure.ADMIN, Exposure.GATED, Exposure.CHANGE

ROUTES: Final = MappingProxyType(
    {
        # operations
        ("GET", "/healthz"): _P,
        ("GET", "/readyz"): _P,
        ("GET", "/metrics"): _P,
        ("GET", "/api/v1/openapi.json"): _P,
        # the public ledger and registry
        ("GET", "/api/v1/ledger"): _P,
        ("GET", "/api/v1/ledger/checkpoint"): _P,
        ("GET", "/api/v1/ledger/key"): _P,
        ("GET", "/api/v1/ledger/entries"): _P,
        ("GET", "/api/v1/ledger/proof/inclusion"): _P,
        ("GET", "/api/v1/ledger/proof/consistency"): _P,
        ("GET", "/api/v1/ledger/proof/tlog"): _P,
        ("GET", "/api/v1/registry/orgs"): _P,
        ("GET", "/api/v1/registry/sources"): _P,
        ("GET", "/api/v1/registry/keys"): _P,
        # the operator
        ("POST", "/api/v1/admin/registry/orgs"): _A,
        ("POST", "/api/v1/admin/registry/sources"): _A,
        ("POST", "/api/v1/admin/registry/sources/revoke"): _A,
        ("POST", "/api/v1/admin/registry/keys/rotate"): _A,
        ("POST", "/api/v1/admin/registry/keys/revoke"): _A,
        ("GET", "/api/v1/admin/dead-letters"): _A,
        ("GET", "/api/v1/admin/clients"): _A,
        ("POST", "/api/v1/admin/clients"): _A,
        ("POST", "/api/v1/admin/clients/revoke"): _A,
        # SMART Backend Services
        ("POST", "/oauth/token"): _P,
        ("GET", "/.well-known/smart-configuration"): _P,
        ("GET", "/oauth/jwks"): _P,
        # data about people, and the log about them
        ("GET", "/api/v1/records"): _G,
        ("GET", "/api/v1/audit"): _G,
        ("GET", "/fhir/metadata"): _P,
        ("GET", "/fhir/Observation"): _G,
        ("GET", "/fhir/DiagnosticReport"): _G,
        ("GET", "/fhir/Composition"): _G,
        ("POST", "/fhir/Observation/_search"): _G,
        ("POST", "/fhir/DiagnosticReport/_search"): _G,
        ("POST", "/fhir/Composition/_search"): _G,
        ("GET", "/fhir/Observation/{id}"): _G,
        ("GET", "/fhir/DiagnosticReport/{id}"): _G,
        ("GET", "/fhir/Composition/{id}"): _G,
        ("GET", "/fhir/Consent"): _G,
        ("GET", "/fhir/Consent/{id}"): _G,
        ("POST", "/fhir/Consent"): _C,
        ("PUT", "/fhir/Consent/{id}"): _C,
        ("POST", "/fhir/Consent/{id}/$withdraw"): _C,
        # the dashboard: counts only (the recent decisions need the admin token)
        ("GET", "/"): _P,
        ("GET", "/dashboard"): _P,
        ("GET", "/dashboard/static/{name}"): _P,
        ("GET", "/api/v1/dashboard/summary"): _P,
        ("GET", "/api/v1/dashboard/stream"): _P,
    }
)


def exposure_of(method: str, path: str) -> Exposure | None:
    """How the route ``method path`` (its template, e.g. ``/fhir/Consent/{id}``) is exposed;
    None if it is in no row. A HEAD is its GET without the body."""
    return ROUTES.get(("GET" if method == "HEAD" else method, path))
