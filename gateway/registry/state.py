"""The registry of organisations, sources and their keys, rebuilt from ``registry`` entries.

The log is the truth: the hub derives this state at startup by replaying every registry
leaf in index order, and applies each new change only after its entry is committed
(``changes.py`` plans the changes).

Every key is of the log's crypto suite (:mod:`ledger.suite`): Ed25519 on an
``ed25519-sha256`` log, SM2 on an ``sm2-sm3`` one; ``changes.py`` refuses any other.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from ledger.errors import KeyFileError
from ledger.keys import FastVerifier, PublicKey, public_key_from_b64
from ledger.suite import DEFAULT_SUITE, Suite

log = logging.getLogger("swiftchain.hub.registry")

#: The reason a rotation's ``key.revoke`` entries carry: the key ended as planned, which
#: keeps the pilot's late-delivery window (a revocation for any other reason does not).
ROTATED: Final = "rotated"


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
    public_key: PublicKey = field(repr=False)
    valid_from: str
    valid_until: str | None
    index: int
    revoked_at: str | None = None
    revoke_reason: str | None = None
    verifier: FastVerifier = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # Made once per key (libsodium for Ed25519, gmalglib for SM2): ingest checks every
        # record with it.
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
    #: The log's crypto suite: every key registered is of it.
    suite: Suite = DEFAULT_SUITE
    #: The index of the last registry entry applied.
    applied: int = -1
    _source_pilots: frozenset[str] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def replay(
        cls,
        leaves: Iterable[tuple[int, bytes]],
        pilots: Iterable[str] = (),
        suite: Suite = DEFAULT_SUITE,
    ) -> Registry:
        registry = cls(configured_pilots=frozenset(pilots), suite=suite)
        for index, leaf in leaves:
            registry.apply(index, json.loads(leaf))
        return registry

    @property
    def pilots(self) -> frozenset[str]:
        return self.configured_pilots | {p for p, _ in self.sources}

    def knows_pilot(self, pilot: str) -> bool:
        """Asked for every record: a set of the sources' pilots, made again after a change
        (a scan of every source cost ~2 µs a record)."""
        if pilot in self.configured_pilots:
            return True
        if self._source_pilots is None:
            self._source_pilots = frozenset(p for p, _ in self.sources)
        return pilot in self._source_pilots

    def apply(self, index: int, leaf: dict[str, Any]) -> None:
        """Apply one committed registry leaf. Unknown actions are ignored, not fatal; an
        index already applied (a front end hears of its own change twice) is skipped."""
        if index <= self.applied:
            return
        self.applied = index
        self._source_pilots = None
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
            try:
                public_key = public_key_from_b64(str(leaf["public_key"]), self.suite)
            except KeyFileError as exc:
                # Never planned by this hub (``changes.py`` refuses it): a key the log's
                # verifier refuses too, so no record signed with it is accepted.
                log.error("registry entry %d adds an unusable key (%s); ignored", index, exc)
                return
            self.keys[kid] = Key(
                key_id=kid,
                pilot=str(leaf["pilot"]),
                source=str(leaf["source"]),
                public_key_b64=str(leaf["public_key"]),
                public_key=public_key,
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
