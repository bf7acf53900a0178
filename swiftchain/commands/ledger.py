"""`swiftchain ledger` verbs."""

import click


@click.group()
def ledger() -> None:
    """Inspect and verify a ledger database."""
