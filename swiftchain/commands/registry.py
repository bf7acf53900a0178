"""`swiftchain registry` verbs: organisations, sources and their keys. Every change is a
``registry`` entry on the log, made through a running hub (--url) or, with the hub
stopped, straight in its ledger file."""

from __future__ import annotations

import getpass
import json
from pathlib import Path
from typing import Any

import click

from gateway.registry.changes import Change
from gateway.registry.offline import apply_to_file, read_registry
from gateway.settings import load_settings
from ledger.errors import KeyFileError
from ledger.keys import load_private_key, load_public_key, public_key_b64

from ..hubclient import apply_remote
from .errors import friendly


@click.group()
@click.option(
    "--config",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Hub settings (TOML): where the ledger file and the hub key are.",
)
@click.option(
    "--url", default=None, help="A running hub's base URL; changes go through its admin API."
)
@click.option("--token", envvar="SWIFTCHAIN_HUB_ADMIN_TOKEN", default=None, help="Admin API token.")
@click.pass_context
def registry(ctx: click.Context, config: Path | None, url: str | None, token: str | None) -> None:
    """Manage who may publish: organisations, sources, keys (rotation, revocation).

    Example: swiftchain registry --config hub.toml source add city-air station-1
    --org city --key-file station-1.key.pub --types city.air-quality
    """
    ctx.obj = {"config": config, "url": url, "token": token}


def _apply(ctx: click.Context, path: str, **fields: Any) -> None:
    change = Change.make(path, **fields)
    opts = ctx.find_object(dict)
    assert opts is not None
    if opts["url"]:
        token = opts["token"]
        if token is None and opts["config"] is not None:
            secret = load_settings(opts["config"]).admin_token
            token = secret.get_secret_value() if secret else None
        entries = apply_remote(opts["url"], token, change)
    else:
        entries = apply_to_file(load_settings(opts["config"]), change, f"cli:{getpass.getuser()}")
    for e in entries:
        entry = e["entry"]
        what = " ".join(str(entry[k]) for k in ("org", "pilot", "source", "key_id") if entry.get(k))
        click.echo(f"#{e['index']} {entry['action']} {what}")


def _public_key(key_file: Path | None, public_key: str | None) -> str:
    if bool(key_file) == bool(public_key):
        raise click.UsageError("give exactly one of --key-file and --public-key")
    if public_key:
        return public_key
    assert key_file is not None
    try:
        return public_key_b64(load_public_key(key_file))
    except KeyFileError:
        return public_key_b64(load_private_key(key_file).public_key())


def _types(value: str) -> list[str]:
    return [t.strip() for t in value.split(",") if t.strip()]


KEY_FILE = click.option(
    "--key-file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="The source's public key PEM (PATH.pub from `swiftchain keys new`), of the log's"
    " suite's kind.",
)
PUBLIC_KEY = click.option(
    "--public-key",
    help="The public key as base64url of its raw bytes, of the log's suite: 32 for Ed25519,"
    " the 65-byte point for SM2.",
)
VALID_FROM = click.option("--valid-from", help="RFC 3339 UTC; default now.")
VALID_UNTIL = click.option("--valid-until", help="RFC 3339 UTC; default open-ended.")


@registry.group()
def org() -> None:
    """Organisations."""


@org.command("add")
@click.argument("org_id")
@click.option("--name", help="Display name.")
@click.pass_context
@friendly
def org_add(ctx: click.Context, org_id: str, name: str | None) -> None:
    """Register an organisation.

    Example: swiftchain registry --config hub.toml org add city --name "City of Example"
    """
    _apply(ctx, "orgs", org=org_id, name=name)


@registry.group()
def source() -> None:
    """Sources (one device or system publishing into one pilot)."""


@source.command("add")
@click.argument("pilot")
@click.argument("source_id")
@click.option("--org", "org_id", required=True, help="The organisation running the source.")
@click.option("--types", required=True, help="Comma-separated data types it may publish.")
@KEY_FILE
@PUBLIC_KEY
@VALID_FROM
@VALID_UNTIL
@click.pass_context
@friendly
def source_add(
    ctx: click.Context,
    pilot: str,
    source_id: str,
    org_id: str,
    types: str,
    key_file: Path | None,
    public_key: str | None,
    valid_from: str | None,
    valid_until: str | None,
) -> None:
    """Register a source with its first key.

    Example: swiftchain registry --config hub.toml source add city-air station-1
    --org city --key-file station-1.key.pub --types city.air-quality
    """
    _apply(
        ctx,
        "sources",
        pilot=pilot,
        source=source_id,
        org=org_id,
        types=_types(types),
        public_key=_public_key(key_file, public_key),
        valid_from=valid_from,
        valid_until=valid_until,
    )


@source.command("revoke")
@click.argument("pilot")
@click.argument("source_id")
@click.option("--reason", help="Why, for the log.")
@click.pass_context
@friendly
def source_revoke(ctx: click.Context, pilot: str, source_id: str, reason: str | None) -> None:
    """Revoke a source: nothing it sends is accepted any more.

    Example: swiftchain registry --config hub.toml source revoke city-air station-1
    """
    _apply(ctx, "sources/revoke", pilot=pilot, source=source_id, reason=reason)


@registry.group()
def key() -> None:
    """Source keys."""


@key.command("rotate")
@click.argument("pilot")
@click.argument("source_id")
@KEY_FILE
@PUBLIC_KEY
@VALID_FROM
@VALID_UNTIL
@click.pass_context
@friendly
def key_rotate(
    ctx: click.Context,
    pilot: str,
    source_id: str,
    key_file: Path | None,
    public_key: str | None,
    valid_from: str | None,
    valid_until: str | None,
) -> None:
    """Give a source a new key; its current keys end when the new one starts.

    Example: swiftchain registry --config hub.toml key rotate city-air station-1
    --key-file station-1-2026.key.pub
    """
    _apply(
        ctx,
        "keys/rotate",
        pilot=pilot,
        source=source_id,
        public_key=_public_key(key_file, public_key),
        valid_from=valid_from,
        valid_until=valid_until,
    )


@key.command("revoke")
@click.argument("key_id")
@click.option("--at", help="Revoked from this RFC 3339 UTC time (default now).")
@click.option("--reason", help="Why, for the log (e.g. compromised).")
@click.pass_context
@friendly
def key_revoke(ctx: click.Context, key_id: str, at: str | None, reason: str | None) -> None:
    """Revoke a key: from --at on nothing it signs is accepted, whatever its observed_at.

    Example: swiftchain registry --config hub.toml key revoke 3f2a9c0d1e2b4a5c --reason compromised
    """
    _apply(ctx, "keys/revoke", key_id=key_id, at=at, reason=reason)


@registry.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
@friendly
def list_registry(ctx: click.Context, as_json: bool) -> None:
    """Show organisations, sources and keys as the ledger file has them.

    Example: swiftchain registry --config hub.toml list
    """
    opts = ctx.find_object(dict)
    assert opts is not None
    state = read_registry(load_settings(opts["config"]))
    if as_json:
        doc = {
            "orgs": state.public_orgs(),
            "sources": state.public_sources(),
            "keys": state.public_keys(),
        }
        click.echo(json.dumps(doc, indent=2))
        return
    for o in state.public_orgs():
        click.echo(f"org    {o['org']}  {o['name'] or ''}")
    for s in state.public_sources():
        status = "active" if s["active"] else f"revoked {s['revoked_at']}"
        types = ",".join(s["types"])
        click.echo(f"source {s['pilot']}/{s['source']}  org={s['org']}  types={types}  {status}")
    for k in state.public_keys():
        until = k["revoked_at"] or k["valid_until"] or "open"
        click.echo(
            f"key    {k['key_id']}  {k['pilot']}/{k['source']}  {k['valid_from']} .. {until}"
        )
