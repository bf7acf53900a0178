"""Checkpoints in the C2SP tlog-checkpoint form, signed as C2SP signed notes.

A checkpoint body is three lines — origin, decimal tree size, base64 root hash — then any
extension lines; the note is the body, a blank line, and one or more signature lines
``— <name> <base64(key hash || signature)>``. The key hash of an Ed25519 key is the first
four bytes of SHA-256(name || 0x0A || 0x01 || public key) (C2SP signed-note, "Ed25519
signatures"). An ``sm2-sm3`` log signs with SM2, signature type
``0xff || "swiftchain.dev/sm2-sm3/note"`` and key hash SM3(name || 0x0A || type || 65-byte
point)[:4] (:mod:`ledger.suite`). Witnesses add cosignatures as further signature lines;
unknown ones are kept, not trusted, so an SM2 line and an Ed25519 line can stand side by
side on one note.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature

from .errors import CheckpointError, KeyFileError
from .hashing import HASH_SIZE
from .keys import PrivateKey, PublicKey, raw_public
from .suite import ED25519_SHA256, SM2_SM3, SUITES, Suite, suite_of

ED25519_ALG = ED25519_SHA256.note_type
SIG_PREFIX = "\u2014 "  # em dash, space
_NAME = re.compile(r"^[^\s+]+$")
MAX_NOTE_BYTES = 64 * 1024


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _unb64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise CheckpointError(f"{what} is not valid base64") from None


def key_hash(name: str, public_key: PublicKey) -> bytes:
    """The signed-note key ID of a log's key: HASH(name || 0x0A || type || public key)[:4]."""
    suite = suite_of(public_key)
    return suite.digest(name.encode() + b"\n" + suite.note_type + raw_public(public_key))[:4]


def _typed_key(raw: bytes, type_of: Callable[[Suite], bytes], what: str) -> PublicKey:
    """The public key after the signature type that starts ``raw``, of any suite."""
    for suite in SUITES.values():
        kind = type_of(suite)
        if raw.startswith(kind) and len(raw) == len(kind) + suite.public_key_bytes:
            try:
                return suite.public_from_raw(raw[len(kind) :])
            except (KeyFileError, ValueError) as exc:
                raise CheckpointError(f"{what}: {exc}") from None
    raise CheckpointError(
        f"{what} is not an Ed25519 (type 0x01) key, nor an SM2 one (type 0xff"
        f" {type_of(SM2_SM3)[1:].decode()!r}) with its 65-byte point"
    )


@dataclass(frozen=True)
class NoteVerifier:
    """A signed-note verifier key: ``<name>+<hex key hash>+<base64(type || public key)>``,
    type 0x01 for Ed25519 and :data:`ledger.suite.SM2_SM3`'s note type for SM2."""

    name: str
    public_key: PublicKey

    @property
    def suite(self) -> Suite:
        """The crypto suite of the log this key signs for."""
        return suite_of(self.public_key)

    @property
    def key_hash(self) -> bytes:
        return key_hash(self.name, self.public_key)

    def encode(self) -> str:
        typed = self.suite.note_type + raw_public(self.public_key)
        return f"{self.name}+{self.key_hash.hex()}+{_b64(typed)}"

    @classmethod
    def parse(cls, text: str) -> NoteVerifier:
        if not isinstance(text, str):
            raise CheckpointError("a verifier key is text")
        parts = text.strip().split("+", 2)
        if len(parts) != 3 or not _NAME.match(parts[0]):
            raise CheckpointError("a verifier key reads <name>+<hex key hash>+<base64 key>")
        name, hash_hex, key_b64 = parts
        raw = _unb64(key_b64, "verifier key")
        verifier = cls(name, _typed_key(raw, lambda s: s.note_type, "verifier key"))
        if verifier.key_hash.hex() != hash_hex.lower():
            raise CheckpointError("verifier key hash does not match its name and key")
        return verifier


@dataclass(frozen=True)
class NoteSigner:
    name: str
    private_key: PrivateKey

    @property
    def verifier(self) -> NoteVerifier:
        return NoteVerifier(self.name, self.private_key.public_key())

    def signature_line(self, body: bytes) -> str:
        sig = self.private_key.sign(body)
        return f"{SIG_PREFIX}{self.name} {_b64(self.verifier.key_hash + sig)}\n"


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def body(self) -> bytes:
        lines = [self.origin, str(self.size), _b64(self.root_hash), *self.extensions]
        return ("\n".join(lines) + "\n").encode()


@dataclass(frozen=True)
class SignedCheckpoint:
    checkpoint: Checkpoint
    note: str
    """The whole signed note, exactly as served and stored."""
    signatures: tuple[tuple[str, bytes, bytes], ...]
    """(name, key hash, signature) of every signature line, in order."""


def sign_checkpoint(checkpoint: Checkpoint, signer: NoteSigner) -> str:
    """The signed note for ``checkpoint``; CheckpointError for anything ``parse_checkpoint``
    would not read back (so a hub can never publish a note nobody can parse)."""
    _check_checkpoint(checkpoint)
    _check_signer(signer)
    body = checkpoint.body()
    return body.decode() + "\n" + signer.signature_line(body)


def _check_origin(origin: str) -> None:
    if not isinstance(origin, str) or not origin or "\n" in origin or origin != origin.strip():
        raise CheckpointError("a checkpoint origin is one non-empty line")


def _check_checkpoint(checkpoint: Checkpoint) -> None:
    if not isinstance(checkpoint, Checkpoint):
        raise CheckpointError("only a Checkpoint can be signed")
    _check_origin(checkpoint.origin)
    size = checkpoint.size
    if type(size) is not int or not 0 <= size < 10**20:
        raise CheckpointError(f"checkpoint size {size!r} is not a tree size")
    if not isinstance(checkpoint.root_hash, bytes) or len(checkpoint.root_hash) != HASH_SIZE:
        raise CheckpointError("root hash is not 32 bytes")
    for ext in checkpoint.extensions:
        if not isinstance(ext, str) or not ext or "\n" in ext:
            raise CheckpointError("a checkpoint extension is one non-empty line")
    try:
        checkpoint.origin.encode()
        "".join(checkpoint.extensions).encode()
    except UnicodeEncodeError:
        raise CheckpointError("a checkpoint is UTF-8 text") from None


def _check_signer(signer: NoteSigner) -> None:
    if not isinstance(signer, NoteSigner) or not isinstance(signer.private_key, PrivateKey):
        raise CheckpointError("a checkpoint is signed by a NoteSigner with an Ed25519 or SM2 key")
    if not isinstance(signer.name, str) or not _NAME.match(signer.name):
        raise CheckpointError(f"bad signer name {signer.name!r}")


def parse_checkpoint(note: str) -> SignedCheckpoint:
    """Parse a signed checkpoint note (signatures are not checked here)."""
    if not isinstance(note, str):
        raise CheckpointError("a checkpoint note is text")
    try:
        encoded = note.encode()
    except UnicodeEncodeError:
        raise CheckpointError("a checkpoint note is UTF-8 text") from None
    if len(encoded) > MAX_NOTE_BYTES:
        raise CheckpointError("checkpoint note is too large")
    body, sep, sig_block = note.partition("\n\n")
    if not sep or not sig_block.endswith("\n"):
        raise CheckpointError("a signed note is a body, a blank line and signature lines")
    lines = body.split("\n")
    if len(lines) < 3:
        raise CheckpointError("a checkpoint body has an origin, a size and a root hash")
    origin, size_text, root_b64, *extensions = lines
    _check_origin(origin)
    if not re.fullmatch(r"0|[1-9][0-9]{0,19}", size_text):
        raise CheckpointError(f"checkpoint size {size_text!r} is not a decimal number")
    root_hash = _unb64(root_b64, "root hash")
    if len(root_hash) != HASH_SIZE:
        raise CheckpointError("root hash is not 32 bytes")
    if any(not e for e in extensions):
        raise CheckpointError("empty line inside a checkpoint body")
    signatures = []
    for line in sig_block[:-1].split("\n"):
        if not line.startswith(SIG_PREFIX):
            raise CheckpointError("a signature line starts with an em dash and a space")
        name, _, sig_b64 = line[len(SIG_PREFIX) :].rpartition(" ")
        if not _NAME.match(name):
            raise CheckpointError(f"bad signer name {name!r}")
        raw = _unb64(sig_b64, "signature")
        if len(raw) < 5:
            raise CheckpointError("signature line is too short")
        signatures.append((name, raw[:4], raw[4:]))
    checkpoint = Checkpoint(origin, int(size_text), root_hash, tuple(extensions))
    return SignedCheckpoint(checkpoint, note, tuple(signatures))


def verify_checkpoint(note: str, verifier: NoteVerifier) -> Checkpoint:
    """Parse ``note`` and check it carries a valid signature by ``verifier``."""
    if not isinstance(verifier, NoteVerifier):
        raise CheckpointError("a checkpoint is verified against a NoteVerifier")
    signed = parse_checkpoint(note)
    body = signed.checkpoint.body()
    for name, khash, sig in signed.signatures:
        if name == verifier.name and khash == verifier.key_hash:
            try:
                verifier.public_key.verify(sig, body)
            except InvalidSignature:
                raise CheckpointError(f"signature by {name} does not verify") from None
            return signed.checkpoint
    raise CheckpointError(f"checkpoint carries no signature by {verifier.name}")


def add_cosignature(note: str, signer: NoteSigner) -> str:
    """Append a witness's signature line to a signed note (after checking it parses)."""
    _check_signer(signer)
    signed = parse_checkpoint(note)
    return note + signer.signature_line(signed.checkpoint.body())
