"""`swiftchain replay`: feed a scenario file through real edge agents into a running hub."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import click
from rich.console import Console

from simulators.network import HubRefused, key_valid_from, record_sources, source_key_path
from simulators.replay import BrokerAccess, ReplayError, replay_scenario
from simulators.scenario import Header, ScenarioError, read_scenario

from .errors import user_errors


def parse_speed(value: str) -> float | None:
    """``max`` (None) or a positive factor: 60 plays a scenario hour in a minute."""
    if value == "max":
        return None
    try:
        speed = float(value)
    except ValueError:
        raise click.BadParameter("a number such as 60, or max", param_hint="--speed") from None
    if not speed > 0:
        raise click.BadParameter("more than 0, or max", param_hint="--speed")
    return speed


def log_to_file(path: Path) -> None:
    """The agents' logs go to a file: the terminal belongs to the progress bar."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    for name in ("edge", "gateway", "swiftchain", "amqtt", "aiohttp.access"):
        logging.getLogger(name).propagate = True


def _credentials(
    secret_file: Path | None, sources: list[tuple[str, str]]
) -> dict[tuple[str, str], tuple[str, str]]:
    if secret_file is None:
        return {}
    from gateway.registry.mosquitto import derive_password, source_username

    try:
        secret = bytes.fromhex(secret_file.read_text().strip())
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"cannot read the broker secret {secret_file}: {exc}") from None
    return {
        (p, s): (source_username(p, s), derive_password(secret, source_username(p, s)))
        for p, s in sources
    }


def register_offline(config: Path, header: Header, workdir: Path) -> int:
    """Register the scenario's organisations and record sources straight into a stopped
    hub's ledger file, keys where the replay will look for them; the number of sources."""
    from gateway.errors import RegistryError
    from gateway.registry.changes import Change
    from gateway.registry.offline import apply_to_file
    from gateway.settings import load_settings as load_hub_settings
    from ledger.keys import load_private_key, public_key_b64, write_key_pair

    settings = load_hub_settings(config)
    orgs = sorted({s.org for s in header.sources} | {c.org for c in header.clients})
    changes = [Change.make("orgs", org=org, name=org) for org in orgs]
    valid_from = key_valid_from(header)
    found = record_sources(header)
    for pilot, source, org, kinds in found:
        path = source_key_path(workdir, pilot, source)
        if path.exists():
            key = load_private_key(path)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            key = write_key_pair(path)
        changes.append(
            Change.make(
                "sources",
                pilot=pilot,
                source=source,
                org=org,
                types=kinds,
                public_key=public_key_b64(key.public_key()),
                valid_from=valid_from,
            )
        )
    for change in changes:
        try:
            apply_to_file(settings, change, "swiftchain-replay")
        except RegistryError as exc:
            if exc.code not in ("org_exists", "source_exists"):
                raise
    return len(found)


@click.command()
@click.argument("scenario", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--speed",
    default="max",
    show_default=True,
    help="Scenario seconds per wall second (60: an hour a minute), or max.",
)
@click.option("--hub", "hub_url", default="http://127.0.0.1:8080", show_default=True)
@click.option("--broker", "broker_url", default="mqtt://127.0.0.1:1883", show_default=True)
@click.option(
    "--mqtt-version",
    type=click.Choice(["5", "3.1.1"]),
    default="5",
    show_default=True,
    help="The agents' MQTT version (3.1.1 for brokers that speak nothing newer).",
)
@click.option(
    "--broker-secret-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Derive each source's broker password from this secret (as `broker-config` does).",
)
@click.option(
    "--admin-token",
    envvar="SWIFTCHAIN_ADMIN_TOKEN",
    default=None,
    help="The hub's admin token, to register the scenario's sources and clients "
    "(env SWIFTCHAIN_ADMIN_TOKEN).",
)
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("replay-work"),
    show_default=True,
    help="Keys, client keys and the agents' outboxes; reuse it to replay again.",
)
@click.option(
    "--register-into",
    "register_into",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Only register the scenario's organisations and sources into this stopped hub's "
    "ledger (its TOML config), keys in --workdir, and exit: then `broker-config generate` "
    "gives every source its broker account.",
)
@click.option("--quiet", is_flag=True, help="No progress bar; only the summary.")
def replay(
    scenario: Path,
    speed: str,
    hub_url: str,
    broker_url: str,
    mqtt_version: str,
    broker_secret_file: Path | None,
    admin_token: str | None,
    workdir: Path,
    register_into: Path | None,
    quiet: bool,
) -> None:
    """Replay a scenario through real edge agents (one per source, each with its own
    outbox), Consents through the hub's Consent API and the scripted queries as their
    clients; ends with records sent, accepted and rejected per pilot.

    Example: swiftchain replay scenario.ndjson --speed 60 --hub http://127.0.0.1:8080
    --broker mqtt://127.0.0.1:1883 --admin-token "$SWIFTCHAIN_ADMIN_TOKEN"
    """
    from swiftchain.demo.render import replay_progress, replay_table

    pace = parse_speed(speed)
    try:
        header, stream = read_scenario(scenario)
        events = list(stream)
    except ScenarioError as exc:
        raise click.ClickException(str(exc)) from None
    if register_into is not None:
        with user_errors():
            count = register_offline(register_into, header, workdir)
        click.echo(f"registered {count} sources of {scenario} into {register_into}")
        return
    sources = [(s.pilot, s.source) for s in header.sources]
    broker = BrokerAccess(
        broker_url,
        "5" if mqtt_version == "5" else "3.1.1",
        _credentials(broker_secret_file, sources),
    )
    log_to_file(workdir / "replay.log")
    console = Console(quiet=quiet)
    with user_errors(), replay_progress(console, len(events)) as on_event:
        try:
            _, report = asyncio.run(
                replay_scenario(
                    header,
                    events,
                    hub_url=hub_url,
                    admin_token=admin_token or os.environ.get("SWIFTCHAIN_ADMIN_TOKEN"),
                    broker=broker,
                    workdir=workdir,
                    speed=pace,
                    on_event=on_event,
                )
            )
        except (ReplayError, HubRefused) as exc:
            raise click.ClickException(str(exc)) from None
        except OSError as exc:
            raise click.ClickException(f"cannot reach the hub or the broker: {exc}") from None
    Console().print(replay_table(report, f"Replay of {scenario}"))
    for q in report.queries:
        mark = "✔" if q.as_expected else "✘"
        Console().print(
            f"{mark} {q.event.payload.story} → {q.decision} (expected {q.event.payload.expect})"
        )
    if report.records_rejected or not all(q.as_expected for q in report.queries):
        raise SystemExit(1)
