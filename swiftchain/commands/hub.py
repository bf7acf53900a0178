"""`swiftchain hub`: run the ledger hub."""

from __future__ import annotations

from pathlib import Path

import click

from gateway.serve import run_hub
from gateway.settings import load_settings
from runtime.process import install_uvloop

from .errors import friendly


@click.command()
@click.option(
    "--config",
    "config",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Hub settings (TOML); SWIFTCHAIN_HUB_* environment variables override it.",
)
@click.option("--log-level", default="INFO", show_default=True, help="DEBUG, INFO, WARNING...")
@click.option(
    "--workers",
    type=click.IntRange(0, 64),
    default=None,
    help="Front-end processes (MQTT ingest and HTTP) beside the sequencer process;"
    " default: the setting `workers`, else one per core; 0: the whole hub in one process.",
)
@friendly
def hub(config: Path | None, log_level: str, workers: int | None) -> None:
    """Run the ledger hub: MQTT ingest, sequencer, receipts and the HTTP API.

    Stops cleanly on Ctrl-C or SIGTERM, committing and answering what is in flight.

    Example: swiftchain hub --config hub.toml --workers 2
    """
    settings = load_settings(config)
    if workers is not None:
        settings = settings.model_copy(update={"workers": workers})
    if settings.use_uvloop:
        install_uvloop()
    status = run_hub(settings, log_level=log_level)
    if status:
        raise SystemExit(status)
