"""`swiftchain witness` verbs: run a C2SP tlog-witness that cosigns a log's checkpoints."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import click

from ledger.checkpoint import NoteVerifier
from ledger.errors import CheckpointError
from ledger.suite import Suite
from witness.errors import LogConfigError
from witness.home import init_home, open_home
from witness.store import origin_sha256

from .errors import friendly
from .suite_option import suite_option

_DIR = click.option(
    "--dir",
    "directory",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The witness directory (its key witness.key and its state witness.db).",
)


@click.group()
def witness() -> None:
    """Run a witness (c2sp.org/tlog-witness): it cosigns a log's checkpoints once each is
    proven consistent with the last one it cosigned, so the log cannot show two histories.

    Example: swiftchain witness serve --dir witness-a --port 7380
    """


@witness.command("init")
@_DIR
@click.option(
    "--name",
    required=True,
    help="The witness's name in its cosignatures, a schema-less URL such as "
    "witness.hospital-a.example/w1 (no spaces, no '+').",
)
@suite_option(
    "The kind of the witness's own key: ed25519 (cosignature type 0x04) or sm2 (the"
    " sm2-sm3 cosignature type); either witnesses logs of either suite"
)
@friendly
def init(directory: Path, name: str, suite: Suite) -> None:
    """Make DIR a witness called NAME: a new key (witness.key, mode 0600; Ed25519 unless
    --suite sm2) and an empty state; print its verifier key, which the log's operator
    configures.

    Example: swiftchain witness init --dir witness-a --name witness.hospital-a.example/w1
    """
    verifier = init_home(directory, name, int(time.time()), suite=suite)
    click.echo(f"initialised witness {name} in {directory}")
    click.echo(f"verifier key: {verifier.encode()}")


@witness.command("vkey")
@_DIR
@friendly
def vkey(directory: Path) -> None:
    """Print the witness's verifier key (name+key ID+base64 of its cosignature type and
    its key).

    Example: swiftchain witness vkey --dir witness-a
    """
    signer, store = open_home(directory)
    store.close()
    click.echo(signer.verifier.encode())


@witness.command("add-log")
@_DIR
@click.argument("log_vkey", metavar="VKEY")
@click.option(
    "--origin",
    help="The log's origin line, when it is not the key's name (a hub signs under its origin).",
)
@friendly
def add_log(directory: Path, log_vkey: str, origin: str | None) -> None:
    """Witness the log whose checkpoints VKEY signs (its signed-note verifier key,
    origin+key ID+base64, as `swiftchain keys new` prints it); the key's kind tells the
    log's crypto suite, whose hash its consistency proofs are checked in. A log already
    witnessed with another key is refused: a witness never replaces a log's key.

    Example: swiftchain witness add-log --dir witness-a "$(cat hub.vkey)"
    """
    try:
        key = NoteVerifier.parse(log_vkey)
    except CheckpointError as exc:
        raise LogConfigError(f"VKEY is not a log's verifier key: {exc}") from None
    origin = key.name if origin is None else origin
    if not origin or "\n" in origin or origin != origin.strip():
        raise LogConfigError("an origin is one non-empty line without surrounding spaces")
    _, store = open_home(directory)
    try:
        added = store.add_log(origin, key, int(time.time()))
    finally:
        store.close()
    if added:
        click.echo(f"witnessing {origin} ({key.suite.name} log, key {key.encode()})")
    else:
        click.echo(f"already witnessing {origin} with that key; nothing changed")


@witness.command("logs")
@_DIR
@click.option("--json", "as_json", is_flag=True, help="Print the logs as JSON.")
@friendly
def logs(directory: Path, as_json: bool) -> None:
    """List the logs this witness witnesses: origin, crypto suite, key, the latest cosigned
    size and when, and how many validly signed but inconsistent checkpoints it refused.

    Example: swiftchain witness logs --dir witness-a
    """
    _, store = open_home(directory)
    try:
        records = store.logs()
    finally:
        store.close()
    rows = [
        {
            "origin": r.origin,
            "origin_sha256": origin_sha256(r.origin),
            "suite": r.suite.name,
            "keys": list(r.vkeys),
            "size": r.size,
            "root": base64.b64encode(r.root).decode(),
            "cosigned_at": r.cosigned_at,
            "refused_inconsistent": r.refusals,
        }
        for r in records
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not records:
        click.echo("no logs yet; add one with: swiftchain witness add-log --dir DIR VKEY")
    for r in records:
        if r.cosigned_at is None:
            cosigned = "never cosigned"
        else:
            when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(r.cosigned_at))
            cosigned = f"cosigned size {r.size} at {when}"
        click.echo(f"{r.origin} ({r.suite.name}): {cosigned}; refused as inconsistent {r.refusals}")
        for k in r.vkeys:
            click.echo(f"  key {k}")


@witness.command("serve")
@_DIR
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=7380,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on (0: any free port; the line printed at start names it).",
)
@click.option(
    "--log-level",
    default="INFO",
    show_default=True,
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    help="Logging level.",
)
@friendly
def serve(directory: Path, host: str, port: int, log_level: str) -> None:
    """Serve POST /add-checkpoint, GET /<sha256(origin)>/checkpoint and /healthz until
    SIGTERM or Ctrl-C.

    Example: swiftchain witness serve --dir witness-a --host 0.0.0.0 --port 7380
    """
    from witness.serve import run_witness

    open_home(directory)[1].close()  # a clear error before the server starts
    run_witness(directory, host, port, log_level=log_level)
