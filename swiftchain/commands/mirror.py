"""`swiftchain mirror` verbs: make, run and inspect a mirror of a hub's log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from mirror.app import MAX_POLL_S, MIN_POLL_S, MirrorSettings
from mirror.config import DEFAULT_NAME, LEDGER_FILE, VKEY_FILE, init_mirror, load_config
from mirror.serve import run_mirror
from mirror.store import read_state

from .errors import friendly

_DIR = click.option(
    "--dir",
    "directory",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The mirror's directory (its configuration, key and copy of the log).",
)


@click.group()
def mirror() -> None:
    """Keep a verified copy of a hub's log, serve it, and cosign what it holds."""


@mirror.command("init")
@_DIR
@click.option("--hub", "hub", required=True, metavar="URL", help="The hub's base URL.")
@click.option(
    "--log-key",
    "log_key",
    required=True,
    metavar="VKEY",
    help="The hub's signed-note verifier key (the text, or a file such as hub.vkey), pinned: "
    "never taken from the hub.",
)
@click.option(
    "--name",
    "name",
    default=DEFAULT_NAME,
    show_default=True,
    help="The mirror's cosigner name (a schema-less URL).",
)
@friendly
def init(directory: Path, hub: str, log_key: str, name: str) -> None:
    """Make a mirror in DIR: its configuration, its cosigner key (mirror.key, 0600) and
    verifier key (mirror.vkey); refuses a DIR that already holds a mirror.

    Example: swiftchain mirror init --dir mirror --hub http://hub:8080 --log-key hub.vkey
    """
    init_mirror(directory, hub, log_key, name)
    vkey = (directory / VKEY_FILE).read_text(encoding="utf-8").strip()
    click.echo(f"mirror of {hub} in {directory}")
    click.echo(f"cosigner key (for the alliance's policy): {vkey}")


@mirror.command("run")
@_DIR
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to serve on.")
@click.option("--port", default=8090, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--poll-s",
    "poll_s",
    default=2.0,
    show_default=True,
    type=click.FloatRange(MIN_POLL_S, MAX_POLL_S),
    help="Seconds between polls of the hub's checkpoint once caught up.",
)
@click.option(
    "--max-backoff-s",
    "max_backoff_s",
    default=60.0,
    show_default=True,
    type=click.FloatRange(MIN_POLL_S, MAX_POLL_S),
    help="Longest wait after failures in a row (the wait doubles from --poll-s).",
)
@click.option("--log-level", default="INFO", show_default=True, help="DEBUG, INFO, WARNING...")
@friendly
def run(
    directory: Path, host: str, port: int, poll_s: float, max_backoff_s: float, log_level: str
) -> None:
    """Follow the hub and serve the copy: the public ledger API, /readyz, /metrics.

    Stops on Ctrl-C or SIGTERM; after a kill -9 it resumes where its last page ended.

    Example: swiftchain mirror run --dir mirror --port 8090
    """
    load_config(directory)
    settings = MirrorSettings(directory, poll_s=poll_s, max_backoff_s=max(poll_s, max_backoff_s))
    run_mirror(settings, host, port, log_level=log_level)


@mirror.command("status")
@_DIR
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@friendly
def status(directory: Path, as_json: bool) -> None:
    """What the mirror in DIR holds, and any fork it saw; exit 1 on a fork.

    Example: swiftchain mirror status --dir mirror
    """
    config = load_config(directory)
    path = directory / LEDGER_FILE
    held: dict[str, Any] = (
        read_state(path) if path.exists() else {"stored": 0, "verified": 0, "fork": None}
    )
    state: dict[str, Any] = {"hub": config.hub, "origin": config.verifier().name, **held}
    if as_json:
        click.echo(json.dumps(state, indent=2))
    else:
        click.echo(f"mirror of {config.hub} (origin {state['origin']})")
        click.echo(f"  entries held   {state['stored']:,}")
        click.echo(f"  checkpoint     {state['verified']:,} (verified and cosigned)")
        if state.get("pending") is not None:
            click.echo(f"  catching up to {state['pending']:,}")
    fork = state["fork"]
    if fork is not None:
        if not as_json:
            click.echo(f"FORK: {fork['reason']} (evidence in {directory}/fork-evidence.json)")
        raise SystemExit(1)
