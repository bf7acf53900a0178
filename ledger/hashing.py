"""RFC 9162 section 2.1.1 hashing: domain-separated SHA-256 for leaves and interior nodes."""

from hashlib import sha256

from .errors import ProofError

HASH_SIZE = 32
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"

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
