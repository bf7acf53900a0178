"""`swiftchain broker-config` verbs: Mosquitto accounts and ACLs from the hub's registry."""

from __future__ import annotations

import os
from pathlib import Path

import click

from gateway.registry.mosquitto import (
    accounts_for,
    derive_password,
    new_secret,
    render_acl,
    render_config,
    render_password_file,
    source_username,
)
from gateway.registry.offline import read_registry
from gateway.settings import load_settings

from .errors import friendly

SECRET = click.option(
    "--secret-file",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The broker secret every password is derived from (made with `broker-config secret`).",
)


def _read_secret(path: Path) -> bytes:
    try:
        raw = path.read_bytes().strip()
    except OSError as exc:
        raise click.ClickException(
            f"cannot read the broker secret {path}: {exc.strerror}"
        ) from None
    try:
        secret = bytes.fromhex(raw.decode())
    except (UnicodeDecodeError, ValueError):
        raise click.ClickException(f"{path} is not a hex broker secret") from None
    if len(secret) < 16:
        raise click.ClickException(f"{path} holds fewer than 16 bytes")
    return secret


def _write(path: Path, text: str, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(path, mode)


@click.group("broker-config")
def broker_config() -> None:
    """Generate Mosquitto's password file and ACL from the hub's registry.

    Example: swiftchain broker-config generate --config hub.toml --secret-file broker.secret
    --out deploy/mosquitto
    """


@broker_config.command("secret")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@friendly
def secret(path: Path) -> None:
    """Write a new random broker secret (hex, mode 0600) to PATH.

    Example: swiftchain broker-config secret deploy/broker.secret
    """
    if path.exists():
        raise click.ClickException(f"{path} exists; refusing to replace a broker secret")
    path.parent.mkdir(parents=True, exist_ok=True)
    _write(path, new_secret().hex() + "\n", 0o600)
    click.echo(f"wrote {path}")


@broker_config.command("generate")
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), default=None)
@SECRET
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--port", type=click.IntRange(1, 65535), default=1883, show_default=True)
@click.option("--bind", default="0.0.0.0", show_default=True, help="Listener address.")
@click.option(
    "--mount",
    default=None,
    help="Where OUT is mounted inside the broker's container (default: OUT itself).",
)
@click.option("--persistence", default="/mosquitto/data", show_default=True)
@click.option("--hub-user", default="hub", show_default=True)
@friendly
def generate(
    config: Path | None,
    secret_file: Path,
    out: Path,
    port: int,
    bind: str,
    mount: str | None,
    persistence: str,
    hub_user: str,
) -> None:
    """Write mosquitto.conf, passwd and acl into OUT for every active source.

    Example: swiftchain broker-config generate --config hub.toml --secret-file broker.secret
    --out deploy/mosquitto
    """
    registry = read_registry(load_settings(config))
    sources = [key for key, src in registry.sources.items() if src.active]
    accounts = accounts_for(sources, _read_secret(secret_file), hub_user)
    out.mkdir(parents=True, exist_ok=True)
    where = (mount or str(out.resolve())).rstrip("/")
    _write(out / "passwd", render_password_file(accounts), 0o600)
    _write(out / "acl", render_acl(accounts), 0o644)
    conf = render_config(
        port=port,
        bind=bind,
        password_file=f"{where}/passwd",
        acl_file=f"{where}/acl",
        persistence_dir=persistence,
    )
    _write(out / "mosquitto.conf", conf, 0o644)
    click.echo(f"wrote {out}/mosquitto.conf, passwd and acl: {len(accounts)} accounts")


@broker_config.command("password")
@SECRET
@click.option("--pilot", required=True)
@click.option("--source", required=True)
@friendly
def password(secret_file: Path, pilot: str, source: str) -> None:
    """Print the broker username and password of one source, for its agent's settings.

    Example: swiftchain broker-config password --secret-file broker.secret --pilot
    air-quality --source aq-station-01
    """
    username = source_username(pilot, source)
    click.echo(f"username: {username}")
    click.echo(f"password: {derive_password(_read_secret(secret_file), username)}")
