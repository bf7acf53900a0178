"""`swiftchain hub` verbs."""

import click


@click.group()
def hub() -> None:
    """Placeholder; see the hub issue."""
