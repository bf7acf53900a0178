"""`swiftchain clients`: register hospital clients (SMART Backend Services) with their
public JWK set, organisation, pilot and allowed scopes; through a running hub's admin API
(--url) or straight in the access file of the hub that --config describes. One of the two
is required: guessing a hub (the defaults, in the current folder) wrote a client no hub
knew while printing success."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import click
from pydantic import ValidationError

from gateway.access.clients import ClientRegistration, check_registration
from gateway.access.db import AccessDb
from gateway.errors import ConfigError
from gateway.settings import load_settings
from ledger.envelope import describe_validation_error
from pilots import load_pilots

from .errors import friendly


@click.group()
def clients() -> None:
    """Manage hospital clients that get access tokens at /oauth/token.

    Example: swiftchain clients add --config hub.toml --client-id php-ehr
    --org harbour-peoples-hospital --pilot chronic-care --jwks php-ehr.jwks.json
    --scope system/Observation.rs
    """


@clients.command("add")
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option("--url", default=None, help="A running hub's base URL (admin API).")
@click.option("--token", envvar="SWIFTCHAIN_HUB_ADMIN_TOKEN", default=None, help="Admin token.")
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
            " hub, or --config <hub.toml> (the hub's own settings, to write its access file)"
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
    try:
        reg = ClientRegistration(
            client_id=client_id, org=org, pilot=pilot, jwks=jwks, scopes=list(scopes), name=name
        )
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc)) from None
    if url:
        req = urllib.request.Request(
            url.rstrip("/") + "/api/v1/admin/clients",
            data=reg.model_dump_json().encode(),
            method="POST",
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        )
        try:
            with urllib.request.urlopen(req, timeout=30):
                pass
        except urllib.error.HTTPError as exc:
            raise ConfigError(f"the hub refused: {exc.read().decode(errors='replace')}") from None
    else:
        settings = load_settings(config)
        client = check_registration(reg, load_pilots(settings.pilot_definitions))
        db = AccessDb(settings.access_db)
        try:
            db.put_client(client)
        finally:
            db.close()
    click.echo(f"client {client_id} ({org} in {pilot}) may ask for: {' '.join(scopes)}")
