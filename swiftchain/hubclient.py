"""The CLI's client of a running hub's admin API (``--url``): a registry change or a client
change sent as JSON, the hub's JSON error turned into the same ``RegistryError`` an offline
change raises."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from pydantic import BaseModel

from gateway.errors import ConfigError, RegistryError
from gateway.registry.changes import Change


def admin_call(url: str, token: str | None, method: str, path: str, body: BaseModel | None) -> Any:
    """``method`` ``path`` (under ``/api/v1/admin/``) on a running hub; its JSON answer."""
    if not token:
        raise ConfigError("the admin API needs a token: --token or SWIFTCHAIN_HUB_ADMIN_TOKEN")
    headers = {"Authorization": f"Bearer {token}"}
    data = None
    if body is not None:
        data = body.model_dump_json(exclude_none=True).encode()
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(
        f"{url.rstrip('/')}/api/v1/admin/{path}", data=data, method=method, headers=headers
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        try:
            err = json.loads(exc.read())
            raise RegistryError(str(err["error"]), str(err["detail"])) from None
        except (ValueError, KeyError, TypeError):
            raise ConfigError(f"hub at {url} answered HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise ConfigError(f"cannot reach the hub at {url}: {exc}") from None


def apply_remote(url: str, token: str | None, change: Change) -> list[dict[str, Any]]:
    """POST the registry change to a running hub's admin API."""
    answer = admin_call(url, token, "POST", f"registry/{change.path}", change.body)
    entries: list[dict[str, Any]] = answer["entries"]
    return entries
