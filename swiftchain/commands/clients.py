"""`swiftchain clients`: register hospital clients (SMART Backend Services) with their
public JWK set, organisation, pilot and allowed scopes, list them with their state, and
revoke them; through a running hub's admin API (--url) or straight in the files of the hub
that --config describes (a revocation under the ledger's writer lock, like `swiftchain
registry`). One of the two is required: guessing a hub (the defaults, in the current folder)
wrote a client no hub knew while printing success."""

from __future__ import annotations

import getpass
import json
import re
from pathlib import Path
from typing import Any

import click
from pydantic import BaseModel, ValidationError

from gateway.access.clients import ClientRegistration, check_registration
from gateway.access.db import AccessDb
from gateway.access.offline import read_clients, revoke_in_files
from gateway.access.revocation import ClientRevoke
from gateway.errors import ConfigError
from gateway.settings import load_settings
from ledger.envelope import describe_validation_error
from pilots import load_pilots

from ..hubclient import admin_call
from .errors import friendly

CONFIG = click.option(
    "--config",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Hub settings (TOML): where the access store and the ledger are.",
)
URL = click.option("--url", default=None, help="A running hub's base URL (admin API).")
TOKEN = click.option(
    "--token", envvar="SWIFTCHAIN_HUB_ADMIN_TOKEN", default=None, help="Admin token."
)


@click.group()
def clients() -> None:
    """Manage hospital clients that get access tokens at /oauth/token.

    Example: swiftchain clients add --config hub.toml --client-id php-ehr
    --org harbour-peoples-hospital --pilot chronic-care --jwks php-ehr.jwks.json
    --scope system/Observation.rs
    """


def _model(model: type[BaseModel], **fields: Any) -> Any:
    try:
        return model(**fields)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc)) from None


def _token(config: Path | None, token: str | None) -> str | None:
    """The admin token given, or the one in the hub's config."""
    if token is None and config is not None:
        secret = load_settings(config).admin_token
        return secret.get_secret_value() if secret else None
    return token


def _operator() -> str:
    """Who runs this command, for the log: ``cli:<login>``."""
    return "cli:" + re.sub(r"[^A-Za-z0-9._@-]", "-", getpass.getuser())[:60]


@clients.command("add")
@CONFIG
@URL
@TOKEN
@click.option("--client-id", required=True)
@click.option("--org", required=True)
@click.option("--pilot", required=True)
@click.option("--jwks", "jwks_file", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--scope", "scopes", multiple=True, default=["system/*.rs"], show_default=True)
@click.option("--name", default="")
@friendly
def add(
    config: Path | None,
    url: str | None,
    token: str | None,
    client_id: str,
    org: str,
    pilot: str,
    jwks_file: Path,
    scopes: tuple[str, ...],
    name: str,
) -> None:
    """Register (or replace) a client with the public JWK set in a file."""
    if url is None and config is None:
        raise ConfigError(
            "say which hub: --url <hub base URL> (its admin API, with --token) for a running"
            " hub, or --config <hub.toml> (the hub's own settings, to write its access store)"
        )
    if url is not None and config is not None:
        raise ConfigError("give --url or --config, not both")
    if url is not None and not token:
        raise ConfigError(
            "--url needs the hub's admin token: --token or SWIFTCHAIN_HUB_ADMIN_TOKEN"
        )
    try:
        jwks = json.loads(jwks_file.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the JWK set {jwks_file}: {exc}") from None
    reg = _model(
        ClientRegistration,
        client_id=client_id,
        org=org,
        pilot=pilot,
        jwks=jwks,
        scopes=list(scopes),
        name=name,
    )
    if url:
        admin_call(url, _token(config, token), "POST", "clients", reg)
    else:
        settings = load_settings(config)
        client = check_registration(reg, load_pilots(settings.pilot_definitions))
        db = AccessDb(settings.access_location())
        try:
            db.put_client(client)
        finally:
            db.close()
    click.echo(f"client {client_id} ({org} in {pilot}) may ask for: {' '.join(scopes)}")


@clients.command("revoke")
@click.argument("client_id")
@click.option("--reason", required=True, help="Why, for the log (e.g. 'private key leaked').")
@CONFIG
@URL
@TOKEN
@friendly
def revoke(
    client_id: str, reason: str, config: Path | None, url: str | None, token: str | None
) -> None:
    """Revoke a client: its tokens stop working on the next request.

    The revocation is a `client` entry on the log (who, when, why); the client's keys get
    no token and may not be registered again. Register the client anew with a new key.

    Example: swiftchain clients revoke php-ehr --reason "private key leaked" --config hub.toml
    """
    operator = _operator()
    if url:
        change = _model(ClientRevoke, client_id=client_id, reason=reason, requested_by=operator)
        answer = admin_call(url, _token(config, token), "POST", "clients/revoke", change)
    else:
        change = _model(ClientRevoke, client_id=client_id, reason=reason)
        answer = revoke_in_files(load_settings(config), change, operator)
    entry = answer["entry"]
    click.echo(
        f"#{answer['index']} client.revoke {entry['client']} ({entry['org']} in"
        f" {entry['pilot']}) at {entry['at']} by {entry['actor']}: {entry['reason']}"
    )


@clients.command("list")
@CONFIG
@URL
@TOKEN
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@friendly
def list_clients(config: Path | None, url: str | None, token: str | None, as_json: bool) -> None:
    """Show every client, active or revoked (when, by whom, why).

    Example: swiftchain clients list --config hub.toml
    """
    if url:
        rows: list[dict[str, Any]] = admin_call(url, _token(config, token), "GET", "clients", None)[
            "clients"
        ]
    else:
        rows = [r.public() for r in read_clients(load_settings(config))]
    if as_json:
        click.echo(json.dumps({"clients": rows}, indent=2))
        return
    for row in rows:
        revoked = row.get("revoked")
        state = (
            f"revoked at {revoked['at']} by {revoked['by']} (log entry {revoked['index']}):"
            f" {revoked['reason']}"
            if revoked
            else "active"
        )
        click.echo(
            f"{row['client_id']}  {row['org']}  {row['pilot']}"
            f"  scopes={','.join(row['scopes'])}  {state}"
        )
