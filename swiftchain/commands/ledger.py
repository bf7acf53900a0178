"""`swiftchain ledger` verbs: audit a ledger file offline."""

from __future__ import annotations

import base64
import json
import sys
import time
from pathlib import Path
from typing import NoReturn

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from ledger.checkpoint import NoteVerifier
from ledger.errors import KeyFileError, LedgerError
from ledger.verify import VerifyReport, verify_ledger


@click.group()
def ledger() -> None:
    """Inspect and verify a ledger database file."""


def _read_key(value: str | None) -> NoteVerifier | None:
    if value is None:
        return None
    path = Path(value)
    try:
        text = path.read_text(encoding="utf-8").strip() if path.is_file() else value
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyFileError(f"cannot read the verifier key in {value}: {exc}") from None
    return NoteVerifier.parse(text)


def _cannot_verify(exc: LedgerError) -> NoReturn:
    # Exit 2, not 1: "could not check" must not read as "checked and found tampered".
    click.echo(f"Error: {type(exc).__name__}: {exc}", err=True)
    sys.exit(2)


@ledger.command("verify")
@click.argument("db", type=click.Path(path_type=Path))
@click.option(
    "--key",
    "key",
    metavar="KEY",
    help="The hub's verifier key (text or a file holding it), to pin instead of trusting "
    "the copy inside the file.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def verify(db: Path, key: str | None, as_json: bool, quiet: bool) -> None:
    """Recompute every leaf, node, root, checkpoint signature, record signature and body
    commitment of DB from the file alone; exit 1 naming the first bad index if anything
    was changed, 2 if DB or the key cannot be read at all.

    Example: swiftchain ledger verify data/ledger.db --key hub.vkey
    """
    try:
        _verify(db, key, as_json, quiet)
    except LedgerError as exc:
        _cannot_verify(exc)


def _verify(db: Path, key: str | None, as_json: bool, quiet: bool) -> None:
    verifier = _read_key(key)
    started = time.perf_counter()
    console = Console(stderr=True)
    show = not (quiet or as_json) and console.is_terminal
    with Progress(
        TextColumn("verifying"),
        BarColumn(),
        TextColumn("{task.completed:,}/{task.total:,} entries"),
        TimeRemainingColumn(),
        console=console,
        disable=not show,
    ) as bar:
        task = bar.add_task("verify", total=None)
        report = verify_ledger(
            db,
            log_key=verifier,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    elapsed = time.perf_counter() - started
    if as_json:
        click.echo(json.dumps(_as_dict(report, elapsed), indent=2))
    else:
        _print(report, elapsed)
    if not report.ok:
        sys.exit(1)


def _as_dict(report: VerifyReport, elapsed: float) -> dict[str, object]:
    return {
        "ok": report.ok,
        "path": report.path,
        "origin": report.origin,
        "size": report.size,
        "root": base64.b64encode(report.root).decode() if report.root else None,
        "records": report.records,
        "signatures": report.signatures,
        "bodies": report.bodies,
        "erased": report.erased,
        "leaves_only": report.leaves_only,
        "openings": report.openings,
        "registry": report.registry,
        "client_revocations": report.client_revocations,
        "checkpoints": report.checkpoints,
        "checkpoint_key": report.key_source,
        "first_bad_index": report.first_bad_index,
        "problem_count": report.problem_count,
        "problems": [{"index": p.index, "what": p.what} for p in report.problems],
        "seconds": round(elapsed, 3),
    }


def _print(report: VerifyReport, elapsed: float) -> None:
    rate = report.size / elapsed if elapsed > 0 else 0.0
    root = base64.b64encode(report.root).decode() if report.root else "-"
    click.echo(f"ledger {report.path} (origin {report.origin or 'unknown'})")
    click.echo(f"  entries      {report.size:,}   root {root}")
    click.echo(
        f"  records      {report.records:,}   signatures checked {report.signatures:,}"
        f"   bodies checked {report.bodies:,}   erased {report.erased:,}"
    )
    if report.leaves_only:
        click.echo("  copy         of the public log (a mirror's): no bodies or openings held")
    click.echo(f"  openings     {report.openings:,} held here, each checked against its leaf")
    click.echo(
        f"  registry     {report.registry:,} entries"
        f"   client revocations {report.client_revocations:,}"
    )
    click.echo(f"  checkpoints  {report.checkpoints:,} (key: {report.key_source})")
    click.echo(f"  time         {elapsed:.2f}s ({rate:,.0f} entries/s)")
    if report.ok:
        click.echo("OK: every hash, signature and checkpoint verifies.")
        return
    click.echo(
        f"TAMPERED: {report.problem_count} problem(s); first bad index {report.first_bad_index}",
        err=True,
    )
    for p in sorted(report.problems, key=lambda p: p.index)[:20]:
        click.echo(f"  index {p.index}: {p.what}", err=True)
