"""`swiftchain simulate`: write a deterministic scenario file of city and patient events."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from simulators.build import DEFAULT_HOURS, DEFAULT_SEED, DEFAULT_START, build_scenario
from simulators.params import PILOTS, SCALES
from simulators.scenario import Scenario, write_scenario


def _pilots(value: str | None) -> list[str]:
    if not value:
        return list(PILOTS)
    chosen = [p.strip() for p in value.split(",") if p.strip()]
    unknown = [p for p in chosen if p not in PILOTS]
    if unknown:
        raise click.BadParameter(
            f"unknown pilot(s) {', '.join(unknown)}; choose from {', '.join(PILOTS)}",
            param_hint="--pilots",
        )
    return chosen


def _summary(scenario: Scenario, out: Path, seconds: float) -> Table:
    per: Counter[tuple[str, str]] = Counter((e.pilot, e.kind) for e in scenario.events)
    kinds = sorted({k for _, k in per})
    header = scenario.header
    table = Table(
        title=f"{out} — seed {header.seed}, {header.scale}, {header.start} + "
        f"{header.duration_s / 3600:g} h ({seconds:.1f} s)",
        title_justify="left",
    )
    table.add_column("pilot")
    for kind in kinds:
        table.add_column(kind, justify="right")
    table.add_column("total", justify="right", style="bold")
    for pilot in header.pilots:
        row = [per[(pilot, k)] for k in kinds]
        table.add_row(pilot, *(f"{n:,}" for n in row), f"{sum(row):,}")
    totals = [sum(per[(p, k)] for p in header.pilots) for k in kinds]
    table.add_row("all", *(f"{n:,}" for n in totals), f"{header.counts.total:,}", style="bold")
    return table


@click.command()
@click.option("--seed", type=int, default=DEFAULT_SEED, show_default=True, help="Random seed.")
@click.option(
    "--hours", type=float, default=DEFAULT_HOURS, show_default=True, help="Length of the scenario."
)
@click.option(
    "--start",
    default=DEFAULT_START,
    show_default=True,
    help="Scenario start, RFC 3339 UTC; every timestamp derives from it.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=Path("scenario.ndjson"),
    show_default=True,
    help="Scenario file to write (NDJSON).",
)
@click.option(
    "--pilots",
    metavar="LIST",
    help=f"Comma-separated pilots to simulate (default: all of {','.join(PILOTS)}).",
)
@click.option(
    "--scale",
    type=click.Choice(list(SCALES)),
    default="default",
    show_default=True,
    help="How many stations, roads, car parks and patients.",
)
@click.option("--quiet", is_flag=True, help="Print nothing but errors.")
def simulate(
    seed: int, hours: float, start: str, out: Path, pilots: str | None, scale: str, quiet: bool
) -> None:
    """Write a deterministic scenario of city sensor readings, home health readings,
    referrals, consents and the demo's scripted queries: the same arguments always give a
    byte-identical file, ready for `swiftchain replay`.

    Example: swiftchain simulate --seed 7 --hours 24 --start 2026-05-04T00:00:00Z
    --out scenario.ndjson --pilots air-quality,chronic-care
    """
    chosen = _pilots(pilots)
    began = time.perf_counter()
    try:
        scenario = build_scenario(seed=seed, start=start, hours=hours, pilots=chosen, scale=scale)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    try:
        write_scenario(out, scenario)
    except OSError as exc:
        raise click.ClickException(f"cannot write {out}: {exc.strerror}") from None
    if not quiet:
        Console().print(_summary(scenario, out, time.perf_counter() - began))
