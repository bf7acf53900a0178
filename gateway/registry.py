"""The registry of organisations, sources and their keys, rebuilt from ``registry`` entries.

The log is the truth: the hub derives this state at startup by replaying every registry
leaf in index order, and applies each new change only after its entry is committed. The
``plan_*`` functions are pure: they check a change against the current state and return
the ledger entries that make it, in the shape the offline verifier reads
(``ledger.entries.RegistryEntry``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from ledger.entries import RegistryEntry
from ledger.envelope import describe_validation_error, utc_now
from ledger.errors import KeyFileError
from ledger.keys import (
    Ed25519PublicKey,
    FastVerifier,
    key_id,
    public_key_b64,
    public_key_from_b64,
)

from .errors import RegistryError


def parse_time(value: str) -> datetime:
    """An RFC 3339 UTC time as an aware datetime (strings with and without fractions
    do not compare correctly as text)."""
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@dataclass
class Org:
    org: str
    name: str | None
    added_at: str
    index: int


@dataclass
class Source:
    pilot: str
    source: str
    org: str
    types: frozenset[str]
    added_at: str
    index: int
    revoked_at: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass
class Key:
    key_id: str
    pilot: str
    source: str
    public_key_b64: str
    public_key: Ed25519PublicKey = field(repr=False)
    valid_from: str
    valid_until: str | None
    index: int
    revoked_at: str | None = None
    revoke_reason: str | None = None
    verifier: FastVerifier = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # libsodium verification, made once per key: ingest checks every record with it.
        self.verifier = FastVerifier(self.public_key)

    def valid_at(self, when: datetime) -> bool:
        """Valid from ``valid_from`` up to (not including) ``valid_until`` or revocation."""
        if when < parse_time(self.valid_from):
            return False
        ends = [parse_time(t) for t in (self.valid_until, self.revoked_at) if t is not None]
        return not ends or when < min(ends)

    def public(self) -> dict[str, Any]:
        return {
            "key_id": self.key_id,
            "pilot": self.pilot,
            "source": self.source,
            "public_key": self.public_key_b64,
            "valid_from": self.valid_from,
            "valid_until": self.valid_until,
            "revoked_at": self.revoked_at,
            "index": self.index,
        }


@dataclass
class Registry:
    """Who may publish what, as of some log size."""

    orgs: dict[str, Org] = field(default_factory=dict)
    sources: dict[tuple[str, str], Source] = field(default_factory=dict)
    keys: dict[str, Key] = field(default_factory=dict)
    configured_pilots: frozenset[str] = frozenset()

    @classmethod
    def replay(cls, leaves: Iterable[tuple[int, bytes]], pilots: Iterable[str] = ()) -> Registry:
        registry = cls(configured_pilots=frozenset(pilots))
        for index, leaf in leaves:
            registry.apply(index, json.loads(leaf))
        return registry

    @property
    def pilots(self) -> frozenset[str]:
        return self.configured_pilots | {p for p, _ in self.sources}

    def knows_pilot(self, pilot: str) -> bool:
        return pilot in self.configured_pilots or any(p == pilot for p, _ in self.sources)

    def apply(self, index: int, leaf: dict[str, Any]) -> None:
        """Apply one committed registry leaf. Unknown actions are ignored, not fatal."""
        action = leaf.get("action")
        at = str(leaf.get("at"))
        detail = leaf.get("detail") or {}
        if action in ("org.add", "org.update"):
            org = str(leaf["org"])
            added = self.orgs[org].added_at if org in self.orgs else at
            self.orgs[org] = Org(org, detail.get("name"), added, index)
        elif action == "source.add":
            pilot, source = str(leaf["pilot"]), str(leaf["source"])
            types = frozenset(str(t) for t in detail.get("types", ()))
            self.sources[(pilot, source)] = Source(
                pilot, source, str(leaf["org"]), types, at, index
            )
        elif action == "source.revoke":
            found = self.sources.get((str(leaf["pilot"]), str(leaf["source"])))
            if found is not None:
                found.revoked_at = at
        elif action == "key.add":
            kid = str(leaf["key_id"])
            self.keys[kid] = Key(
                key_id=kid,
                pilot=str(leaf["pilot"]),
                source=str(leaf["source"]),
                public_key_b64=str(leaf["public_key"]),
                public_key=public_key_from_b64(str(leaf["public_key"])),
                valid_from=str(leaf.get("valid_from") or at),
                valid_until=leaf.get("valid_until"),
                index=index,
            )
        elif action == "key.revoke":
            found_key = self.keys.get(str(leaf["key_id"]))
            if found_key is not None:
                found_key.revoked_at = at
                found_key.revoke_reason = detail.get("reason")

    def source_keys(self, pilot: str, source: str) -> list[Key]:
        return [k for k in self.keys.values() if (k.pilot, k.source) == (pilot, source)]

    # -- public views ------------------------------------------------------------------------
    def public_orgs(self) -> list[dict[str, Any]]:
        return [
            {"org": o.org, "name": o.name, "added_at": o.added_at, "index": o.index}
            for o in sorted(self.orgs.values(), key=lambda o: o.org)
        ]

    def public_sources(self) -> list[dict[str, Any]]:
        return [
            {
                "pilot": s.pilot,
                "source": s.source,
                "org": s.org,
                "types": sorted(s.types),
                "added_at": s.added_at,
                "revoked_at": s.revoked_at,
                "active": s.active,
                "index": s.index,
            }
            for s in sorted(self.sources.values(), key=lambda s: (s.pilot, s.source))
        ]

    def public_keys(self) -> list[dict[str, Any]]:
        return [k.public() for k in sorted(self.keys.values(), key=lambda k: k.index)]


# -- planning changes (pure) --------------------------------------------------------------


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


def _public_key(text: str) -> Ed25519PublicKey:
    try:
        return public_key_from_b64(text)
    except KeyFileError as exc:
        raise RegistryError("invalid_public_key", str(exc)) from None


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
    kid = key_id(_public_key(public_key))
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
        public_key=public_key_b64(_public_key(public_key)),
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

    Records observed before the rotation stay acceptable under the old key (an agent's
    outbox may still hold some); anything observed after needs the new one.
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
            detail={"reason": "rotated", "replaced_by": new.key_id},
        )
        for k in old
    ]
    return [new, *ends]


def plan_key_revoke(
    registry: Registry, *, key: str, actor: str, at: str | None = None, reason: str | None = None
) -> list[RegistryEntry]:
    """Revoke a key from ``at`` (default now; earlier for a key known to be compromised
    since then): records observed from then on are refused."""
    found = registry.keys.get(key)
    if found is None:
        raise RegistryError("unknown_key", f"no registered key {key!r}")
    if found.revoked_at is not None:
        raise RegistryError("key_revoked", f"key {key} was already revoked at {found.revoked_at}")
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
