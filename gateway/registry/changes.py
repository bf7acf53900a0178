"""Registry changes: the request shapes the admin API and the CLI take, and the pure
``plan_*`` functions that check a change against the current registry and return the ledger
entries that make it, in the shape the offline verifier reads (``ledger.entries.RegistryEntry``).

A source's keys are of the log's crypto suite (:mod:`ledger.suite`); a key of the other one
is refused (``key_suite_mismatch``): its records could never verify on this log.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ledger.entries import RegistryEntry
from ledger.envelope import KeyId, Slug, TypeId, UtcTimestamp, describe_validation_error, utc_now
from ledger.errors import KeyFileError
from ledger.keys import PublicKey, key_id, public_key_b64, public_key_from_b64
from ledger.suite import Suite, suite_of

from ..errors import RegistryError
from .state import ROTATED, Registry, Source, parse_time

#: The raw public key, unpadded base64url: 43 characters for Ed25519's 32 bytes, 87 for an
#: SM2 point's 65 (0x04 || x || y). Which one a hub takes is its log's suite's.
PublicKeyB64 = Annotated[str, Field(pattern=r"^(?:[A-Za-z0-9_-]{43}|[A-Za-z0-9_-]{87})$")]
Reason = Annotated[str, Field(max_length=256)]


class _Change(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OrgAdd(_Change):
    org: Slug
    name: Annotated[str, Field(max_length=200)] | None = None


class SourceAdd(_Change):
    pilot: Slug
    source: Slug
    org: Slug
    types: Annotated[list[TypeId], Field(min_length=1, max_length=100)]
    public_key: PublicKeyB64
    valid_from: UtcTimestamp | None = None
    valid_until: UtcTimestamp | None = None


class SourceRevoke(_Change):
    pilot: Slug
    source: Slug
    reason: Reason | None = None


class KeyRotate(_Change):
    pilot: Slug
    source: Slug
    public_key: PublicKeyB64
    valid_from: UtcTimestamp | None = None
    valid_until: UtcTimestamp | None = None


class KeyRevoke(_Change):
    key_id: KeyId
    at: UtcTimestamp | None = None
    reason: Reason | None = None


def _entry(**fields: Any) -> RegistryEntry:
    try:
        return RegistryEntry(**fields)
    except ValidationError as exc:
        raise RegistryError("invalid_registry_change", describe_validation_error(exc)) from None


def _time(value: str | None, what: str) -> str:
    text = value or utc_now()
    try:
        _entry(action="org.add", at=text, actor="check", org="check")
    except RegistryError:
        raise RegistryError(
            "invalid_time", f"{what} must be RFC 3339 UTC, like 2026-05-01T08:30:00Z"
        ) from None
    return text


def plan_org_add(
    registry: Registry, org: str, *, name: str | None, actor: str
) -> list[RegistryEntry]:
    if org in registry.orgs:
        raise RegistryError("org_exists", f"organisation {org!r} is already registered")
    return [_entry(action="org.add", at=utc_now(), actor=actor, org=org, detail=_name(name))]


def _name(name: str | None) -> dict[str, Any] | None:
    return {"name": name} if name else None


def _public_key(text: str, suite: Suite) -> PublicKey:
    """The key in ``text``, which must be of the log's ``suite``."""
    try:
        key = public_key_from_b64(text)
    except KeyFileError as exc:
        raise RegistryError("invalid_public_key", str(exc)) from None
    if (kind := suite_of(key)) is not suite:
        raise RegistryError(
            "key_suite_mismatch",
            f"the public key is an {kind.key_kind} key, of suite {kind.name}; this hub's log is"
            f" of suite {suite.name} and takes {suite.key_kind} keys only (make one with:"
            f" swiftchain keys new --suite {suite.key_kind} FILE)",
        )
    return key


def _key_add(
    registry: Registry,
    pilot: str,
    source: str,
    public_key: str,
    *,
    at: str,
    actor: str,
    valid_from: str | None,
    valid_until: str | None,
) -> RegistryEntry:
    key = _public_key(public_key, registry.suite)
    kid = key_id(key)
    if kid in registry.keys:
        raise RegistryError("key_exists", f"key {kid} is already registered; use a new key")
    start = _time(valid_from or at, "valid_from")
    if valid_until is not None and parse_time(_time(valid_until, "valid_until")) <= parse_time(
        start
    ):
        raise RegistryError("invalid_time", "valid_until must be after valid_from")
    return _entry(
        action="key.add",
        at=at,
        actor=actor,
        pilot=pilot,
        source=source,
        key_id=kid,
        public_key=public_key_b64(key),
        valid_from=start,
        valid_until=valid_until,
    )


def plan_source_add(
    registry: Registry,
    *,
    pilot: str,
    source: str,
    org: str,
    types: Iterable[str],
    public_key: str,
    actor: str,
    valid_from: str | None = None,
    valid_until: str | None = None,
) -> list[RegistryEntry]:
    """``source.add`` then ``key.add``: a source's first key goes on the log with it."""
    if org not in registry.orgs:
        raise RegistryError(
            "unknown_org", f"organisation {org!r} is not registered; add it first (org add)"
        )
    if registry.configured_pilots and pilot not in registry.configured_pilots:
        raise RegistryError("unknown_pilot", f"this hub does not serve pilot {pilot!r}")
    if (pilot, source) in registry.sources:
        raise RegistryError("source_exists", f"source {pilot}/{source} is already registered")
    type_list = sorted(set(types))
    if not type_list:
        raise RegistryError("no_types", "a source must be allowed at least one data type")
    at = utc_now()
    first = _entry(
        action="source.add",
        at=at,
        actor=actor,
        org=org,
        pilot=pilot,
        source=source,
        detail={"types": type_list},
    )
    key = _key_add(
        registry,
        pilot,
        source,
        public_key,
        at=at,
        actor=actor,
        valid_from=valid_from,
        valid_until=valid_until,
    )
    return [first, key]


def _active_source(registry: Registry, pilot: str, source: str) -> Source:
    found = registry.sources.get((pilot, source))
    if found is None:
        raise RegistryError("unknown_source", f"source {pilot}/{source} is not registered")
    if not found.active:
        raise RegistryError("source_revoked", f"source {pilot}/{source} was revoked")
    return found


def plan_key_rotate(
    registry: Registry,
    *,
    pilot: str,
    source: str,
    public_key: str,
    actor: str,
    valid_from: str | None = None,
    valid_until: str | None = None,
) -> list[RegistryEntry]:
    """Add the new key, then end every current key of the source at the same instant.

    Records observed before the rotation and received within the pilot's late-delivery
    window after it stay acceptable under the old key (they were in flight); an agent
    re-seals the rest of its backlog with the new key (``ingest/validity.py``).
    """
    _active_source(registry, pilot, source)
    at = utc_now()
    new = _key_add(
        registry,
        pilot,
        source,
        public_key,
        at=at,
        actor=actor,
        valid_from=valid_from,
        valid_until=valid_until,
    )
    old = [k for k in registry.source_keys(pilot, source) if k.revoked_at is None]
    ends = [
        _entry(
            action="key.revoke",
            at=new.valid_from or at,
            actor=actor,
            pilot=pilot,
            source=source,
            key_id=k.key_id,
            detail={"reason": ROTATED, "replaced_by": new.key_id},
        )
        for k in old
    ]
    return [new, *ends]


def plan_key_revoke(
    registry: Registry, *, key: str, actor: str, at: str | None = None, reason: str | None = None
) -> list[RegistryEntry]:
    """Revoke a key from ``at`` (default now; earlier for a key known to be compromised
    since then): nothing it signs that the hub receives from then on is accepted."""
    found = registry.keys.get(key)
    if found is None:
        raise RegistryError("unknown_key", f"no registered key {key!r}")
    if found.revoked_at is not None:
        raise RegistryError("key_revoked", f"key {key} was already revoked at {found.revoked_at}")
    if reason == ROTATED:
        # The rotation's own reason: a key that ends by rotation keeps the pilot's late-
        # delivery window, which a revocation (a compromise) must never get by its wording.
        raise RegistryError(
            "reserved_reason", f"{ROTATED!r} is the reason a rotation writes; use key rotate"
        )
    return [
        _entry(
            action="key.revoke",
            at=_time(at, "at"),
            actor=actor,
            pilot=found.pilot,
            source=found.source,
            key_id=key,
            detail={"reason": reason or "revoked"},
        )
    ]


def plan_source_revoke(
    registry: Registry, *, pilot: str, source: str, actor: str, reason: str | None = None
) -> list[RegistryEntry]:
    found = _active_source(registry, pilot, source)
    return [
        _entry(
            action="source.revoke",
            at=utc_now(),
            actor=actor,
            org=found.org,
            pilot=pilot,
            source=source,
            detail={"reason": reason or "revoked"},
        )
    ]


#: Admin API path (under /api/v1/admin/registry/) -> request model.
CHANGES: dict[str, type[BaseModel]] = {
    "orgs": OrgAdd,
    "sources": SourceAdd,
    "sources/revoke": SourceRevoke,
    "keys/rotate": KeyRotate,
    "keys/revoke": KeyRevoke,
}


def plan(change: BaseModel, registry: Registry, actor: str) -> list[RegistryEntry]:
    """The entries that make ``change`` (one of the request models) on ``registry``."""
    if isinstance(change, OrgAdd):
        return plan_org_add(registry, change.org, name=change.name, actor=actor)
    if isinstance(change, SourceAdd):
        return plan_source_add(
            registry,
            pilot=change.pilot,
            source=change.source,
            org=change.org,
            types=change.types,
            public_key=change.public_key,
            actor=actor,
            valid_from=change.valid_from,
            valid_until=change.valid_until,
        )
    if isinstance(change, SourceRevoke):
        return plan_source_revoke(
            registry, pilot=change.pilot, source=change.source, actor=actor, reason=change.reason
        )
    if isinstance(change, KeyRotate):
        return plan_key_rotate(
            registry,
            pilot=change.pilot,
            source=change.source,
            public_key=change.public_key,
            actor=actor,
            valid_from=change.valid_from,
            valid_until=change.valid_until,
        )
    if isinstance(change, KeyRevoke):
        return plan_key_revoke(
            registry, key=change.key_id, actor=actor, at=change.at, reason=change.reason
        )
    raise TypeError(f"not a registry change: {type(change).__name__}")


@dataclass(frozen=True)
class Change:
    path: str
    body: BaseModel

    @classmethod
    def make(cls, path: str, **fields: Any) -> Change:
        try:
            body = CHANGES[path].model_validate({k: v for k, v in fields.items() if v is not None})
        except ValidationError as exc:
            raise RegistryError("invalid_registry_change", describe_validation_error(exc)) from None
        return cls(path, body)
