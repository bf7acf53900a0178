"""The ``swiftchain`` console script: parses arguments and wires one function per verb.

Each verb lives in ``swiftchain/commands/<verb>.py`` and is imported only when it runs (or
when help lists it): `swiftchain edge` on a small gateway never loads the hub or the
dashboard. Errors from our packages become one clear message and exit status 1 in the
verbs, never a traceback.
"""

from __future__ import annotations

import importlib
import sys

import click

#: verb -> (module under swiftchain.commands, attribute), in the order help lists them.
VERBS: dict[str, tuple[str, str]] = {
    "demo": ("demo", "demo"),
    "hub": ("hub", "hub"),
    "edge": ("edge", "edge"),
    "simulate": ("simulate", "simulate"),
    "replay": ("replay", "replay"),
    "ledger": ("ledger", "ledger"),
    "mirror": ("mirror", "mirror"),
    "keys": ("keys", "keys"),
    "registry": ("registry", "registry"),
    "clients": ("clients", "clients"),
    "pilot": ("pilot", "pilot"),
    "witness": ("witness", "witness"),
    "broker-config": ("broker", "broker_config"),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*VERBS, *self.commands])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        found = VERBS.get(cmd_name)
        if found is None:
            return None
        module = importlib.import_module(f"swiftchain.commands.{found[0]}")
        command = getattr(module, found[1])
        assert isinstance(command, click.Command)
        self.commands[cmd_name] = command
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="swiftchain")
def cli() -> None:
    """Swiftchain: signed city and health records on a tamper-evident, consent-gated ledger.

    Example: swiftchain demo --once
    """


def main() -> None:
    try:
        cli(standalone_mode=True)
    except KeyboardInterrupt:
        sys.exit(130)
