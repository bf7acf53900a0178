"""The CLI's client of a running hub's admin API (``--url``): a registry change POSTed
as JSON, the hub's JSON error turned into the same ``RegistryError`` an offline change raises."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from gateway.errors import ConfigError, RegistryError
from gateway.registry.changes import Change


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
