"""Making registry changes: one description of each change (``Change``), applied either to
a running hub through its admin API or, with no hub running, straight to the ledger file
(under the writer lock). Either way the change is a ``registry`` entry on the log."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from ledger.entries import RegistryEntry
from ledger.envelope import describe_validation_error
from ledger.store import LedgerReader, NewEntry

from . import registry as reg
from .api import models as m
from .errors import ConfigError, RegistryError
from .registry import Registry
from .settings import HubSettings
from .store import open_ledger

#: Admin API path (under /api/v1/admin/registry/) -> request model.
CHANGES: dict[str, type[BaseModel]] = {
    "orgs": m.OrgAdd,
    "sources": m.SourceAdd,
    "sources/revoke": m.SourceRevoke,
    "keys/rotate": m.KeyRotate,
    "keys/revoke": m.KeyRevoke,
}


def plan(change: BaseModel, registry: Registry, actor: str) -> list[RegistryEntry]:
    """The entries that make ``change`` (one of the request models) on ``registry``."""
    if isinstance(change, m.OrgAdd):
        return reg.plan_org_add(registry, change.org, name=change.name, actor=actor)
    if isinstance(change, m.SourceAdd):
        return reg.plan_source_add(
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
    if isinstance(change, m.SourceRevoke):
        return reg.plan_source_revoke(
            registry, pilot=change.pilot, source=change.source, actor=actor, reason=change.reason
        )
    if isinstance(change, m.KeyRotate):
        return reg.plan_key_rotate(
            registry,
            pilot=change.pilot,
            source=change.source,
            public_key=change.public_key,
            actor=actor,
            valid_from=change.valid_from,
            valid_until=change.valid_until,
        )
    if isinstance(change, m.KeyRevoke):
        return reg.plan_key_revoke(
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


def apply_to_file(settings: HubSettings, change: Change, actor: str) -> list[dict[str, Any]]:
    """Append the change to the ledger file directly (fails if a hub holds the file)."""
    ledger = open_ledger(settings)
    try:
        entries = plan(change.body, ledger.registry, actor)
        stored = ledger.writer.append([NewEntry("registry", e.leaf()) for e in entries])
        head = ledger.checkpoints.sign(ledger.writer.size(), ledger.writer.current_root())
        ledger.writer.add_checkpoint(head.size, head.root, head.note)
        return [
            {"index": e.index, "leaf_hash": bytes(e.leaf_hash).hex(), "entry": json.loads(e.leaf)}
            for e in stored
        ]
    finally:
        ledger.close()


def apply_remote(url: str, token: str | None, change: Change) -> list[dict[str, Any]]:
    """POST the change to a running hub's admin API."""
    if not token:
        raise ConfigError("the admin API needs a token: --token or SWIFTCHAIN_HUB_ADMIN_TOKEN")
    req = urllib.request.Request(
        f"{url.rstrip('/')}/api/v1/admin/registry/{change.path}",
        data=change.body.model_dump_json(exclude_none=True).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            answer = json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        try:
            err = json.loads(exc.read())
            raise RegistryError(str(err["error"]), str(err["detail"])) from None
        except (ValueError, KeyError, TypeError):
            raise ConfigError(f"hub at {url} answered HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise ConfigError(f"cannot reach the hub at {url}: {exc}") from None
    entries: list[dict[str, Any]] = answer["entries"]
    return entries


def read_registry(settings: HubSettings) -> Registry:
    """The registry as the ledger file has it (read-only; works while a hub runs)."""
    if not settings.db_path.exists():
        return Registry(configured_pilots=frozenset(settings.pilots))
    with LedgerReader(settings.db_path) as reader:
        return Registry.replay(
            reader.conn.execute(
                "SELECT idx, leaf FROM entries WHERE kind = 'registry' ORDER BY idx"
            ),
            settings.pilots,
        )
