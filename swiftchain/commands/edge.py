"""`swiftchain edge` verbs."""

import click


@click.group()
def edge() -> None:
    """Placeholder; see the edge issue."""
