"""Witness cosignatures in the C2SP tlog-cosignature form (``cosignature/v1``, Ed25519).

A cosignature is a signed-note signature line on a checkpoint (c2sp.org/tlog-cosignature,
"Format")::

    — <cosigner name> base64(key ID || u64 big-endian timestamp || Ed25519 signature)

- The key ID is SHA-256(name || 0x0A || 0x04 || 32-byte public key)[:4]: signature type
  0x04, "Timestamped Ed25519 checkpoint cosignatures" (c2sp.org/signed-note, "Signature
  types"), not the 0x01 of a log's own note signature.
- The signed message is ``cosignature/v1\\n``, ``time <timestamp>\\n`` and then the whole
  checkpoint body, extension lines and final newline included, signature lines excluded
  (tlog-cosignature, "Ed25519 signed message").
- The timestamp is POSIX seconds, at most 2^63 - 1; a witness never sends 0
  (c2sp.org/tlog-witness, add-checkpoint) and verifiers may reject ones in the future.
- A cosigner's verifier key (vkey) is ``<name>+<hex key ID>+base64(0x04 || public key)``
  (signed-note, "Verifier keys"; tlog-cosignature allows this encoding for 0x04 keys).

On an ``sm2-sm3`` log a witness cosigns with SM2: the same message and line, signature type
``0xff || "swiftchain.dev/sm2-sm3/cosignature"``, key ID SM3(name || 0x0A || type ||
65-byte point)[:4], and the 64-byte r || s (:mod:`ledger.suite`).

The name is not part of the signed message, so one key must never serve two cosigner names
(tlog-cosignature: distinct public keys for each cosigner). Pure: no I/O, no clock.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature

from .checkpoint import SIG_PREFIX, parse_checkpoint
from .errors import CheckpointError, KeyFileError
from .keys import PrivateKey, PublicKey, raw_public
from .suite import SUITES, Suite, suite_of

__all__ = [
    "COSIGNATURE_ALG",
    "COSIGNATURE_BYTES",
    "COSIGNATURE_HEADER",
    "MAX_TIMESTAMP",
    "Cosignature",
    "CosignatureError",
    "CosignatureMismatch",
    "CosignerSigner",
    "CosignerVerifier",
    "VerifiedCosignature",
    "attach_cosignatures",
    "cosign",
    "cosigned_message",
    "cosigner_key_id",
    "note_body",
    "parse_cosignature_line",
    "parse_cosignature_lines",
    "verify_cosignature",
    "verify_cosignatures",
]

#: Signature type of timestamped Ed25519 checkpoint cosignatures (c2sp.org/signed-note).
COSIGNATURE_ALG = b"\x04"
#: The header line that domain-separates the signed message (tlog-cosignature).
COSIGNATURE_HEADER = b"cosignature/v1\n"
#: "It MUST NOT exceed 2^63 - 1" (tlog-cosignature, Format).
MAX_TIMESTAMP = 2**63 - 1
#: key ID (4) || timestamp (8) || Ed25519 signature (64).
COSIGNATURE_BYTES = 4 + 8 + 64

# signed-note: key names are non-empty, with no Unicode spaces and no "+".
_NAME = re.compile(r"^[^\s+]+$")
_HEX_KEY_ID = re.compile(r"^[0-9a-f]{8}$")
_B64 = re.compile(r"^[A-Za-z0-9+/]*={0,2}$")


class CosignatureError(CheckpointError):
    """A cosignature, cosigner key or cosigned note is malformed, or does not verify."""


class CosignatureMismatch(CosignatureError):
    """A signature line matches a trusted cosigner's name and key ID but does not verify
    over this checkpoint: per signed-note the whole note is then to be rejected."""

    def __init__(self, name: str, detail: str) -> None:
        super().__init__(f"cosignature by {name} {detail}")
        self.name = name


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _unb64(text: str, what: str) -> bytes:
    if not _B64.match(text):
        raise CosignatureError(f"{what} is not valid base64")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise CosignatureError(f"{what} is not valid base64") from None


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise CosignatureError(
            f"bad cosigner name {name!r}: non-empty, no spaces, no '+' (c2sp.org/signed-note)"
        )
    return name


def _check_timestamp(timestamp: object) -> int:
    if type(timestamp) is not int or not 0 <= timestamp <= MAX_TIMESTAMP:
        raise CosignatureError(f"cosignature timestamp {timestamp!r} is not in 0..2^63-1")
    return timestamp


def cosigner_key_id(name: str, public_key: PublicKey) -> bytes:
    """SHA-256(name || 0x0A || 0x04 || public key)[:4] (tlog-cosignature, Format); for an
    SM2 key, SM3 and the suite's cosignature type."""
    _check_name(name)
    suite = suite_of(public_key)
    typed = suite.cosignature_type + raw_public(public_key)
    return suite.digest(name.encode() + b"\n" + typed)[:4]


def cosigned_message(body: bytes, timestamp: int) -> bytes:
    """``cosignature/v1\\ntime <timestamp>\\n`` || checkpoint body (tlog-cosignature,
    "Ed25519 signed message"); the body is the note text with its final newline."""
    if not isinstance(body, bytes) or not body.endswith(b"\n"):
        raise CosignatureError("a checkpoint body is bytes ending in a newline")
    _check_timestamp(timestamp)
    return COSIGNATURE_HEADER + b"time %d\n" % timestamp + body


def note_body(note: str) -> bytes:
    """The text of a signed note, exactly as signed: everything up to the last blank line,
    with its final newline (c2sp.org/signed-note, Format). CheckpointError when ``note`` is
    not a signed checkpoint."""
    parse_checkpoint(note)
    # Checkpoint bodies hold no empty line, so the first blank line is also the last.
    body, _, _ = note.partition("\n\n")
    return (body + "\n").encode()


@dataclass(frozen=True)
class Cosignature:
    """One cosignature/v1 signature line, decoded (not yet verified)."""

    name: str
    key_id: bytes
    timestamp: int
    signature: bytes

    def line(self) -> str:
        """``— <name> base64(key ID || u64 BE timestamp || signature)`` and a newline."""
        _check_name(self.name)
        _check_timestamp(self.timestamp)
        if len(self.key_id) != 4 or len(self.signature) != 64:
            raise CosignatureError("a cosignature is a 4-byte key ID and a 64-byte signature")
        raw = self.key_id + self.timestamp.to_bytes(8, "big") + self.signature
        return f"{SIG_PREFIX}{self.name} {_b64(raw)}\n"


@dataclass(frozen=True, eq=False)
class CosignerVerifier:
    """A cosigner's public key and name; vkey ``<name>+<hex key ID>+base64(0x04 || key)``.
    Two are equal when name and public key bytes are."""

    name: str
    public_key: PublicKey

    @property
    def suite(self) -> Suite:
        return suite_of(self.public_key)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CosignerVerifier):
            return NotImplemented
        return self.name == other.name and raw_public(self.public_key) == raw_public(
            other.public_key
        )

    def __hash__(self) -> int:
        return hash((self.name, raw_public(self.public_key)))

    @property
    def key_id(self) -> bytes:
        return cosigner_key_id(self.name, self.public_key)

    def encode(self) -> str:
        raw = self.suite.cosignature_type + raw_public(self.public_key)
        return f"{self.name}+{self.key_id.hex()}+{_b64(raw)}"

    @classmethod
    def parse(cls, text: str) -> CosignerVerifier:
        if not isinstance(text, str):
            raise CosignatureError("a cosigner verifier key is text")
        # The name holds no "+" and the key ID is hex, so the first two "+" split it; the
        # base64 part may hold "+" of its own.
        parts = text.strip().split("+", 2)
        if len(parts) != 3:
            raise CosignatureError(
                "a cosigner verifier key reads <name>+<hex key ID>+<base64(0x04 || key)>"
            )
        name, key_id_hex, key_b64 = parts
        _check_name(name)
        if not _HEX_KEY_ID.match(key_id_hex.lower()):
            raise CosignatureError(f"key ID {key_id_hex!r} is not 8 hex digits")
        raw = _unb64(key_b64, "cosigner verifier key")
        verifier = cls(name, _cosigner_key(raw))
        if verifier.key_id.hex() != key_id_hex.lower():
            raise CosignatureError("key ID does not match the cosigner's name and key")
        return verifier


def _cosigner_key(raw: bytes) -> PublicKey:
    for suite in SUITES.values():
        if raw.startswith(suite.note_type) and not raw.startswith(suite.cosignature_type):
            raise CosignatureError(
                f"this is a log's note key (type 0x{suite.note_type[:1].hex()}), not a cosigner key"
            )
        kind = suite.cosignature_type
        if raw.startswith(kind):
            if len(raw) != len(kind) + suite.public_key_bytes:
                break
            try:
                return suite.public_from_raw(raw[len(kind) :])
            except (KeyFileError, ValueError) as exc:
                raise CosignatureError(f"cosigner verifier key: {exc}") from None
    raise CosignatureError(
        "not a cosigner key: want type 0x04 and 32 Ed25519 key bytes, or the sm2-sm3"
        " cosignature type and a 65-byte SM2 point"
    )


@dataclass(frozen=True)
class CosignerSigner:
    """A witness's signing key and name."""

    name: str
    private_key: PrivateKey

    def __post_init__(self) -> None:
        _check_name(self.name)
        if not isinstance(self.private_key, PrivateKey):
            raise CosignatureError("a cosigner signs with an Ed25519 or SM2 private key")

    @property
    def verifier(self) -> CosignerVerifier:
        return CosignerVerifier(self.name, self.private_key.public_key())

    def cosign(self, body: bytes, timestamp: int) -> Cosignature:
        """The cosignature of checkpoint ``body`` at ``timestamp`` (POSIX seconds, >= 1: a
        witness MUST NOT omit the timestamp, tlog-witness add-checkpoint)."""
        if type(timestamp) is int and timestamp == 0:
            raise CosignatureError("a cosignature/v1 timestamp is never 0")
        signature = self.private_key.sign(cosigned_message(body, timestamp))
        return Cosignature(self.name, self.verifier.key_id, timestamp, signature)


def cosign(note: str, signer: CosignerSigner, timestamp: int) -> str:
    """The cosignature line ``signer`` adds to signed checkpoint ``note`` at ``timestamp``
    (the signature lines already on the note are not signed)."""
    if not isinstance(signer, CosignerSigner):
        raise CosignatureError("a checkpoint is cosigned by a CosignerSigner")
    return signer.cosign(note_body(note), timestamp).line()


def _decode(name: str, raw: bytes) -> Cosignature:
    if len(raw) != COSIGNATURE_BYTES:
        raise CosignatureError(
            f"a cosignature/v1 signature has {COSIGNATURE_BYTES} bytes, not {len(raw)}"
        )
    timestamp = int.from_bytes(raw[4:12], "big")
    if timestamp > MAX_TIMESTAMP:
        raise CosignatureError("cosignature timestamp exceeds 2^63-1")
    return Cosignature(name, raw[:4], timestamp, raw[12:])


def parse_cosignature_line(line: str) -> Cosignature:
    """Decode one signature line (with or without its final newline) as a cosignature/v1."""
    if not isinstance(line, str):
        raise CosignatureError("a cosignature line is text")
    text = line[:-1] if line.endswith("\n") else line
    if "\n" in text:
        raise CosignatureError("a cosignature line is one line")
    if not text.startswith(SIG_PREFIX):
        raise CosignatureError("a signature line starts with an em dash and a space")
    name, sep, sig_b64 = text[len(SIG_PREFIX) :].partition(" ")
    if not sep or " " in sig_b64:
        raise CosignatureError("a signature line is '— <name> <base64 signature>'")
    _check_name(name)
    return _decode(name, _unb64(sig_b64, "cosignature"))


def parse_cosignature_lines(text: str) -> tuple[Cosignature, ...]:
    """Decode a witness's add-checkpoint answer: one or more signature lines, each ending
    in a newline (tlog-witness, add-checkpoint)."""
    if not isinstance(text, str) or not text.endswith("\n") or text == "\n":
        raise CosignatureError("cosignature lines are one or more lines each ending in newline")
    return tuple(parse_cosignature_line(line) for line in text[:-1].split("\n"))


def verify_cosignature(
    body: bytes,
    cosignature: Cosignature,
    verifier: CosignerVerifier,
    *,
    not_after: int | None = None,
) -> int:
    """Check ``cosignature`` is ``verifier``'s over checkpoint ``body``; its timestamp.

    CosignatureError when the name or key ID are not the verifier's (the line is not this
    cosigner's); CosignatureMismatch when they are but the signature does not verify, or its
    timestamp is after ``not_after`` (verifiers MAY reject future timestamps)."""
    if not isinstance(verifier, CosignerVerifier):
        raise CosignatureError("a cosignature is verified against a CosignerVerifier")
    if not isinstance(cosignature, Cosignature):
        raise CosignatureError("only a Cosignature can be verified")
    if cosignature.name != verifier.name or cosignature.key_id != verifier.key_id:
        raise CosignatureError(f"not a cosignature by {verifier.name}")
    message = cosigned_message(body, cosignature.timestamp)
    try:
        verifier.public_key.verify(cosignature.signature, message)
    except InvalidSignature:
        raise CosignatureMismatch(verifier.name, "does not verify") from None
    if not_after is not None and cosignature.timestamp > not_after:
        raise CosignatureMismatch(verifier.name, "is timestamped in the future")
    return cosignature.timestamp


@dataclass(frozen=True)
class VerifiedCosignature:
    verifier: CosignerVerifier
    timestamp: int
    line: str
    """The signature line, with its final newline."""


def verify_cosignatures(
    note: str, verifiers: Iterable[CosignerVerifier], *, not_after: int | None = None
) -> tuple[VerifiedCosignature, ...]:
    """The valid cosignatures on signed checkpoint ``note`` by any of ``verifiers``, at most
    one per verifier, in the note's order.

    Lines whose name and key ID match no verifier are ignored (signed-note: unknown keys,
    even sharing a name or an ID, but not both). A line that matches a verifier but does not
    verify — wrong length, bad signature, future timestamp — raises CosignatureMismatch: the
    note is malformed and rejected whole (signed-note, Signatures). The log's own signature
    is not checked here (ledger.checkpoint.verify_checkpoint does that)."""
    known: dict[tuple[str, bytes], CosignerVerifier] = {}
    for v in verifiers:
        if not isinstance(v, CosignerVerifier):
            raise CosignatureError("cosignatures are verified against CosignerVerifiers")
        known[(v.name, v.key_id)] = v
    signed = parse_checkpoint(note)
    body = note_body(note)
    found: dict[tuple[str, bytes], VerifiedCosignature] = {}
    for name, key_id, rest in signed.signatures:
        verifier = known.get((name, key_id))
        if verifier is None:
            continue
        try:
            cosignature = _decode(name, key_id + rest)
        except CosignatureError as exc:
            raise CosignatureMismatch(name, f"is malformed: {exc}") from None
        timestamp = verify_cosignature(body, cosignature, verifier, not_after=not_after)
        # A second valid line by the same cosigner (two timestamps) adds nothing.
        found.setdefault(
            (name, key_id), VerifiedCosignature(verifier, timestamp, cosignature.line())
        )
    return tuple(found.values())


def attach_cosignatures(note: str, lines: Sequence[str] | str) -> str:
    """``note`` with cosignature ``lines`` appended (each one a signature line; a witness's
    whole add-checkpoint answer may be passed as one string). A line already on the note is
    not added twice. Nothing is verified: do that with ``verify_cosignatures``."""
    signed = parse_checkpoint(note)
    if isinstance(lines, str):
        text = lines
        if not text:
            return note
        if not text.endswith("\n"):
            raise CosignatureError("cosignature lines each end in a newline")
        candidates = text[:-1].split("\n")
    else:
        candidates = [line[:-1] if line.endswith("\n") else line for line in lines]
    present = set(signed.note[:-1].split("\n\n", 1)[1].split("\n"))
    out = note
    for line in candidates:
        parse_cosignature_line(line)
        if line not in present:
            present.add(line)
            out += line + "\n"
    return out
