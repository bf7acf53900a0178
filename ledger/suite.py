"""Crypto suites: which hash and which signature a log uses, fixed when the log is created.

- ``ed25519-sha256`` (the default): RFC 9162's SHA-256 tree, Ed25519 signatures (RFC
  8032), C2SP signed-note type 0x01 and cosignature type 0x04.
- ``sm2-sm3`` (China's commercial cryptography, GM/T): SM3 (GM/T 0004) in the RFC 9162
  construction, for leaf and node hashes, commitments and key ids; SM2 signatures (GM/T
  0003.2, :mod:`ledger.sm2`) for records, checkpoints, cosignatures and registry entries.

Everything that hashes for the tree or signs or verifies asks the suite, named in the
log's ``meta`` (``suite``) or told by the kind of a key (:func:`suite_of`), so that the
envelope, tree, proofs, checkpoints and the verifier take a suite and hold no algorithm.

C2SP signed-note assigns no signature type to SM2; type 0xff is "reserved for signature
types without an identifier byte", to be followed by "a longer identifier that is unlikely
to collide" (c2sp.org/signed-note, "Signature types"). Swiftchain's are
``0xff || "swiftchain.dev/sm2-sm3/note"`` for a log's checkpoint signature and
``0xff || "swiftchain.dev/sm2-sm3/cosignature"`` for a witness's timestamped one. Their key
ID is SM3(name || 0x0A || type || 65-byte public key)[:4]: the spec recommends SHA-256 for
its own types, and a national-profile log keeps SHA-256 out of everything it computes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .errors import KeyFileError, SuiteError
from .hashing import SHA256_TREE, SM3_TREE, TreeHash
from .sm2 import Sm2PrivateKey, Sm2PublicKey

PrivateKey = Ed25519PrivateKey | Sm2PrivateKey
PublicKey = Ed25519PublicKey | Sm2PublicKey


@dataclass(frozen=True, slots=True)
class Suite:
    """One crypto suite. ``key_kind`` is what ``swiftchain keys new --suite`` takes."""

    name: str
    key_kind: str
    tree: TreeHash
    #: signed-note signature type of the log's own checkpoint signature.
    note_type: bytes
    #: signed-note signature type of a witness's timestamped cosignature.
    cosignature_type: bytes
    private_type: type[Ed25519PrivateKey] | type[Sm2PrivateKey]
    public_type: type[Ed25519PublicKey] | type[Sm2PublicKey]
    public_key_bytes: int

    def digest(self, data: bytes) -> bytes:
        return self.tree.digest(data)

    def hexdigest(self, data: bytes) -> str:
        """The hex digest of commitments (``commitment``, ``person``)."""
        return self.tree.digest(data).hex()

    def generate_key(self) -> PrivateKey:
        if self.private_type is Sm2PrivateKey:
            return Sm2PrivateKey.generate()
        return Ed25519PrivateKey.generate()

    def public_from_raw(self, raw: bytes) -> PublicKey:
        """A public key from its raw bytes (32 for Ed25519, the 65-byte point for SM2)."""
        if not isinstance(raw, bytes) or len(raw) != self.public_key_bytes:
            raise KeyFileError(f"an {self.key_kind} public key has {self.public_key_bytes} bytes")
        if self.public_type is Sm2PublicKey:
            return Sm2PublicKey(raw)
        return Ed25519PublicKey.from_public_bytes(raw)

    def owns(self, key: object) -> bool:
        return isinstance(key, self.private_type | self.public_type)

    def require(self, key: object, what: str) -> None:
        """SuiteError unless ``key`` is of this suite."""
        if not self.owns(key):
            other = suite_of(key).name if isinstance(key, PrivateKey | PublicKey) else None
            raise SuiteError(
                f"{what} is {'an ' + other if other else 'not a'} key; this log's suite is"
                f" {self.name}"
            )


def _note_type(tail: str) -> bytes:
    return b"\xff" + f"swiftchain.dev/sm2-sm3/{tail}".encode()


ED25519_SHA256: Final = Suite(
    name="ed25519-sha256",
    key_kind="ed25519",
    tree=SHA256_TREE,
    note_type=b"\x01",
    cosignature_type=b"\x04",
    private_type=Ed25519PrivateKey,
    public_type=Ed25519PublicKey,
    public_key_bytes=32,
)
SM2_SM3: Final = Suite(
    name="sm2-sm3",
    key_kind="sm2",
    tree=SM3_TREE,
    note_type=_note_type("note"),
    cosignature_type=_note_type("cosignature"),
    private_type=Sm2PrivateKey,
    public_type=Sm2PublicKey,
    public_key_bytes=65,
)
DEFAULT_SUITE: Final = ED25519_SHA256
SUITES: Final = {s.name: s for s in (ED25519_SHA256, SM2_SM3)}
#: ``swiftchain keys new --suite``: the key kind or the suite's name.
KEY_KINDS: Final = {s.key_kind: s for s in SUITES.values()}


def suite_named(name: str | None) -> Suite:
    """The suite called ``name`` (None: a log from before suites, ``ed25519-sha256``)."""
    if name is None:
        return DEFAULT_SUITE
    suite = SUITES.get(name) or KEY_KINDS.get(name)
    if suite is None:
        raise SuiteError(f"unknown crypto suite {name!r}; known: {', '.join(SUITES)}")
    return suite


def suite_of(key: object) -> Suite:
    """The suite whose signatures ``key`` makes or checks."""
    if isinstance(key, Sm2PrivateKey | Sm2PublicKey):
        return SM2_SM3
    if isinstance(key, Ed25519PrivateKey | Ed25519PublicKey):
        return ED25519_SHA256
    raise KeyFileError(f"expected an Ed25519 or SM2 key, got {type(key).__name__}")


def suite_of_raw(raw: bytes) -> Suite:
    """The suite of a raw public key, by its length (32: Ed25519, 65: an SM2 point)."""
    for suite in SUITES.values():
        if len(raw) == suite.public_key_bytes:
            return suite
    raise KeyFileError(f"a public key has 32 (Ed25519) or 65 (SM2) bytes, not {len(raw)}")
