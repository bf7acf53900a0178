"""`swiftchain edge` verbs: run the edge agent, and show its outbox."""

from __future__ import annotations

from pathlib import Path

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
