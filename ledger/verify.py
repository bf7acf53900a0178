"""The offline verifier: recompute a whole ledger (a SQLite file or a PostgreSQL database)
from its own bytes.

Every leaf hash, every stored node, every checkpoint root and signature, every record
signature (against the keys that ``registry`` entries put on the log before the record) and
every remaining body's commitment is recomputed, and every ``client`` entry (a hospital
client's revocation) must be a well-formed one; the report names the first index at which
anything differs from what the bytes imply. A body erased the supported way (an ``erasure``
entry on the log) is expected and not a fault; a body missing without one is.

Sealed values (schema "3", :mod:`ledger.sealing`) are opened with the ledger's key store
when one is given: a value whose key is destroyed is erased, one that does not open under
its key a fault. Without the key store the log is verified all the same (leaves, nodes,
checkpoints, signatures, the index rows' header fields), and the sealed bodies, which
cannot be checked against their commitments, are counted (``unopened``).
"""

from __future__ import annotations

import json
from bisect import bisect_right
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
from pydantic import ValidationError

from .base64url import canonical_b64url
from .checkpoint import NoteVerifier, parse_checkpoint, verify_checkpoint
from .datakeys import body_parts, open_with
from .dialect import Dialect, describe, location_of
from .entries import ENTRY_KINDS, ClientEntry
from .errors import (
    CheckpointError,
    InvalidEnvelope,
    KeyDestroyed,
    KeyFileError,
    LedgerError,
    SealError,
    StoreError,
)
from .hashing import HASH_SIZE, LEAF_PREFIX, NODE_PREFIX
from .keys import public_key_from_b64, raw_public
from .schema import RECORD_COLUMNS
from .sealed import PERSON, Opening, opened
from .sigcheck import PendingSig, SignatureChecks
from .store import LedgerReader, StoredCheckpoint
from .suite import DEFAULT_SUITE, Suite
from .tree import Frontier

if TYPE_CHECKING:
    from .keystore import KeyStore

#: Problems listed in full; past this only their count grows.
MAX_LISTED_PROBLEMS = 50
#: Record signatures verified per worker task.
SIGNATURE_CHUNK = 2048
#: Logs at least this long check signatures in helper processes rather than threads.
PROCESS_POOL_FROM = 20_000
#: ``meta`` key a copy of the public log (a mirror's) sets to ``LEAVES_ONLY``: it holds
#: leaves, signatures and checkpoints, never bodies or openings, so a record without a
#: body is what it should hold, not a body lost.
COPY_META = "copy"
LEAVES_ONLY = "leaves"


@dataclass(frozen=True)
class Problem:
    index: int
    what: str


@dataclass
class VerifyReport:
    path: str
    origin: str | None = None
    suite: str = DEFAULT_SUITE.name
    """The log's crypto suite (``ed25519-sha256``, ``sm2-sm3``)."""
    size: int = 0
    root: bytes | None = None
    records: int = 0
    signatures: int = 0
    bodies: int = 0
    erased: int = 0
    registry: int = 0
    client_revocations: int = 0
    checkpoints: int = 0
    openings: int = 0
    """Openings of sealed (v2) leaves held in the file and checked against their leaves."""
    unopened: int = 0
    """Bodies held sealed under data keys that could not be opened (no key store given):
    not checked against their commitments."""
    unopened_openings: int = 0
    """Openings held sealed that could not be opened (no key store given)."""
    key_store: str | None = None
    """The key store sealed values were opened with (None: none given)."""
    problems: list[Problem] = field(default_factory=list)
    problem_count: int = 0
    key_source: str = "none"
    leaves_only: bool = False
    """The file is a copy of the public log (``meta`` ``copy`` = ``leaves``): no bodies."""
    last_bad: int = -1
    erasures: dict[int, int] = field(default_factory=dict, repr=False)
    """Erased record index -> index of its erasure entry."""
    bad_indexes: set[int] = field(default_factory=set, repr=False)
    """Every index a problem was reported at (``problems`` lists only the first few)."""

    @property
    def ok(self) -> bool:
        return self.problem_count == 0

    @property
    def first_bad_index(self) -> int | None:
        return min(self.bad_indexes, default=None)

    def bad_between(self, first: int, last: int) -> bool:
        """Was a problem already reported at an index in [first, last]?"""
        if last - first < len(self.bad_indexes):
            return any(i in self.bad_indexes for i in range(first, last + 1))
        return any(first <= i <= last for i in self.bad_indexes)

    def add(self, index: int, what: str) -> None:
        self.problem_count += 1
        self.bad_indexes.add(index)
        self.last_bad = max(self.last_bad, index)
        if len(self.problems) < MAX_LISTED_PROBLEMS:
            self.problems.append(Problem(index, what))


@dataclass
class _Key:
    pilot: str | None
    source: str | None
    raw: bytes


class UnsignedRecord(LedgerError):
    """A record whose signer the public registry does not vouch for (the message says why)."""


class RegistryKeys:
    """The record-signing keys the public registry has put on the log so far: every
    ``registry`` entry's ``key.add`` replayed in log order, so that each record is checked
    against the keys registered before it. The offline verifier and a mirror both use it."""

    def __init__(self, suite: Suite = DEFAULT_SUITE) -> None:
        self._keys: dict[str, _Key] = {}
        self.suite = suite

    def learn(self, leaf: dict[str, Any]) -> None:
        """Replay one ``registry`` leaf; KeyFileError if the key it adds is unreadable or
        not of the log's suite."""
        if leaf.get("action") != "key.add":
            return
        public_key = public_key_from_b64(str(leaf.get("public_key")), self.suite)
        self._keys[str(leaf.get("key_id"))] = _Key(
            leaf.get("pilot"), leaf.get("source"), raw_public(public_key)
        )

    def copy(self) -> RegistryKeys:
        copied = RegistryKeys(self.suite)
        copied._keys = dict(self._keys)
        return copied

    def signer_of(self, header: dict[str, Any], sig: object) -> bytes:
        """The raw public key ``sig`` on ``header`` must verify under; UnsignedRecord if the
        key is not registered, belongs to another source, or ``sig`` is not a signature."""
        key = self._keys.get(str(header.get("key")))
        if key is None:
            raise UnsignedRecord(
                f"record is signed by key {header.get('key')!r}, not registered before it"
            )
        if key.pilot != header.get("pilot") or key.source != header.get("source"):
            raise UnsignedRecord("record's key belongs to another source")
        if not isinstance(sig, str) or len(sig) != 86:
            raise UnsignedRecord("record signature is missing or malformed")
        return key.raw


#: Each entry with its record row and body, if any, in one ordered pass (streamed on both
#: stores, :meth:`ledger.dialect.Dialect.stream`: a ledger larger than memory verifies).
_ROWS = (
    # blob(): on SQLite a CAST, as a tampered column of the wrong type must read as bytes,
    # not crash (PostgreSQL's columns hold their declared type only).
    "SELECT e.idx, e.kind, {leaf}, {leaf_hash}, e.sig, {nodes},"
    " r.id, r.pilot, r.source, r.seq, r.type, r.subject, r.consent, r.observed_at, r.key,"
    " {payload}, b.salt, {opening}, {body_key}, {opening_key}"
    " FROM entries e"
    " LEFT JOIN records r ON r.idx = e.idx"
    " LEFT JOIN bodies b ON b.idx = e.idx{join}"
    " WHERE e.idx >= 0 ORDER BY e.idx"
)
#: The join of the opening column on a schema-2 file (NULL on a "1" file, which holds v1
#: leaves only).
_OPENING_JOIN = " LEFT JOIN openings o ON o.idx = e.idx"


def _rows_sql(dialect: Dialect, sealed: bool, keyed: bool) -> str:
    blob = dialect.blob
    return _ROWS.format(
        leaf=blob("e.leaf"),
        leaf_hash=blob("e.leaf_hash"),
        nodes=blob("e.nodes"),
        payload=blob("b.payload"),
        opening=blob("o.opening") if sealed else "NULL",
        join=_OPENING_JOIN if sealed else "",
        body_key="b.key_id" if keyed else "NULL",
        opening_key="o.key_id" if keyed else "NULL",
    )


_RECORD_FIELDS = RECORD_COLUMNS
_record_fields = itemgetter(*_RECORD_FIELDS)
#: Signature chunks queued per helper before the walk waits for the oldest.
IN_FLIGHT = 4


_decode_json = msgspec.json.Decoder().decode


def _loads(leaf: bytes) -> Any:
    """``json.loads(leaf)``: through msgspec (0.4 us a record's header against json's 2.2
    us, the walk's largest cost after SQLite), which gives the same values as json where it
    reads a leaf at all (integers past 64 bits included, unlike orjson), and json's own
    verdict on what msgspec refuses (NaN, lone surrogates, UTF-16), so a leaf reads as
    before."""
    try:
        return _decode_json(leaf)
    except msgspec.DecodeError:
        return json.loads(leaf)


def verify_ledger(
    path: Path | str,
    *,
    log_key: NoteVerifier | None = None,
    progress: Callable[[int, int], None] | None = None,
    workers: int = 2,
    keys: KeyStore | None = None,
) -> VerifyReport:
    """Verify the ledger at ``path`` (a file's path or a PostgreSQL URL: a location of
    :func:`ledger.store.location_of`); raise StoreError only if it cannot be read.
    ``keys``: the ledger's key store, to open its sealed values with (module docstring).

    Read in one snapshot (a read transaction), so that a hub appending meanwhile cannot
    make the entries, bodies and checkpoints read disagree."""
    location = location_of(path)
    report = VerifyReport(describe(location))
    report.key_store = keys.where if keys is not None else None
    with (
        LedgerReader(location, keys=keys) as reader,
        reader.dialect.snapshot(reader.conn),
    ):
        try:
            report.origin = reader.meta("origin")
            report.suite = reader.suite.name
            report.leaves_only = reader.meta(COPY_META) == LEAVES_ONLY
            if log_key is None and (stored := reader.meta("log_key")):
                try:
                    log_key = NoteVerifier.parse(stored)
                    report.key_source = "the file itself (pass --key to pin the hub's key)"
                except CheckpointError as exc:
                    report.add(0, f"stored log key is unreadable: {exc}")
            elif log_key is not None:
                report.key_source = "given"
            if log_key is not None and log_key.suite is not reader.suite:
                report.add(
                    0,
                    f"the log key is an {log_key.suite.name} key, but the log's suite is"
                    f" {reader.suite.name}",
                )
            _Walk(reader, report, log_key, progress, workers).run()
            _orphans(reader, report)
        except reader.dialect.errors as exc:
            # (A PostgreSQL connection's failures come named already: ledger.postgres.)
            raise StoreError(f"{report.path} cannot be read to the end: {exc}") from None
    return report


class _Walk:
    """One pass over the entries in index order, recomputing the tree as it goes."""

    def __init__(
        self,
        reader: LedgerReader,
        report: VerifyReport,
        log_key: NoteVerifier | None,
        progress: Callable[[int, int], None] | None,
        workers: int,
    ) -> None:
        self.reader = reader
        self.report = report
        self.log_key = log_key
        self.progress = progress
        self.workers = max(1, workers)
        self.suite = reader.suite
        self.keys = RegistryKeys(reader.suite)
        self.checkpoints = {c.size: c for c in reader.checkpoints()}
        self.frontier = Frontier(tree=reader.suite.tree)
        #: Records without a body, by index (each needs an erasure entry).
        self.bodiless: list[int] = []
        #: Sealed erasure entries whose opening (the record they name) is not held here.
        self.unopened_erasures: list[int] = []
        #: Sizes of checkpoints whose signed root the entries give.
        self.good_checkpoints: list[int] = []
        #: (first, last, level) of stored nodes that differ from the recomputed ones.
        self.node_faults: list[tuple[int, int, int]] = []
        #: (first, last, size) of checkpoints whose signed root the entries do not give.
        self.root_faults: list[tuple[int, int, int]] = []
        self.stopped = False
        self.since = 0
        """Entries before this are covered by a good checkpoint (or there is none yet)."""

    def run(self) -> None:
        report, frontier = self.report, self.frontier
        total = self.reader.size()
        pending: list[PendingSig] = []
        futures: deque[Future[list[int]]] = deque()
        #: Bad signatures of the checks already collected, reported after the walk as ever.
        bad_signatures: list[int] = []
        pool = SignatureChecks(self.workers, processes=total >= PROCESS_POOL_FROM)
        try:
            reader = self.reader
            sql = _rows_sql(reader.dialect, reader.sealed, reader.keyed)
            for rows in reader.dialect.stream(reader.conn, sql):
                if reader.keyed:
                    rows = self._unsealed(rows)
                try:
                    self._rows(rows, pending)
                finally:
                    # Chunks of SIGNATURE_CHUNK, so the helpers finish close together.
                    chunk = SIGNATURE_CHUNK
                    while len(pending) >= chunk:
                        futures.append(pool.check(pending[:chunk]))
                        del pending[:chunk]
                    # The walk runs ahead of the helpers: hold a few chunks in flight only.
                    while len(futures) > IN_FLIGHT * self.workers:
                        bad_signatures += futures.popleft().result()
                if self.progress:
                    self.progress(frontier.size, total)
        except _Stop:
            self.stopped = True
        finally:
            if pending:
                futures.append(pool.check(pending))
            try:
                for fut in futures:
                    bad_signatures += fut.result()
                for bad in bad_signatures:
                    report.add(bad, f"record signature at index {bad} does not verify")
            finally:
                pool.close()
        self._finish()

    def _unsealed(self, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """The fetch's rows with their sealed body (payload, salt) and opening opened under
        the key store's keys (one call a fetch): None where the key is destroyed (erased);
        :data:`_SEALED` where there is no key store to open them with, :data:`_DAMAGED`
        (reported) where one does not open under its key."""
        wanted = {k for row in rows for k in (row[18], row[19]) if k is not None}
        if not wanted:
            return rows
        keys = self.reader.keys
        held = keys.keys(int(k) for k in wanted) if keys is not None else None
        out = []
        for row in rows:
            if row[18] is None and row[19] is None:
                out.append(row)
                continue
            index = row[0]
            payload, salt, opening = row[15], row[16], row[17]
            if row[18] is not None and payload is not None:
                plain = self._open(held, row[18], "bodies", index, payload)
                if isinstance(plain, bytes):
                    try:
                        payload, salt = body_parts(plain)
                    except SealError:
                        self.report.add(index, "stored body opens to less than a salt")
                        payload, salt = _DAMAGED, None
                else:
                    payload, salt = plain, None
            if row[19] is not None and opening is not None:
                opening = self._open(held, row[19], "openings", index, opening)
            out.append((*row[:15], payload, salt, opening, *row[18:]))
        return out

    def _open(
        self, held: dict[int, Any] | None, key_id: Any, table: str, index: int, stored: Any
    ) -> Any:
        if held is None:
            return _SEALED
        try:
            return open_with(held, int(key_id), table, index, bytes(stored))
        except KeyDestroyed:
            return None
        except SealError as exc:
            self.report.add(index, f"stored {table[:-1]} does not open: {exc}")
            return _DAMAGED

    def _rows(self, rows: list[tuple[Any, ...]], pending: list[PendingSig]) -> None:
        """Walk one fetch of rows: the tree (Frontier.append inlined: this loop runs once
        per entry), then each entry's own checks."""
        report, frontier, checkpoints = self.report, self.frontier, self.checkpoints
        hashes = frontier.hashes
        digest = self.suite.tree.digest
        for row in rows:
            index = frontier.size
            if row[0] != index:
                report.add(index, f"entry {index} is missing (next stored index is {row[0]})")
                raise _Stop
            try:
                leaf = row[2]
                acc = digest(LEAF_PREFIX + leaf)
                if acc != row[3]:
                    report.add(index, "leaf bytes do not match the stored leaf hash")
                # Each trailing 1 bit of the index is a complete sibling to merge with; the
                # merged nodes are the ones this leaf closes (what its row stores).
                closed, n = b"", index
                while n & 1:
                    acc = digest(NODE_PREFIX + hashes.pop() + acc)
                    closed += acc
                    n >>= 1
                hashes.append(acc)
                frontier.size = index + 1
                if closed != row[5]:
                    self._node_fault(index, closed, row[5])
                self._entry(index, leaf, row, pending)
            except (LedgerError, ValueError, KeyError, TypeError) as exc:
                report.add(index, f"entry {index} is unreadable: {exc}")
                # Keep the tree going on the bytes as stored, for later checks.
                if frontier.size == index:
                    frontier.append(digest(LEAF_PREFIX + bytes(row[2] or b"")))
            if frontier.size in checkpoints:
                self._checkpoint(checkpoints[frontier.size])

    def _entry(
        self, index: int, leaf: bytes, row: tuple[Any, ...], pending: list[PendingSig]
    ) -> None:
        report, kind = self.report, row[1]
        try:
            value = _loads(leaf)
        except (ValueError, UnicodeDecodeError):
            report.add(index, "leaf is not JSON")
            return
        if not isinstance(value, dict):
            report.add(index, "leaf is not a JSON object")
            return
        leaf_kind = value.get("kind", "record")
        if leaf_kind != kind or leaf_kind not in ENTRY_KINDS:
            report.add(index, f"entry kind {kind!r} does not match its leaf ({leaf_kind!r})")
        elif leaf_kind == "record":
            report.records += 1
            self._record(index, leaf, value, row, pending)
        elif leaf_kind == "registry":
            report.registry += 1
            self._registry(index, value)
        elif leaf_kind == "erasure":
            view = self._opened(index, value, row[17])
            if "index" in view:
                report.erasures[int(view["index"])] = index
            else:
                self.unopened_erasures.append(index)
        elif leaf_kind in ("consent", "access"):
            self._opened(index, value, row[17])
        elif leaf_kind == "client":
            self._client(index, value)

    def _opened(self, index: int, leaf: dict[str, Any], raw: Any) -> dict[str, Any]:
        """The leaf with its stored opening's fields (:func:`ledger.sealed.opened`); an
        opening that does not open the leaf's ``person`` commitment is a fault."""
        if raw is None or raw is _DAMAGED:
            return opened(leaf, None)
        if raw is _SEALED:
            self.report.unopened_openings += 1
            return opened(leaf, None)
        self.report.openings += 1
        try:
            opening = Opening.decode(bytes(raw))
        except InvalidEnvelope:
            self.report.add(index, "stored opening is not one")
            return opened(leaf, None)
        if PERSON not in leaf or not opening.opens(leaf[PERSON], self.suite):
            self.report.add(index, "stored opening does not open the leaf's person commitment")
            return opened(leaf, None)
        return opened(leaf, opening, self.suite)

    def _node_fault(self, index: int, closed: bytes, stored: bytes) -> None:
        for level in range(1, len(closed) // HASH_SIZE + 1):
            at = slice((level - 1) * HASH_SIZE, level * HASH_SIZE)
            if stored[at] != closed[at]:
                self.node_faults.append((index - (1 << level) + 1, index, level))
                return
        self.report.add(index, "stored node hashes have the wrong length")

    def _record(
        self,
        index: int,
        leaf: bytes,
        header: dict[str, Any],
        row: tuple[Any, ...],
        pending: list[PendingSig],
    ) -> None:
        report, sig, opening, payload = self.report, row[4], row[17], row[15]
        try:
            raw_key = self.keys.signer_of(header, sig)
        except UnsignedRecord as exc:
            report.add(index, str(exc))
        else:
            report.signatures += 1
            # The leaf is JCS(header), exactly the bytes the source signed.
            pending.append((index, leaf, sig, raw_key))
        unopened = opening is _SEALED or opening is _DAMAGED
        if unopened:
            if opening is _SEALED:
                self.report.unopened_openings += 1
            opening = None
        try:
            if header.get("v") != 2:
                expected = _record_fields(header)
            elif opening is None and unopened:
                # Its subject and Consent are in the opening, which cannot be opened here:
                # the index row's other fields are checked.
                h = header
                expected = (
                    *(h["id"], h["pilot"], h["source"], h["seq"], h["type"]),
                    *(row[11], row[12], h["observed_at"], h["key"]),
                )
            elif opening is None:
                # As _opened(header, None) below: the header without its person, whose
                # subject and Consent are then the header's own, if any (v2: none).
                if header.get("person") is not None and payload is not None:
                    report.add(index, "record's body is held but the opening of its person is not")
                h = header
                expected = (
                    h["id"],
                    h["pilot"],
                    h["source"],
                    h["seq"],
                    h["type"],
                    h.get("subject"),
                    h.get("consent"),
                    h["observed_at"],
                    h["key"],
                )
            else:
                # The index's subject and Consent come from the opening, when it is held.
                view = self._opened(index, header, opening)
                view.setdefault("subject", None)
                view.setdefault("consent", None)
                expected = _record_fields(view)
        except KeyError:
            expected = None
        if row[6] is None or row[6:15] != expected:
            report.add(index, "record index row does not match the signed header")
        if payload is None:
            if not report.leaves_only:
                report.erased += 1
                self.bodiless.append(index)
            return
        if payload is _SEALED:
            report.unopened += 1
            return
        if payload is _DAMAGED:
            return
        report.bodies += 1
        salt = canonical_b64url(row[16]) or b""
        if self.suite.hexdigest(salt + payload) != header.get("commitment"):
            report.add(index, "stored body does not match the record's commitment")

    def _registry(self, index: int, leaf: dict[str, Any]) -> None:
        try:
            self.keys.learn(leaf)
        except KeyFileError as exc:
            self.report.add(index, f"registry key is unreadable: {exc}")

    def _client(self, index: int, leaf: dict[str, Any]) -> None:
        """A revocation is evidence of who cut a client off and why: it must say so in full."""
        try:
            ClientEntry.model_validate(leaf)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "entry"
            self.report.add(index, f"client entry is malformed: {where}: {first['msg']}")
            return
        self.report.client_revocations += 1

    def _checkpoint(self, cp: StoredCheckpoint) -> None:
        report, last = self.report, cp.size - 1
        try:
            parsed = (
                verify_checkpoint(cp.note, self.log_key)
                if self.log_key
                else parse_checkpoint(cp.note).checkpoint
            )
        except CheckpointError as exc:
            report.add(last, f"checkpoint at size {cp.size}: {exc}")
            return
        if parsed.size != cp.size or parsed.root_hash != bytes(cp.root):
            report.add(last, f"checkpoint row at size {cp.size} does not match its signed note")
        elif report.origin is not None and parsed.origin != report.origin:
            report.add(last, f"checkpoint at size {cp.size} names origin {parsed.origin!r}")
        elif parsed.root_hash != self.frontier.root():
            # The note is authentic, so some entry since the last good checkpoint changed.
            self.root_faults.append((self.since, last, cp.size))
        else:
            self.good_checkpoints.append(cp.size)
            self.since = cp.size

    def _finish(self) -> None:
        report, frontier = self.report, self.frontier
        report.size = frontier.size
        report.root = frontier.root()
        report.checkpoints = sum(1 for s in self.checkpoints if s <= frontier.size)
        truncated = self.stopped
        for size in sorted(self.checkpoints):
            if size > frontier.size:
                report.add(
                    frontier.size, f"checkpoint at size {size} but the log ends at {frontier.size}"
                )
                truncated = True
                break
        # Deferred until every leaf-level problem (signatures included) is known, so that a
        # consequence of one is not reported as news, and the changed row is the one named.
        for first, last, level in self.node_faults:
            good = self.good_checkpoints
            covered = bisect_right(good, last)
            if covered < len(good):
                # A signed root over these entries matches them: the leaves are authentic and
                # the stored node on row ``last`` is what changed.
                report.add(last, f"stored level-{level} node over entries {first}..{last} differs")
            elif not report.bad_between(first, last):
                report.add(first, f"stored node over entries {first}..{last} differs")
        for first, last, size in self.root_faults:
            if not report.bad_between(first, last):
                report.add(
                    first, f"entries {first}..{last} do not give the root signed at size {size}"
                )
        # (When the log was cut short, the missing erasure entries may be in the lost part;
        # the cut is what is reported.)
        # A sealed erasure entry whose opening this copy lacks (a mirror's) accounts for one
        # bodiless record before it.
        unopened = sorted(self.unopened_erasures)
        for index in [] if truncated else self.bodiless:
            at = report.erasures.get(index)
            if at is not None and at > index:
                continue
            later = bisect_right(unopened, index)
            if later < len(unopened):
                del unopened[later]
                continue
            report.add(index, "record body is gone but no erasure entry records it")
        if self.progress:
            self.progress(frontier.size, frontier.size)


class _Stop(LedgerError):
    """The walk cannot go on (an entry is missing)."""


#: A sealed value there was no key store to open (verify's rows, in place of its bytes).
_SEALED = object()
#: A sealed value that did not open under its key (reported once, then skipped).
_DAMAGED = object()


def _orphans(reader: LedgerReader, report: VerifyReport) -> None:
    erased = sorted(report.erasures)
    # In parts: a statement's parameters are bounded (SQLite 32766, PostgreSQL 65535).
    for part in (erased[i : i + 500] for i in range(0, len(erased), 500)):
        marks = ",".join("?" * len(part))
        rows = reader.conn.execute(
            f"SELECT idx, {reader.key_column('bodies')} FROM bodies WHERE idx IN ({marks})"
            " ORDER BY idx",
            part,
        ).fetchall()
        if reader.keys is not None and rows:
            # A body whose key is destroyed is erased, whatever row is left of it.
            held = reader.keys.keys(int(k) for _, k in rows if k is not None)
            rows = [(i, k) for i, k in rows if k is None or int(k) in held]
        if rows:
            idx = rows[0][0]
            at = report.erasures[int(idx)]
            report.add(at, f"erasure entry {at} says body {idx} is gone, but it is stored")
            break
    for (idx,) in reader.conn.execute(
        "SELECT r.idx FROM records r JOIN entries e ON e.idx = r.idx"
        " WHERE e.kind != 'record' ORDER BY r.idx LIMIT 1"
    ):
        report.add(int(idx), "a record row points at an entry that is not a record")
    for (idx,) in reader.conn.execute(
        # NOT EXISTS, not NOT IN: an anti-join on PostgreSQL, where NOT IN over a table
        # larger than work_mem is a subquery run again for every body.
        "SELECT b.idx FROM bodies b WHERE b.idx >= ?"
        " OR NOT EXISTS (SELECT 1 FROM records r WHERE r.idx = b.idx) ORDER BY b.idx LIMIT 1",
        (report.size,),
    ):
        report.add(int(idx), "a body is stored for an entry that is not a record")
    for (idx,) in reader.conn.execute("SELECT idx FROM entries WHERE idx < 0 LIMIT 1"):
        report.add(0, f"an entry has the impossible index {idx}")
    for (idx,) in reader.conn.execute(
        "SELECT idx FROM records WHERE idx >= ? ORDER BY idx LIMIT 1", (report.size,)
    ):
        report.add(int(idx), "a record row points past the end of the log")
