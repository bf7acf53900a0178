"""`swiftchain demo`: the whole network on this machine, its story told and checked."""

from __future__ import annotations

import asyncio
from contextlib import ExitStack
from pathlib import Path
from typing import Literal, cast

import click
from rich.console import Console

from .replay import log_to_file, parse_speed


@click.command()
@click.option("--once", is_flag=True, help="Exit after the summary (status 0 if every step held).")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8080,
    show_default=True,
    help="The hub's HTTP port on 127.0.0.1 (0: any free port).",
)
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".swiftchain-demo"),
    show_default=True,
    help="Ledger, keys, outboxes, witnesses and logs of the run (cleared at the start).",
)
@click.option(
    "--broker",
    type=click.Choice(["auto", "mosquitto", "embedded"]),
    default="auto",
    show_default=True,
    help="auto: Mosquitto when installed, else the embedded broker.",
)
@click.option("--speed", default="max", show_default=True, help="Replay speed: a factor or max.")
@click.option("--seed", type=int, default=7, show_default=True, help="Scenario seed.")
@click.option("--hours", type=float, default=24.0, show_default=True, help="Scenario length.")
@click.option(
    "--scale",
    type=click.Choice(["small", "default", "large"]),
    default="default",
    show_default=True,
    help="How many stations, roads, car parks and patients.",
)
@click.option(
    "--workers",
    type=click.IntRange(0, 64),
    default=None,
    help="The hub's front-end processes beside its sequencer (default: one per core;"
    " 0: the hub inside the demo's own process).",
)
@click.option(
    "--suite",
    type=click.Choice(["ed25519-sha256", "sm2-sm3"]),
    default="ed25519-sha256",
    show_default=True,
    help="The log's crypto suite: Ed25519 and SHA-256, or China's SM2 and SM3 (GM/T).",
)
def demo(
    once: bool,
    port: int,
    workdir: Path,
    broker: str,
    speed: str,
    seed: int,
    hours: float,
    scale: str,
    workers: int | None,
    suite: str,
) -> None:
    """Run the whole network on this machine: a broker, two witnesses run by two member
    organisations, the hub, one edge agent per source; replay a day of the city and its
    hospitals; check the story (queries allowed and denied, a consent withdrawn with erasure,
    the audit, the witnesses' quorum met, a tampered copy caught, the operator's rewrite
    refused by the witnesses, the ledger verified); then serve the dashboard until Ctrl-C.

    Example: swiftchain demo --once --broker embedded
    """
    from ledger.suite import suite_named
    from swiftchain.demo.broker import BrokerUnavailable, free_port
    from swiftchain.demo.children import ChildUnavailable
    from swiftchain.demo.render import render_result, replay_progress
    from swiftchain.demo.run import DemoHooks, DemoOptions, DemoResult, run_demo

    from .errors import user_errors

    options = DemoOptions(
        workdir=workdir.resolve(),
        port=port or free_port(),
        broker=cast(Literal["auto", "mosquitto", "embedded"], broker),
        speed=parse_speed(speed),
        once=once,
        seed=seed,
        hours=hours,
        scale=scale,
        workers=workers,
        suite=suite_named(suite),
    )
    log_to_file(options.workdir / "demo.log")
    console = Console()
    stack = ExitStack()

    def on_replay(total: int) -> object:
        return stack.enter_context(replay_progress(console, total))

    def on_result(result: DemoResult) -> None:
        stack.close()
        render_result(console, result)
        console.print(
            f"\n[bold]Dashboard:[/] {result.hub.dashboard_url}   (Ctrl-C to stop)\n"
            f"Logs: {options.workdir / 'demo.log'}"
        )

    hooks = DemoHooks(
        on_stage=lambda text: console.print(f"[cyan]•[/] {text}"),
        on_replay=on_replay,  # type: ignore[arg-type]
        on_result=on_result,
    )
    console.rule("[bold]Swiftchain demo")
    try:
        with user_errors(), stack:
            result = asyncio.run(run_demo(options, hooks))
    except KeyboardInterrupt:
        console.print("\nstopped; the ledger stays in " + str(options.workdir / "hub"))
        return
    except (BrokerUnavailable, ChildUnavailable) as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(
            f"{exc}; is port {options.port} free? choose another with --port"
        ) from None
    render_result(console, result)
    if not result.ok:
        raise SystemExit(1)
