"""Rich renderings of a replay and of the demo's story: tables a city would put on a screen."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from simulators.replay import OnEvent, ReplayReport

if TYPE_CHECKING:
    from .run import DemoResult


def replay_table(report: ReplayReport, title: str = "Replay") -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("pilot")
    for name in ("records sent", "accepted", "rejected", "consents", "withdrawn"):
        table.add_column(name, justify="right")
    for pilot, t in report.pilots.items():
        table.add_row(
            pilot,
            f"{t.sent:,}",
            f"{t.accepted:,}",
            f"{t.rejected:,}",
            f"{t.consents:,}",
            f"{t.withdrawals:,}",
        )
    all_ = report.pilots.values()
    table.add_row(
        "all",
        f"{report.records_sent:,}",
        f"{report.records_accepted:,}",
        f"{report.records_rejected:,}",
        f"{sum(t.consents for t in all_):,}",
        f"{sum(t.withdrawals for t in all_):,}",
        style="bold",
    )
    table.caption = (
        f"{report.events:,} events in {report.wall_s:.1f} s wall time — "
        f"{report.records_per_s:,.0f} records/s accepted"
    )
    return table


@contextmanager
def replay_progress(console: Console, total: int) -> Iterator[OnEvent]:
    """A progress bar over the scenario's events; yields the replay's per-event callback."""
    with Progress(
        TextColumn("[bold]replaying"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[kinds]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task("events", total=total, kinds="")
        seen: dict[str, int] = {}

        def on_event(done: int, kind: str) -> None:
            seen[kind] = seen.get(kind, 0) + 1
            if done % 25 == 0 or done == total or kind != "record":
                label = " ".join(f"{k.split('.')[-1]} {n:,}" for k, n in sorted(seen.items()))
                progress.update(task, completed=done, kinds=label)

        yield on_event


def story_table(result: DemoResult) -> Table:
    table = Table(title="The story, checked", title_justify="left", show_lines=True)
    table.add_column("", width=1)
    table.add_column("step", ratio=3)
    table.add_column("what happened", ratio=2)
    for step in result.steps:
        if step.ok:
            table.add_row("[green]✔[/]", step.title, step.observed)
        else:
            table.add_row(
                "[red]✘[/]", step.title, f"[red]{step.observed}[/] (expected {step.expected})"
            )
    return table


def render_result(console: Console, result: DemoResult) -> None:
    console.print()
    console.print(replay_table(result.replay, "Records through the network"))
    console.print()
    console.print(story_table(result))
    ledger = result.ledger
    verdict = "[bold green]VERIFIED[/]" if ledger.ok else "[bold red]NOT VERIFIED[/]"
    console.print(
        f"\nLedger {result.hub.db_path}: {ledger.size:,} entries, {verdict}. "
        f"Demo wall time {result.wall_s:.1f} s on {result.broker.description}."
    )
    quorum = result.quorum
    state = "[bold green]met[/]" if quorum.met else "[bold red]not met[/]"
    console.print(f"Witnesses (trust policy {result.alliance.policy_path}):")
    for w in result.alliance.witnesses:
        mark = "[green]✔ cosigned[/]" if w.name in quorum.cosigned else "[red]✘ no cosignature[/]"
        console.print(f"  {mark} {w.name}, run by {w.operator}, at {w.url}")
    console.print(
        f"Quorum {state}: {len(quorum.cosigned)} of {len(result.alliance.witnesses)} witnesses"
        f" cosigned size {quorum.size:,} (log size {quorum.log_size:,})."
    )
    passed = sum(s.ok for s in result.steps)
    colour = "green" if result.ok else "red"
    console.print(f"[bold {colour}]{passed}/{len(result.steps)} story steps as expected.[/]")
