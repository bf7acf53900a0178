"""`swiftchain ledger` verbs: audit a ledger offline (a SQLite file or a PostgreSQL database),
copy one between the two; write and check tlog-proofs."""

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
from ledger.copy import CopyReport, copy_ledger
from ledger.errors import KeyFileError, LedgerError, ProofError, StoreError
from ledger.keystore import KeyStore
from ledger.location import sqlite_path
from ledger.policy import TrustPolicy
from ledger.quorum import QuorumReport, evaluate
from ledger.store import LedgerReader, location_of
from ledger.tlogproof import verify_proof
from ledger.verify import VerifyReport, verify_ledger
from pilots.errors import PilotDefinitionError
from pilots.trust import load_trust_policy

from ..errors import SwiftchainError


@click.group()
def ledger() -> None:
    """Verify a ledger (a file, or a PostgreSQL database), copy one; write and check
    offline proofs of its entries."""


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


#: A ledger's location on the command line: a SQLite file's path, sqlite:///PATH, or a
#: postgresql:// URL (ledger.store.location_of).
LEDGER_HELP = "a ledger file's path, or a postgresql://USER@HOST/DB[?schema=NAME] URL"


@ledger.command("verify")
@click.argument("db", metavar="LEDGER")
@click.option(
    "--key",
    "key",
    metavar="KEY",
    help="The hub's verifier key (text or a file holding it), to pin instead of trusting "
    "the copy inside the file.",
)
@click.option(
    "--policy",
    "policy_file",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="A trust policy (YAML, or c2sp.org/tlog-policy text): also require the newest "
    "checkpoint to carry the quorum of witness cosignatures it names.",
)
@click.option(
    "--key-store",
    "key_store",
    metavar="LOCATION",
    help="The ledger's key store (the hub's key_store: a file's path, or a postgresql:// "
    "URL), to open its sealed bodies and openings with; without it they are counted, not "
    "checked.",
)
@click.option(
    "--key-store-master-key",
    "master_key",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    metavar="FILE",
    help="The master key the key store's keys are wrapped under (key_store_master_key).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def verify(
    db: str,
    key: str | None,
    policy_file: Path | None,
    key_store: str | None,
    master_key: Path | None,
    as_json: bool,
    quiet: bool,
) -> None:
    """Recompute every leaf, node, root, checkpoint signature, record signature and body
    commitment of LEDGER (a file's path, or a postgresql:// URL) from its own bytes alone,
    in the log's crypto suite (ed25519-sha256 or sm2-sm3, named in the report), and, with
    --policy, check that the newest checkpoint meets the alliance's quorum of
    witnesses; exit 1 naming the first bad index or the quorum's shortfall, 2 if LEDGER,
    the key or the policy cannot be read at all. Bodies sealed under data keys are checked
    with --key-store; without it the log is verified all the same and they are counted.

    Example: swiftchain ledger verify data/ledger.db --key hub.vkey --key-store data/ledger.db.keys
    """
    try:
        policy = _read_policy(policy_file)
        keys = _open_key_store(key_store, master_key)
        try:
            _verify(location_of(db), key, policy, as_json, quiet, keys)
        finally:
            if keys is not None:
                keys.close()
    except LedgerError as exc:
        _cannot_verify(exc)


def _open_key_store(location: str | None, master_key: Path | None) -> KeyStore | None:
    if location is None:
        if master_key is not None:
            raise StoreError("--key-store-master-key without --key-store")
        return None
    path = sqlite_path(location)
    if path is not None and not path.is_file():
        # Opening would make an empty one, in which every key reads as destroyed.
        raise StoreError(f"no key store at {path}")
    return KeyStore.open(path or location, master_key=master_key)


def _read_policy(path: Path | None) -> TrustPolicy | None:
    if path is None:
        return None
    try:
        return load_trust_policy(path)
    except PilotDefinitionError as exc:
        click.echo(f"Error: the trust policy cannot be used: {exc}", err=True)
        sys.exit(2)


def _newest_quorum(
    db: Path | str, policy: TrustPolicy, verifier: NoteVerifier | None
) -> QuorumReport | str:
    """The newest stored checkpoint (with the cosignatures the hub stored with it) judged
    against ``policy``, or why there is none. A hub stopped cleanly ends its file with one its
    witnesses cosigned; a log its witnesses refused does not."""
    with LedgerReader(db) as reader:
        head = reader.latest_checkpoint()
        if verifier is None and not policy.logs and (stored := reader.meta("log_key")):
            verifier = NoteVerifier.parse(stored)
    if head is None:
        return "the file holds no checkpoint, so none meets the quorum"
    return evaluate(
        policy, head.note, now=int(time.time()), log_key=None if policy.logs else verifier
    )


def _verify(
    db: Path | str,
    key: str | None,
    policy: TrustPolicy | None,
    as_json: bool,
    quiet: bool,
    keys: KeyStore | None = None,
) -> None:
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
            keys=keys,
        )
    elapsed = time.perf_counter() - started
    quorum = None if policy is None else _newest_quorum(db, policy, verifier)
    quorum_ok = quorum is None or (isinstance(quorum, QuorumReport) and quorum.ok)
    if as_json:
        out = _as_dict(report, elapsed)
        if quorum is not None:
            out["quorum"] = (
                quorum.as_dict()
                if isinstance(quorum, QuorumReport)
                else {"ok": False, "reasons": [quorum]}
            )
            out["ok"] = report.ok and quorum_ok
        click.echo(json.dumps(out, indent=2))
    else:
        _print(report, elapsed)
        if quorum is not None:
            _print_quorum(quorum)
    if not report.ok or not quorum_ok:
        sys.exit(1)


def _print_quorum(quorum: QuorumReport | str) -> None:
    if isinstance(quorum, str):
        click.echo(f"NO QUORUM: {quorum}", err=True)
        return
    click.echo("newest " + quorum.summary()[0])
    for line in quorum.summary()[1:]:
        click.echo(line)
    if quorum.ok:
        click.echo("OK: the newest checkpoint meets the trust policy's quorum.")
        return
    click.echo("NO QUORUM: the newest checkpoint does not meet the trust policy:", err=True)
    for reason in quorum.reasons():
        click.echo(f"  {reason}", err=True)


def _as_dict(report: VerifyReport, elapsed: float) -> dict[str, object]:
    return {
        "ok": report.ok,
        "path": report.path,
        "origin": report.origin,
        "suite": report.suite,
        "size": report.size,
        "root": base64.b64encode(report.root).decode() if report.root else None,
        "records": report.records,
        "signatures": report.signatures,
        "bodies": report.bodies,
        "erased": report.erased,
        "leaves_only": report.leaves_only,
        "openings": report.openings,
        "unopened": report.unopened,
        "unopened_openings": report.unopened_openings,
        "key_store": report.key_store,
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
    click.echo(f"ledger {report.path} (origin {report.origin or 'unknown'}, suite {report.suite})")
    click.echo(f"  entries      {report.size:,}   root {root}")
    click.echo(
        f"  records      {report.records:,}   signatures checked {report.signatures:,}"
        f"   bodies checked {report.bodies:,}   erased {report.erased:,}"
    )
    if report.leaves_only:
        click.echo("  copy         of the public log (a mirror's): no bodies or openings held")
    click.echo(f"  openings     {report.openings:,} held here, each checked against its leaf")
    if report.key_store is not None:
        click.echo(f"  key store    {report.key_store}: sealed values opened with it")
    if report.unopened or report.unopened_openings:
        click.echo(
            f"  sealed       {report.unopened:,} bodies and {report.unopened_openings:,}"
            " openings could not be opened, so were not checked (give --key-store)"
        )
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


@ledger.command("copy")
@click.argument("source", metavar="SRC")
@click.argument("destination", metavar="DST")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def copy(source: str, destination: str, as_json: bool, quiet: bool) -> None:
    """Copy the whole ledger SRC into DST, every byte of it: entries, records, bodies,
    openings, checkpoints, meta. Each is a file's path or a postgresql:// URL, so a ledger
    moves from SQLite to PostgreSQL, back, or between two of a kind. DST must be empty (a
    new file, or a database without the ledger's tables); it is filled in one transaction,
    so a copy that fails leaves it empty, to be run again. SRC is read in one snapshot: a
    hub may keep writing to it. After the copy, the roots of both at SRC's newest
    checkpoint are compared. Exit 0 when they match, 1 when they do not, 2 when SRC cannot
    be read or DST cannot be written (or is not empty, or is SRC).

    Example: swiftchain ledger copy data/ledger.db postgresql://hub@db.internal/city
    """
    console = Console(stderr=True)
    show = not (quiet or as_json) and console.is_terminal
    started = time.perf_counter()
    try:
        src, dst = location_of(source), location_of(destination)
        with Progress(
            TextColumn("copying"),
            BarColumn(),
            TextColumn("{task.completed:,}/{task.total:,} rows"),
            TimeRemainingColumn(),
            console=console,
            disable=not show,
        ) as bar:
            task = bar.add_task("copy", total=None)
            report = copy_ledger(
                src,
                dst,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
    except LedgerError as exc:
        click.echo(f"Error: {type(exc).__name__}: {exc}", err=True)
        sys.exit(2)
    elapsed = time.perf_counter() - started
    if as_json:
        click.echo(json.dumps(_copy_dict(report, elapsed), indent=2))
    else:
        _print_copy(report, elapsed)
    if not report.ok:
        sys.exit(1)


def _copy_dict(report: CopyReport, elapsed: float) -> dict[str, object]:
    def b64(value: bytes | None) -> str | None:
        return base64.b64encode(value).decode() if value is not None else None

    return {
        "ok": report.ok,
        "source": report.source,
        "destination": report.destination,
        "entries": report.size,
        "rows": report.rows,
        "checked_size": report.checked_size,
        "source_root": b64(report.source_root),
        "destination_root": b64(report.destination_root),
        "checkpoint_root": b64(report.checkpoint_root),
        "seconds": round(elapsed, 3),
    }


def _print_copy(report: CopyReport, elapsed: float) -> None:
    click.echo(f"copied {report.source} -> {report.destination} in {elapsed:.2f}s")
    click.echo("  " + "   ".join(f"{table} {n:,}" for table, n in report.rows.items()))
    root = base64.b64encode(report.destination_root).decode()
    at = "the newest checkpoint" if report.checkpoint_root is not None else "the log's end"
    if report.ok:
        click.echo(f"OK: both roots at size {report.checked_size:,} ({at}) are {root}.")
        return
    click.echo(
        f"MISMATCH: at size {report.checked_size:,} ({at}) the source's root is"
        f" {base64.b64encode(report.source_root).decode()}, the copy's {root}"
        + (
            f", the checkpoint's {base64.b64encode(report.checkpoint_root).decode()}"
            if report.checkpoint_root is not None
            else ""
        ),
        err=True,
    )


@ledger.command("prove")
@click.argument("index", type=click.IntRange(min=0))
@click.option(
    "--ledger",
    "db",
    metavar="LEDGER",
    help="Read the entry and the newest checkpoint from this ledger (a file's path, or a"
    " postgresql:// URL).",
)
@click.option(
    "--hub",
    "hub_url",
    metavar="URL",
    help="Read them from this hub's (or a mirror's) public ledger API instead.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the proof to this file (conventionally NAME.tlog-proof) instead of stdout.",
)
def prove(index: int, db: str | None, hub_url: str | None, output: Path | None) -> None:
    """Write a c2sp.org/tlog-proof for the entry at INDEX (a record, a consent decision, an
    access entry...): its leaf, its inclusion proof and the latest checkpoint with every
    cosignature it carries, to be checked offline with `swiftchain ledger check-proof`.

    Example: swiftchain ledger prove 1234 --hub http://127.0.0.1:8080 -o entry-1234.tlog-proof
    """
    from ..tlogproofs import prove_from_hub, prove_from_ledger

    if (db is None) == (hub_url is None):
        raise click.UsageError("give exactly one of --ledger PATH or --hub URL")
    try:
        text = (
            prove_from_ledger(location_of(db), index)
            if db is not None
            else prove_from_hub(str(hub_url), index)
        )
    except (LedgerError, SwiftchainError) as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        click.echo(f"Error: cannot write {output}: {exc.strerror}", err=True)
        sys.exit(1)
    click.echo(f"wrote the proof of entry {index} to {output}", err=True)


@ledger.command("check-proof")
@click.argument("proof_file", metavar="FILE", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--policy",
    "policy_file",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="The trust policy (YAML, or c2sp.org/tlog-policy text): the log's key, the "
    "witnesses and the quorum.",
)
@click.option(
    "--leaf",
    "leaf_file",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="The exact leaf bytes you hold (a record's JCS header, say): require the proof to "
    "prove this leaf rather than the one it carries.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def check_proof(proof_file: Path, policy_file: Path, leaf_file: Path | None, as_json: bool) -> None:
    """Verify a tlog-proof offline: the entry's inclusion under the checkpoint's root, the
    log's signature and the quorum of witness cosignatures the policy asks for. Exit 0 if
    it holds, 1 with the reasons if not, 2 if the policy or a file cannot be read.

    Example: swiftchain ledger check-proof entry-1234.tlog-proof --policy alliance.yaml
    """
    policy = _read_policy(policy_file)
    assert policy is not None
    try:
        raw = proof_file.read_bytes()
        leaf = None if leaf_file is None else leaf_file.read_bytes()
    except OSError as exc:
        click.echo(f"Error: cannot read {exc.filename}: {exc.strerror}", err=True)
        sys.exit(2)
    try:
        report = verify_proof(raw, policy, leaf=leaf, now=int(time.time()))
    except ProofError as exc:
        if as_json:
            click.echo(json.dumps({"ok": False, "reasons": [f"not a tlog-proof: {exc}"]}, indent=2))
        click.echo(f"REFUSED: {proof_file} is not a tlog-proof: {exc}", err=True)
        sys.exit(1)
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
    else:
        for line in report.summary():
            click.echo(line)
    if report.ok:
        if not as_json:
            click.echo(
                f"OK: entry {report.proof.index} is in the log, under a checkpoint that meets "
                "the quorum."
            )
        return
    click.echo(f"REFUSED: {proof_file} does not hold:", err=True)
    for reason in report.reasons():
        click.echo(f"  {reason}", err=True)
    sys.exit(1)
