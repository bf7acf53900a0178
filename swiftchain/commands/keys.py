"""`swiftchain keys` verbs: make and show key pairs of either crypto suite (Ed25519, SM2);
make a master key for data keys."""

from __future__ import annotations

import re
from pathlib import Path

import click

from ledger.checkpoint import NoteSigner
from ledger.datakeys import write_master_key
from ledger.errors import KeyFileError
from ledger.keys import PrivateKey, key_id, load_private_key, public_key_b64, write_key_pair
from ledger.suite import Suite, suite_of

from .errors import friendly
from .suite_option import suite_option

#: The hub's default ``origin`` (gateway.settings.HubSettings): a hub signs its checkpoints
#: under its origin, so that is the name its verifier key must carry. Kept here as text so
#: that making a key on a small gateway does not import the hub.
HUB_DEFAULT_ORIGIN = "swiftchain.local/ledger"
#: A signed-note key name: no spaces, no "+" (C2SP signed-note, "Verifier keys").
_NOTE_NAME = re.compile(r"^[^\s+]{1,128}$")


def verifier_key_path(path: Path) -> Path:
    """Where ``keys new`` writes the verifier key: ``hub.key`` -> ``hub.vkey``."""
    if path.suffix == ".key":
        return path.with_suffix(".vkey")
    return path.with_name(path.name + ".vkey")


def _note_name(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not _NOTE_NAME.match(value):
        raise click.BadParameter("a signed-note key name has no spaces and no '+'")
    return value


def _describe(key: PrivateKey) -> None:
    pub = key.public_key()
    click.echo(f"suite: {suite_of(key).name} ({suite_of(key).key_kind} key)")
    click.echo(f"key id: {key_id(pub)}")
    click.echo(f"public key (base64url): {public_key_b64(pub)}")


@click.group()
def keys() -> None:
    """Make and inspect key pairs (Ed25519 or SM2) for sources and the hub."""


@keys.command("new")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--note-name",
    default=HUB_DEFAULT_ORIGIN,
    show_default=True,
    callback=_note_name,
    help="The name in the verifier key: the origin of the hub that signs with this key.",
)
@suite_option(
    "The kind of key: ed25519 (suite ed25519-sha256) or sm2 (suite sm2-sm3, GM/T 0003.2);"
    " a hub's key fixes its log's suite, which its sources' keys must share"
)
@click.option("--force", is_flag=True, help="Overwrite an existing key (the old one is lost).")
@friendly
def new(path: Path, note_name: str, suite: Suite, force: bool) -> None:
    """Write a new key pair of the given suite: PATH (private, mode 0600), PATH.pub, and
    the signed-note verifier key (hub.key -> hub.vkey) that `swiftchain ledger verify
    --key` pins when PATH is a hub's checkpoint key.

    Example: swiftchain keys new hub.key --suite sm2 --note-name ledger.city.example/demo-zone
    """
    vkey = verifier_key_path(path)
    if not force and vkey.exists():
        raise KeyFileError(f"{vkey} already exists; refusing to overwrite a key")
    key = write_key_pair(path, overwrite=force, suite=suite)
    verifier = NoteSigner(note_name, key).verifier.encode()
    try:
        vkey.write_text(verifier + "\n", encoding="utf-8")
    except OSError as exc:
        raise KeyFileError(f"cannot write verifier key {vkey}: {exc.strerror}") from None
    click.echo(f"wrote {path}, {path}.pub and {vkey}")
    _describe(key)
    click.echo(f"verifier key: {verifier}")


@keys.command("show")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--note-name",
    callback=_note_name,
    help="Also print the signed-note verifier key under this name.",
)
@friendly
def show(path: Path, note_name: str | None) -> None:
    """Print a private key's suite, id and public key.

    Example: swiftchain keys show hub.key --note-name swiftchain.example/log
    """
    key = load_private_key(path)
    _describe(key)
    if note_name:
        click.echo(f"verifier key: {NoteSigner(note_name, key).verifier.encode()}")


@keys.command("master")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@friendly
def master(path: Path) -> None:
    """Write a new master key to PATH (mode 0600), to store the hub's data keys wrapped
    under (the hub's key_store_master_key; required for a key store on PostgreSQL). Never
    overwrites one: a key store made with it opens with it alone.

    Example: swiftchain keys master /etc/swiftchain/keys.master
    """
    write_master_key(path)
    click.echo(f"wrote {path}")
