"""The offline verifier: recompute a whole ledger file from its own bytes.

Every leaf hash, every stored node, every checkpoint root and signature, every record
signature (against the keys that ``registry`` entries put on the log before the record) and
every remaining body's commitment is recomputed; the report names the first index at which
anything differs from what the bytes imply. Erased bodies are expected and not a fault.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from hashlib import sha256
from pathlib import Path
from typing import Any

from .checkpoint import NoteVerifier, parse_checkpoint, verify_checkpoint
from .entries import ENTRY_KINDS
from .errors import CheckpointError, KeyFileError, LedgerError, StoreError
from .hashing import HASH_SIZE, leaf_hash
from .keys import FastVerifier, b64url_decode, public_key_from_b64
from .store import Entry, LedgerReader
from .tree import Frontier

#: Problems listed in full; past this only their count grows.
MAX_LISTED_PROBLEMS = 50
#: Record signatures verified per thread-pool task (Ed25519 releases the GIL).
SIGNATURE_CHUNK = 2048


@dataclass(frozen=True)
class Problem:
    index: int
    what: str


@dataclass
class VerifyReport:
    path: str
    origin: str | None = None
    size: int = 0
    root: bytes | None = None
    records: int = 0
    signatures: int = 0
    bodies: int = 0
    erased: int = 0
    registry: int = 0
    checkpoints: int = 0
    problems: list[Problem] = field(default_factory=list)
    problem_count: int = 0
    key_source: str = "none"
    last_bad: int = -1
    erasures: dict[int, int] = field(default_factory=dict, repr=False)
    """Erased record index -> index of its erasure entry."""

    @property
    def ok(self) -> bool:
        return self.problem_count == 0

    @property
    def first_bad_index(self) -> int | None:
        return min((p.index for p in self.problems), default=None)

    def add(self, index: int, what: str) -> None:
        self.problem_count += 1
        self.last_bad = max(self.last_bad, index)
        if len(self.problems) < MAX_LISTED_PROBLEMS:
            self.problems.append(Problem(index, what))


@dataclass
class _Key:
    pilot: str | None
    source: str | None
    verifier: FastVerifier


@dataclass
class _PendingSig:
    index: int
    message: bytes
    sig: bytes
    key: FastVerifier


def _check_sigs(batch: list[_PendingSig]) -> list[int]:
    return [p.index for p in batch if not p.key.is_valid(p.sig, p.message)]


def _merge(rows: Iterator[tuple[Any, ...]]) -> Callable[[int], tuple[Any, ...] | None]:
    """Walk a cursor ordered by idx alongside the entries: ``take(i)``, called with rising
    ``i``, returns the row for index i or None; rows for other indexes are passed over (the
    orphan checks at the end report those)."""
    pending: list[tuple[Any, ...]] = []

    def take(index: int) -> tuple[Any, ...] | None:
        while True:
            if not pending:
                nxt = next(rows, None)
                if nxt is None:
                    return None
                pending.append(nxt)
            row = pending[0]
            if row[0] < index:
                pending.pop()
                continue
            if row[0] == index:
                pending.pop()
                return row
            return None

    return take


def verify_ledger(
    path: Path | str,
    *,
    log_key: NoteVerifier | None = None,
    progress: Callable[[int, int], None] | None = None,
    workers: int = 2,
) -> VerifyReport:
    """Verify the ledger file at ``path``; raise StoreError only if it cannot be read."""
    report = VerifyReport(str(path))
    with LedgerReader(path) as reader:
        report.origin = reader.meta("origin")
        if log_key is None and (stored := reader.meta("log_key")):
            try:
                log_key = NoteVerifier.parse(stored)
                report.key_source = "the file itself (pass --key to pin the hub's key)"
            except CheckpointError as exc:
                report.add(0, f"stored log key is unreadable: {exc}")
        elif log_key is not None:
            report.key_source = "given"
        total = reader.size()
        checkpoints = {c.size: c for c in reader.checkpoints()}
        bodies = _merge(
            iter(reader.conn.execute("SELECT idx, payload, salt FROM bodies ORDER BY idx"))
        )
        records = _merge(
            iter(
                reader.conn.execute(
                    "SELECT idx, id, pilot, source, seq, type, subject, consent, observed_at, key"
                    " FROM records ORDER BY idx"
                )
            )
        )
        try:
            _walk(reader, report, checkpoints, bodies, records, log_key, progress, total, workers)
        except StoreError:
            raise
        except Exception as exc:  # a corrupt file must give a report, not a traceback
            if isinstance(exc, LedgerError | ValueError | KeyError | TypeError):
                report.add(report.size, f"unreadable data after index {report.size}: {exc}")
            else:
                raise
        _orphans(reader, report)
    return report


def _walk(
    reader: LedgerReader,
    report: VerifyReport,
    checkpoints: dict[int, Any],
    bodies: Callable[[int], tuple[Any, ...] | None],
    records: Callable[[int], tuple[Any, ...] | None],
    log_key: NoteVerifier | None,
    progress: Callable[[int, int], None] | None,
    total: int,
    workers: int,
) -> None:
    frontier = Frontier()
    keys: dict[str, _Key] = {}
    pending: list[_PendingSig] = []
    futures = []
    pool = ThreadPoolExecutor(max_workers=max(1, workers))
    try:
        rows = reader.conn.execute(
            # CASTs: a tampered column of the wrong type must read as bytes, not crash.
            "SELECT idx, kind, CAST(leaf AS BLOB), CAST(leaf_hash AS BLOB), sig,"
            " CAST(nodes AS BLOB) FROM entries WHERE idx >= 0 ORDER BY idx"
        )
        for idx, kind, leaf, stored_leaf_hash, sig, stored_nodes in rows:
            entry = Entry(idx, kind, leaf, stored_leaf_hash, sig)
            index = frontier.size
            if entry.index != index:
                report.add(index, f"entry {index} is missing (next stored index is {entry.index})")
                break
            _check_entry(entry, report, keys, pending, bodies, records)
            lh = leaf_hash(entry.leaf)
            closed = frontier.append(lh)
            if b"".join(closed) != stored_nodes:
                for level, h in enumerate(closed, start=1):
                    if stored_nodes[(level - 1) * HASH_SIZE : level * HASH_SIZE] != h:
                        first = index - (1 << level) + 1
                        # A node over an entry already found bad is a consequence, not news.
                        if report.last_bad < first:
                            report.add(first, f"stored node over entries {first}..{index} differs")
                        break
                else:
                    report.add(index, "stored node hashes have the wrong length")
            if (cp := checkpoints.get(frontier.size)) is not None:
                _check_checkpoint(cp, frontier.root(), report, log_key)
            if len(pending) >= SIGNATURE_CHUNK:
                futures.append(pool.submit(_check_sigs, pending))
                pending = []
            if progress and frontier.size % 10_000 == 0:
                progress(frontier.size, total)
        if pending:
            futures.append(pool.submit(_check_sigs, pending))
        for fut in futures:
            for bad in fut.result():
                report.add(bad, f"record signature at index {bad} does not verify")
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    report.size = frontier.size
    report.root = frontier.root()
    report.checkpoints = sum(1 for s in checkpoints if s <= frontier.size)
    for size in sorted(checkpoints):
        if size > frontier.size:
            report.add(
                frontier.size, f"checkpoint at size {size} but the log ends at {frontier.size}"
            )
            break
    if progress:
        progress(frontier.size, total)


def _check_entry(
    entry: Entry,
    report: VerifyReport,
    keys: dict[str, _Key],
    pending: list[_PendingSig],
    bodies: Callable[[int], tuple[Any, ...] | None],
    records: Callable[[int], tuple[Any, ...] | None],
) -> None:
    index = entry.index
    if leaf_hash(entry.leaf) != entry.leaf_hash:
        report.add(index, "leaf bytes do not match the stored leaf hash")
    try:
        leaf = json.loads(entry.leaf)
    except (ValueError, UnicodeDecodeError):
        report.add(index, "leaf is not JSON")
        return
    if not isinstance(leaf, dict):
        report.add(index, "leaf is not a JSON object")
        return
    kind = leaf.get("kind", "record")
    if kind != entry.kind or kind not in ENTRY_KINDS:
        report.add(index, f"entry kind {entry.kind!r} does not match its leaf ({kind!r})")
        return
    if kind == "registry":
        report.registry += 1
        _apply_registry(leaf, keys, report, index)
    elif kind == "record":
        report.records += 1
        _check_record(entry, leaf, report, keys, pending, bodies, records)
    elif kind == "erasure":
        report.erasures[int(leaf.get("index", -1))] = index


def _apply_registry(
    leaf: dict[str, Any], keys: dict[str, _Key], report: VerifyReport, i: int
) -> None:
    action = leaf.get("action")
    if action == "key.add":
        try:
            public_key = public_key_from_b64(str(leaf.get("public_key")))
        except KeyFileError as exc:
            report.add(i, f"registry key is unreadable: {exc}")
            return
        keys[str(leaf.get("key_id"))] = _Key(
            leaf.get("pilot"), leaf.get("source"), FastVerifier(public_key)
        )


def _check_record(
    entry: Entry,
    header: dict[str, Any],
    report: VerifyReport,
    keys: dict[str, _Key],
    pending: list[_PendingSig],
    bodies: Callable[[int], tuple[Any, ...] | None],
    records: Callable[[int], tuple[Any, ...] | None],
) -> None:
    index = entry.index
    key = keys.get(str(header.get("key")))
    if key is None:
        report.add(
            index, f"record is signed by key {header.get('key')!r}, not registered before it"
        )
    elif (key.pilot, key.source) != (header.get("pilot"), header.get("source")):
        report.add(index, "record's key belongs to another source")
    else:
        try:
            sig = b64url_decode(entry.sig or "")
        except ValueError:
            sig = b""
        if len(sig) != 64:
            report.add(index, "record signature is missing or malformed")
        else:
            report.signatures += 1
            # The leaf is JCS(header), exactly the bytes the source signed.
            pending.append(_PendingSig(index, entry.leaf, sig, key.verifier))
    row = records(index)
    expected = tuple(
        header.get(k)
        for k in (
            "id",
            "pilot",
            "source",
            "seq",
            "type",
            "subject",
            "consent",
            "observed_at",
            "key",
        )
    )
    if row is None or tuple(row[1:]) != expected:
        report.add(index, "record index row does not match the signed header")
    body = bodies(index)
    if body is None:
        report.erased += 1
        return
    report.bodies += 1
    try:
        salt = b64url_decode(str(body[2]))
    except ValueError:
        salt = b""
    if sha256(salt + bytes(body[1])).hexdigest() != header.get("commitment"):
        report.add(index, "stored body does not match the record's commitment")


def _check_checkpoint(
    cp: Any, root: bytes, report: VerifyReport, log_key: NoteVerifier | None
) -> None:
    last = cp.size - 1
    if bytes(cp.root) != root:
        report.add(last, f"checkpoint at size {cp.size} has a root the entries do not give")
        return
    try:
        parsed = (
            verify_checkpoint(cp.note, log_key) if log_key else parse_checkpoint(cp.note).checkpoint
        )
    except CheckpointError as exc:
        report.add(last, f"checkpoint at size {cp.size}: {exc}")
        return
    if parsed.size != cp.size or parsed.root_hash != root:
        report.add(last, f"checkpoint note at size {cp.size} does not match the log")
    elif report.origin is not None and parsed.origin != report.origin:
        report.add(last, f"checkpoint at size {cp.size} names origin {parsed.origin!r}")


def _orphans(reader: LedgerReader, report: VerifyReport) -> None:
    if report.erasures:
        marks = ",".join("?" * len(report.erasures))
        for (idx,) in reader.conn.execute(
            f"SELECT idx FROM bodies WHERE idx IN ({marks}) ORDER BY idx LIMIT 1",
            list(report.erasures),
        ):
            at = report.erasures[int(idx)]
            report.add(at, f"erasure entry {at} says body {idx} is gone, but it is stored")
    for (idx,) in reader.conn.execute(
        "SELECT r.idx FROM records r JOIN entries e ON e.idx = r.idx"
        " WHERE e.kind != 'record' ORDER BY r.idx LIMIT 1"
    ):
        report.add(int(idx), "a record row points at an entry that is not a record")
    for (idx,) in reader.conn.execute(
        "SELECT idx FROM bodies WHERE idx >= ? OR idx NOT IN (SELECT idx FROM records)"
        " ORDER BY idx LIMIT 1",
        (report.size,),
    ):
        report.add(int(idx), "a body is stored for an entry that is not a record")
    for (idx,) in reader.conn.execute("SELECT idx FROM entries WHERE idx < 0 LIMIT 1"):
        report.add(0, f"an entry has the impossible index {idx}")
    for (idx,) in reader.conn.execute(
        "SELECT idx FROM records WHERE idx >= ? ORDER BY idx LIMIT 1", (report.size,)
    ):
        report.add(int(idx), "a record row points past the end of the log")
