"""RFC 9162 section 2.1.1 hashing: domain-separated leaf and interior-node hashes.

:class:`TreeHash` is the construction with a given hash: SHA-256 (RFC 9162 itself, the
``ed25519-sha256`` suite) or SM3 (GM/T 0004, the ``sm2-sm3`` suite). The module-level
functions are the SHA-256 tree's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from hashlib import sha256
from typing import Final

from cryptography.hazmat.primitives import hashes

from .errors import ProofError

HASH_SIZE = 32
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"


def sha256_digest(data: bytes) -> bytes:
    return sha256(data).digest()


_SM3: Final = hashes.SM3()


def sm3_digest(data: bytes) -> bytes:
    """SM3 (GM/T 0004-2012), from cryptography's OpenSSL."""
    h = hashes.Hash(_SM3)
    h.update(data)
    return h.finalize()


@dataclass(frozen=True, slots=True)
class TreeHash:
    """RFC 9162 section 2.1.1's Merkle tree hash, with ``digest`` in SHA-256's place."""

    name: str
    digest: Callable[[bytes], bytes]

    @property
    def empty_root(self) -> bytes:
        """MTH({}) = HASH(): the hash of an empty tree."""
        return self.digest(b"")

    def leaf(self, leaf: bytes) -> bytes:
        """MTH({d(0)}) = HASH(0x00 || d(0))."""
        try:
            return self.digest(LEAF_PREFIX + leaf)
        except TypeError:
            raise ProofError(f"a leaf is bytes, not {type(leaf).__name__}") from None

    def node(self, left: bytes, right: bytes) -> bytes:
        """HASH(0x01 || MTH(left) || MTH(right))."""
        try:
            return self.digest(NODE_PREFIX + left + right)
        except TypeError:
            raise ProofError("node hashes are bytes") from None


SHA256_TREE: Final = TreeHash("sha256", sha256_digest)
SM3_TREE: Final = TreeHash("sm3", sm3_digest)

#: MTH({}) = SHA-256() — the hash of an empty tree (RFC 9162 section 2.1.1).
EMPTY_ROOT = sha256(b"").digest()


def leaf_hash(leaf: bytes) -> bytes:
    """MTH({d(0)}) = SHA-256(0x00 || d(0))."""
    try:
        return sha256(LEAF_PREFIX + leaf).digest()
    except TypeError:
        raise ProofError(f"a leaf is bytes, not {type(leaf).__name__}") from None


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || MTH(left) || MTH(right))."""
    try:
        return sha256(NODE_PREFIX + left + right).digest()
    except TypeError:
        raise ProofError("node hashes are bytes") from None
