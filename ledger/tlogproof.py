"""Offline-verifiable proofs of logging: c2sp.org/tlog-proof@v1.

A proof is lines separated by newlines (tlog-proof, "Format")::

    c2sp.org/tlog-proof@v1
    extra <base64 opaque data>          (optional)
    index <zero-based decimal index>
    <base64 inclusion proof hash>       (zero or more, leaf's sibling first, RFC 6962 2.1.1)
                                        (an empty line)
    <the cosigned checkpoint, verbatim (c2sp.org/tlog-checkpoint)>

Swiftchain puts the entry's exact leaf bytes in ``extra`` (a record's JCS header, a consent
or access entry), so a proof says what it proves; the extra data is not authenticated, and
is trusted only because its leaf hash, with the inclusion proof, leads to the signed root.

Verifying (tlog-proof, "Verifying a tlog proof"): 1. the leaf hash (from ``extra`` or a leaf
the verifier holds); 2. the origin is a log of the policy and its signature verifies; 3. the
cosignatures of the policy's witnesses meet its quorum (:mod:`ledger.policy`); 4. the
inclusion proof binds the leaf hash to the checkpoint's root hash. Pure: no I/O, no clock.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from .checkpoint import MAX_NOTE_BYTES, NoteVerifier, parse_checkpoint
from .errors import CheckpointError, ProofError
from .hashing import HASH_SIZE, SHA256_TREE, TreeHash
from .policy import TrustPolicy
from .proofs import MAX_TREE_SIZE, root_from_inclusion_proof
from .quorum import QuorumReport, evaluate

__all__ = [
    "HEADER",
    "MEDIA_TYPE",
    "ProofReport",
    "TlogProof",
    "assemble_proof",
    "format_proof",
    "parse_proof",
    "verify_proof",
]

HEADER = "c2sp.org/tlog-proof@v1"
#: What the hub answers a tlog-proof with (the spec names a file extension, ``.tlog-proof``,
#: and no media type; the text is UTF-8).
MEDIA_TYPE = "text/plain"
#: An inclusion proof in a tree of at most 2^64 leaves has at most 64 hashes.
MAX_INCLUSION = 64
MAX_EXTRA_BYTES = 64 * 1024
MAX_PROOF_BYTES = MAX_NOTE_BYTES + 2 * MAX_EXTRA_BYTES + 4096

_INDEX = re.compile(r"^(0|[1-9][0-9]{0,19})$")
_B64 = re.compile(r"^[A-Za-z0-9+/]*={0,2}$")


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _unb64(text: str, what: str) -> bytes:
    # One value, one spelling: a changed spare bit must not leave a proof "the same".
    try:
        raw = base64.b64decode(text, validate=True) if _B64.match(text) else None
    except (binascii.Error, ValueError):
        raw = None
    if raw is None or _b64(raw) != text:
        raise ProofError(f"{what} is not canonical base64")
    return raw


@dataclass(frozen=True)
class TlogProof:
    index: int
    inclusion: tuple[bytes, ...]
    """RFC 9162 inclusion proof hashes, from the leaf's sibling up to the root's child."""
    checkpoint: str
    """The signed (and cosigned) checkpoint note, verbatim."""
    extra: bytes | None = None
    """Opaque, unauthenticated extra data; in Swiftchain's proofs the entry's leaf bytes."""


def format_proof(proof: TlogProof) -> str:
    """The proof's text (ends as the checkpoint note does, with a newline). ProofError for a
    proof :func:`parse_proof` would not read back."""
    _check(proof)
    lines = [HEADER]
    if proof.extra is not None:
        lines.append(f"extra {_b64(proof.extra)}")
    lines.append(f"index {proof.index}")
    lines.extend(_b64(h) for h in proof.inclusion)
    return "\n".join(lines) + "\n\n" + proof.checkpoint


def _check(proof: TlogProof) -> None:
    if not isinstance(proof, TlogProof):
        raise ProofError("only a TlogProof can be formatted")
    if type(proof.index) is not int or not 0 <= proof.index <= MAX_TREE_SIZE:
        raise ProofError(f"index {proof.index!r} is not in 0..2^64-1")
    if len(proof.inclusion) > MAX_INCLUSION:
        raise ProofError(f"an inclusion proof has at most {MAX_INCLUSION} hashes")
    for i, h in enumerate(proof.inclusion):
        if not isinstance(h, bytes) or len(h) != HASH_SIZE:
            raise ProofError(f"inclusion hash {i} is not {HASH_SIZE} bytes")
    if proof.extra is not None and (
        not isinstance(proof.extra, bytes) or len(proof.extra) > MAX_EXTRA_BYTES
    ):
        raise ProofError(f"extra data is bytes, at most {MAX_EXTRA_BYTES}")
    try:
        parse_checkpoint(proof.checkpoint)
    except CheckpointError as exc:
        raise ProofError(f"the checkpoint is not a signed note: {exc}") from None


def assemble_proof(
    note: str,
    index: int,
    inclusion: Sequence[bytes],
    leaf: bytes,
    tree: TreeHash = SHA256_TREE,
) -> str:
    """The tlog-proof text of entry ``index`` (exact ``leaf`` bytes, put in ``extra``) under
    checkpoint ``note``, after checking the inclusion leads to the note's root (in the
    log's suite's ``tree`` hash): a hub or the CLI never hands out a proof that does not
    verify. ProofError if it does not."""
    try:
        checkpoint = parse_checkpoint(note).checkpoint
    except CheckpointError as exc:
        raise ProofError(f"the checkpoint is not a signed note: {exc}") from None
    if not isinstance(leaf, bytes):
        raise ProofError("a leaf is bytes")
    root = root_from_inclusion_proof(tree.leaf(leaf), index, checkpoint.size, list(inclusion), tree)
    if not hmac.compare_digest(root, checkpoint.root_hash):
        raise ProofError(
            f"entry {index} and its inclusion proof do not lead to the root signed at size "
            f"{checkpoint.size}"
        )
    return format_proof(TlogProof(index, tuple(inclusion), note, leaf))


def parse_proof(text: str | bytes) -> TlogProof:
    """Read a tlog-proof; ProofError naming the line that is wrong. Signatures, the
    inclusion and the quorum are checked by :func:`verify_proof`, not here."""
    if isinstance(text, bytes):
        if len(text) > MAX_PROOF_BYTES:
            raise ProofError(f"a tlog-proof is at most {MAX_PROOF_BYTES} bytes")
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise ProofError("a tlog-proof is UTF-8 text") from None
    if not isinstance(text, str):
        raise ProofError("a tlog-proof is text")
    if len(text) > MAX_PROOF_BYTES:
        raise ProofError(f"a tlog-proof is at most {MAX_PROOF_BYTES} bytes")
    head, sep, note = text.partition("\n\n")
    lines = head.split("\n")
    if lines[0] != HEADER:
        hint = " (Windows line ends?)" if lines[0].rstrip("\r") == HEADER else ""
        raise ProofError(f"line 1: a tlog-proof starts with the line {HEADER}{hint}")
    if not sep:
        raise ProofError("no empty line before the checkpoint")
    at = 1
    extra = None
    if len(lines) > at and lines[at].startswith("extra "):
        extra = _unb64(lines[at][len("extra ") :], f"line {at + 1}: the extra data")
        if len(extra) > MAX_EXTRA_BYTES:
            raise ProofError(f"line {at + 1}: extra data over {MAX_EXTRA_BYTES} bytes")
        at += 1
    if len(lines) <= at or not lines[at].startswith("index "):
        raise ProofError(f"line {at + 1}: expected 'index <decimal>'")
    index_text = lines[at][len("index ") :]
    if not _INDEX.match(index_text) or int(index_text) > MAX_TREE_SIZE:
        raise ProofError(
            f"line {at + 1}: index {index_text[:32]!r} is not a decimal in 0..2^64-1 "
            "without leading zeroes"
        )
    at += 1
    hashes = lines[at:]
    if len(hashes) > MAX_INCLUSION:
        raise ProofError(f"more than {MAX_INCLUSION} inclusion proof hashes")
    inclusion = []
    for offset, line in enumerate(hashes, start=at + 1):
        raw = _unb64(line, f"line {offset}: inclusion proof hash")
        if len(raw) != HASH_SIZE:
            raise ProofError(f"line {offset}: an inclusion proof hash is {HASH_SIZE} bytes")
        inclusion.append(raw)
    try:
        signed = parse_checkpoint(note)
    except CheckpointError as exc:
        raise ProofError(f"the checkpoint after the empty line: {exc}") from None
    sig_lines = note.partition("\n\n")[2][:-1].split("\n")
    for (_name, key_id, sig), line in zip(signed.signatures, sig_lines, strict=True):
        if line.rpartition(" ")[2] != _b64(key_id + sig):
            raise ProofError(f"the checkpoint's signature line {line[:48]!r} is not canonical")
    return TlogProof(int(index_text), tuple(inclusion), note, extra)


@dataclass(frozen=True)
class ProofReport:
    """A tlog-proof judged against a trust policy (and perhaps a leaf the verifier holds)."""

    proof: TlogProof
    checkpoint: QuorumReport
    leaf_hash: bytes | None
    """The leaf hash the inclusion was checked for."""
    leaf_from: str
    """``given`` (the verifier's leaf), ``extra`` (the proof's own) or ``none``."""
    inclusion_problem: str | None

    @property
    def ok(self) -> bool:
        return self.checkpoint.ok and self.inclusion_problem is None

    @property
    def leaf(self) -> bytes | None:
        """The proven leaf bytes, when the inclusion holds for them."""
        if self.inclusion_problem is not None:
            return None
        return self.proof.extra if self.leaf_from == "extra" else None

    def reasons(self) -> list[str]:
        out = [] if self.inclusion_problem is None else [self.inclusion_problem]
        return out + self.checkpoint.reasons()

    def summary(self) -> list[str]:
        lines = [f"entry {self.proof.index:,} of {self.checkpoint.origin}"]
        if self.leaf_hash is not None:
            lines.append(
                f"  leaf hash      {self.leaf_hash.hex()} (from the {self.leaf_from} leaf)"
            )
        kind = _leaf_kind(self.leaf)
        if kind:
            lines.append(f"  entry          {kind}")
        verdict = "ok" if self.inclusion_problem is None else "FAILED"
        lines.append(f"  inclusion      {verdict} in the tree of {self.checkpoint.size:,}")
        lines.extend(self.checkpoint.summary())
        return lines

    def as_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "index": self.proof.index,
            "leaf_hash": None if self.leaf_hash is None else self.leaf_hash.hex(),
            "leaf_from": self.leaf_from,
            "inclusion_ok": self.inclusion_problem is None,
            "inclusion_problem": self.inclusion_problem,
            "checkpoint": self.checkpoint.as_dict(),
            "reasons": self.reasons(),
        }


def _leaf_kind(leaf: bytes | None) -> str | None:
    """``record 7c1e... (air-quality/station-1)`` for a Swiftchain leaf, else None."""
    if leaf is None:
        return None
    try:
        value = json.loads(leaf)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(value, dict):
        return None
    kind = str(value.get("kind", "record"))
    about = "/".join(str(value[k]) for k in ("pilot", "source") if isinstance(value.get(k), str))
    ident = value.get("id")
    return " ".join(p for p in (kind, str(ident) if ident else "", f"({about})" * bool(about)) if p)


def verify_proof(
    proof: TlogProof | str | bytes,
    policy: TrustPolicy,
    *,
    leaf: bytes | None = None,
    now: int | None = None,
    log_key: NoteVerifier | None = None,
) -> ProofReport:
    """Verify a tlog-proof against ``policy``: the log's signature, the quorum of
    cosignatures (``now``, ``log_key``: see :func:`ledger.policy.evaluate`) and the
    inclusion of the leaf at the proof's index under the checkpoint's root.

    The leaf is ``leaf`` when given (the bytes the verifier holds: a proof of another
    entry then fails), else the proof's ``extra`` data. The hash is the suite of the log key
    whose signature verified (SM3 for an ``sm2-sm3`` log). ProofError when ``proof`` cannot
    be read at all; every other failure is in the report's ``reasons()``."""
    parsed = parse_proof(proof) if isinstance(proof, str | bytes) else proof
    if not isinstance(parsed, TlogProof):
        raise ProofError("a tlog-proof is text or a TlogProof")
    try:
        report = evaluate(policy, parsed.checkpoint, now=now, log_key=log_key)
    except CheckpointError as exc:
        raise ProofError(f"the checkpoint is not a signed note: {exc}") from None
    tree = _tree(report, log_key)
    if leaf is not None:
        if not isinstance(leaf, bytes):
            raise ProofError("a leaf is bytes")
        hashed, source = tree.leaf(leaf), "given"
    elif parsed.extra is not None:
        hashed, source = tree.leaf(parsed.extra), "extra"
    else:
        return ProofReport(
            parsed,
            report,
            None,
            "none",
            "the proof carries no leaf (no extra line): give the leaf to check its inclusion",
        )
    problem = _inclusion(parsed, report, hashed, tree)
    if problem is not None and source == "given" and parsed.extra is not None:
        extra_hash = tree.leaf(parsed.extra)
        if parsed.extra != leaf and _inclusion(parsed, report, extra_hash, tree) is None:
            problem = (
                f"the given leaf (hash {hashed.hex()}) is not entry {parsed.index}: this "
                "proof proves another leaf"
            )
    return ProofReport(parsed, report, hashed, source, problem)


def _tree(report: QuorumReport, log_key: NoteVerifier | None) -> TreeHash:
    """The tree hash of the log whose key verified the checkpoint (SHA-256 when none did:
    the report says so already)."""
    if report.log_key is not None:
        try:
            return NoteVerifier.parse(report.log_key).suite.tree
        except CheckpointError:
            pass
    return log_key.suite.tree if log_key is not None else SHA256_TREE


def _inclusion(proof: TlogProof, report: QuorumReport, hashed: bytes, tree: TreeHash) -> str | None:
    try:
        root = root_from_inclusion_proof(hashed, proof.index, report.size, proof.inclusion, tree)
    except ProofError as exc:
        return f"the inclusion proof is not one for index {proof.index}: {exc}"
    if not hmac.compare_digest(root, report.root_hash):
        return (
            f"the inclusion proof for index {proof.index} does not lead to the checkpoint's "
            "root hash"
        )
    return None
