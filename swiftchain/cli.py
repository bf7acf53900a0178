"""The ``swiftchain`` console script: parses arguments and wires one function per verb.

Each verb lives in ``swiftchain/commands/<verb>.py``; errors from our packages become one
clear message and exit status 1 here, never a traceback.
"""

from __future__ import annotations

import sys

import click

from .commands import broker, clients, edge, hub, keys, ledger, pilot, registry, simulate


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="swiftchain")
def cli() -> None:
    """Swiftchain: signed city and health records on a tamper-evident, consent-gated ledger.

    Example: swiftchain demo --once
    """


cli.add_command(keys.keys)
cli.add_command(ledger.ledger)
cli.add_command(hub.hub)
cli.add_command(edge.edge)
cli.add_command(registry.registry)
cli.add_command(pilot.pilot)
cli.add_command(simulate.simulate)
cli.add_command(broker.broker_config)
cli.add_command(clients.clients)


def main() -> None:
    try:
        cli(standalone_mode=True)
    except KeyboardInterrupt:
        sys.exit(130)
