"""`swiftchain edge` verbs: run the edge agent, show its outbox, and seal a reading as a
personal device does."""

from __future__ import annotations

import json
from pathlib import Path
from typing import BinaryIO

import click

from edge.agent import limit_malloc_arenas, run_agent
from edge.logs import configure_logging
from edge.settings import load_settings
from edge.status import read_status, render_status
from runtime.process import run_until_signalled

from .errors import friendly

DEFAULT_CONFIG = Path("edge.toml")

# No default of its own at either level: a default on the verb would win over a --config
# given before it (`swiftchain edge --config x.toml run`); `config_path` decides.
CONFIG = click.option(
    "--config",
    "config",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The agent's TOML settings, before or after the verb (default: edge.toml;"
    " SWIFTCHAIN_EDGE_* variables override them).",
)


def config_path(ctx: click.Context, config: Path | None) -> Path:
    """The verb's --config, else the group's, else edge.toml; two different ones are an
    error rather than a guess."""
    given = ctx.parent.params.get("config") if ctx.parent is not None else None
    if config is not None and given is not None and config != given:
        raise click.UsageError(f"--config is given twice: {given} and {config}")
    return config or given or DEFAULT_CONFIG


@click.group(invoke_without_command=True)
@CONFIG
@click.pass_context
def edge(ctx: click.Context, config: Path | None) -> None:
    """Run the edge agent: take records from its sources, sign them, keep them in a durable
    outbox and publish them to the hub until each has a checked receipt.

    Example: swiftchain edge --config edge.toml
    """
    if ctx.invoked_subcommand is None:
        ctx.invoke(run, config=config)


@edge.command("run")
@CONFIG
@click.pass_context
@friendly
def run(ctx: click.Context, config: Path | None) -> None:
    """Run the agent until Ctrl-C or SIGTERM (the same as plain `swiftchain edge`).

    Example: swiftchain edge run --config edge.toml
    """
    limit_malloc_arenas()
    settings = load_settings(config_path(ctx, config))
    configure_logging(settings.log.level, settings.log.format)
    run_until_signalled(run_agent(settings), use_uvloop=settings.use_uvloop)


@edge.command("status")
@CONFIG
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@click.pass_context
@friendly
def status(ctx: click.Context, config: Path | None, as_json: bool) -> None:
    """Show the outbox: pending records and the oldest one's age, dead letters with their
    reasons, the last receipt and the last verified checkpoint.

    Example: swiftchain edge status --config edge.toml
    """
    settings = load_settings(config_path(ctx, config))
    current = read_status(settings.outbox_path)
    click.echo(current.to_json() if as_json else render_status(current))


@edge.command("seal")
@click.argument("payload", type=click.File("rb"), default="-")
@click.option(
    "--key",
    "key_file",
    required=True,
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="The device's private key, Ed25519 or SM2 as its relay's (PEM, `swiftchain keys new`).",
)
@click.option("--pilot", required=True, help="The pilot the reading is of.")
@click.option("--source", required=True, help="The device's own source id (its relay knows it).")
@click.option(
    "--seq",
    type=click.IntRange(1, 2**53 - 1),
    default=None,
    help="The device's record counter (default: Unix time in milliseconds).",
)
@click.option("--type", "type_id", default=None, help="The type (default: fhir.<resourceType>).")
@click.option("--subject", default=None, help="The patient's pseudonym, as enrolled.")
@click.option("--consent", default=None, help="The id of the Consent covering the reading.")
@click.option("--observed-at", default=None, help="RFC 3339 UTC (default: the payload's time).")
@click.option(
    "--post",
    "relay_url",
    default=None,
    help="POST the envelope to this relay agent (http://host:port) instead of printing it.",
)
@friendly
def seal_command(
    payload: BinaryIO,
    key_file: Path,
    pilot: str,
    source: str,
    seq: int | None,
    type_id: str | None,
    subject: str | None,
    consent: str | None,
    observed_at: str | None,
    relay_url: str | None,
) -> None:
    """Seal one reading as a personal device (a patient's home gateway) does: a v2
    envelope signed with the device's key, printed, or POSTed to its hospital's relay agent.

    Example: swiftchain edge seal reading.json --key hd-1.key --pilot chronic-care
    --source hd-1 --subject 3f2a... --consent cns-1 --post http://127.0.0.1:8090
    """
    from edge.device import clock_seq, seal_reading, send_to_relay
    from ledger.envelope import parse_json
    from ledger.keys import load_private_key

    value = parse_json(payload.read())
    record = seal_reading(
        value,
        pilot=pilot,
        source=source,
        seq=seq if seq is not None else clock_seq(),
        signing_key=load_private_key(key_file),
        type_id=type_id,
        subject=subject,
        consent=consent,
        observed_at=observed_at,
    )
    if relay_url is None:
        click.echo(record.to_wire().decode())
        return
    answer = send_to_relay(relay_url, record.to_wire())
    click.echo(json.dumps({"status": answer.status, "id": record.header.id, "answer": answer.body}))
    if not answer.stored:
        raise click.ClickException(f"the relay refused the reading ({answer.status})")
