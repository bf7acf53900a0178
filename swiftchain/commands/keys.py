"""`swiftchain keys` verbs: make and show Ed25519 key pairs."""

from __future__ import annotations

from pathlib import Path

import click

from ledger.checkpoint import NoteSigner
from ledger.keys import key_id, load_private_key, public_key_b64, write_key_pair

from .errors import friendly


@click.group()
def keys() -> None:
    """Make and inspect Ed25519 key pairs for sources and the hub."""


@keys.command("new")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite an existing key (the old one is lost).")
@friendly
def new(path: Path, force: bool) -> None:
    """Write a new key pair: PATH (private, mode 0600) and PATH.pub.

    Example: swiftchain keys new keys/air-station-1.key
    """
    key = write_key_pair(path, overwrite=force)
    pub = key.public_key()
    click.echo(f"wrote {path} and {path}.pub")
    click.echo(f"key id: {key_id(pub)}")
    click.echo(f"public key (base64url): {public_key_b64(pub)}")


@keys.command("show")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--note-name", help="Also print the signed-note verifier key under this name.")
@friendly
def show(path: Path, note_name: str | None) -> None:
    """Print a private key's id and public key.

    Example: swiftchain keys show hub.key --note-name swiftchain.example/log
    """
    key = load_private_key(path)
    pub = key.public_key()
    click.echo(f"key id: {key_id(pub)}")
    click.echo(f"public key (base64url): {public_key_b64(pub)}")
    if note_name:
        click.echo(f"verifier key: {NoteSigner(note_name, key).verifier.encode()}")
