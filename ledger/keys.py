"""Signature keys of either suite (Ed25519, SM2): generation, PEM key files (private ones
0600), raw encodings and key ids. :mod:`ledger.suite` says which kind a log uses."""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path

import nacl.exceptions
import nacl.signing
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from . import sm2
from .base64url import canonical_b64url
from .errors import EncodingError, KeyFileError, SignatureError
from .sm2 import Sm2PrivateKey, Sm2PublicKey
from .suite import DEFAULT_SUITE, PrivateKey, PublicKey, Suite, suite_of, suite_of_raw

__all__ = [
    "Ed25519PrivateKey",
    "Ed25519PublicKey",
    "FastVerifier",
    "PrivateKey",
    "PublicKey",
    "Sm2PrivateKey",
    "Sm2PublicKey",
    "b64url_decode",
    "b64url_encode",
    "generate_key",
    "key_id",
    "load_private_key",
    "load_public_key",
    "public_key_b64",
    "public_key_from_b64",
    "sign",
    "verify",
    "write_key_pair",
]


def b64url_encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode unpadded base64url strictly (no stray characters); EncodingError if it is not."""
    if (raw := canonical_b64url(text)) is not None:
        return raw
    # Not canonical: the checks below say why.
    if not isinstance(text, str) or not text.isascii():
        raise EncodingError("not base64url text")
    # The standard alphabet's "+" and "/" and padding would otherwise slip through below.
    if "+" in text or "/" in text or "=" in text:
        raise EncodingError("not unpadded base64url: '+', '/' or '=' in it")
    try:
        raw = base64.b64decode(
            text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4), validate=True
        )
    except binascii.Error as exc:
        raise EncodingError(f"not base64url: {exc}") from None
    # The spare low bits of the last character must be zero: one value, one spelling.
    if b64url_encode(raw) != text:
        raise EncodingError("not canonical base64url (spare bits set)")
    return raw


def generate_key(suite: Suite = DEFAULT_SUITE) -> PrivateKey:
    return suite.generate_key()


def raw_public(key: PublicKey) -> bytes:
    """32 bytes for Ed25519 (RFC 8032), the 65-byte point 0x04 || x || y for SM2."""
    key = _public(key)
    if isinstance(key, Sm2PublicKey):
        return key.public_bytes_raw()
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _public(key: object) -> PublicKey:
    if not isinstance(key, Ed25519PublicKey | Sm2PublicKey):
        raise KeyFileError(f"expected an Ed25519 or SM2 public key, got {type(key).__name__}")
    return key


def public_key_b64(key: PublicKey) -> str:
    return b64url_encode(raw_public(key))


def public_key_from_b64(text: str, suite: Suite | None = None) -> PublicKey:
    """The public key in ``text`` (unpadded base64url of its raw bytes); of ``suite`` when
    one is given, else of the suite its length says."""
    try:
        raw = b64url_decode(text)
    except ValueError as exc:
        raise KeyFileError(f"public key is not base64url: {exc}") from None
    if suite is None:
        suite = suite_of_raw(raw)
    return suite.public_from_raw(raw)


def key_id(key: PublicKey) -> str:
    """A record key's id: the first 8 bytes of HASH(raw public key) in hex, HASH being the
    key's suite's (SHA-256 for Ed25519, SM3 for SM2)."""
    return suite_of(key).digest(raw_public(key))[:8].hex()


def sign(key: PrivateKey, message: bytes) -> bytes:
    if not isinstance(key, Ed25519PrivateKey | Sm2PrivateKey):
        raise KeyFileError(f"expected an Ed25519 or SM2 private key, got {type(key).__name__}")
    if not isinstance(message, bytes):
        raise SignatureError("only bytes can be signed")
    return key.sign(message)


def verify(key: PublicKey, signature: bytes, message: bytes) -> None:
    _public(key)
    try:
        key.verify(signature, message)
    except (InvalidSignature, TypeError):
        raise SignatureError("signature does not verify") from None


class FastVerifier:
    """Verification for the bulk paths (hub ingest, the offline verifier): Ed25519 through
    libsodium (PyNaCl), SM2 through :mod:`ledger.sm2` (gmalglib).

    Measured on this project's 2-core machines (AMD EPYC, 300-byte messages): cryptography's
    OpenSSL Ed25519 verifies ~9,400/s on one thread and ~17,000/s on two; libsodium
    ~18,700/s and ~34,600/s. Both release the GIL. Signing and key files stay on
    cryptography.
    """

    __slots__ = ("_key", "_sm2")

    def __init__(self, public_key: PublicKey) -> None:
        key = _public(public_key)
        self._sm2 = key if isinstance(key, Sm2PublicKey) else None
        self._key = None if self._sm2 is not None else nacl.signing.VerifyKey(raw_public(key))

    def verify(self, signature: bytes, message: bytes) -> None:
        if not self.is_valid(signature, message):
            raise SignatureError("signature does not verify")

    def is_valid(self, signature: bytes, message: bytes) -> bool:
        if self._sm2 is not None:
            return self._sm2.is_valid(signature, message)
        assert self._key is not None
        try:
            self._key.verify(message, signature)
        except (nacl.exceptions.BadSignatureError, ValueError, TypeError):
            return False
        return True


def private_pem(key: PrivateKey) -> bytes:
    """PKCS#8 PEM of a private key of either suite."""
    if isinstance(key, Sm2PrivateKey):
        return sm2.private_key_pem(key)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def public_pem(key: PublicKey) -> bytes:
    """SubjectPublicKeyInfo PEM of a public key of either suite."""
    key = _public(key)
    if isinstance(key, Sm2PublicKey):
        return sm2.public_key_pem(key)
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def write_key_pair(
    path: Path, *, overwrite: bool = False, suite: Suite = DEFAULT_SUITE
) -> PrivateKey:
    """Write ``path`` (PKCS#8 PEM, mode 0600) and ``path.pub`` (SPKI PEM) of a new key of
    ``suite``; return the key."""
    if not isinstance(path, str | os.PathLike):
        raise KeyFileError(f"{path!r} is not a path")
    path = Path(path)
    pub_path = path.with_name(path.name + ".pub")
    if not overwrite and (path.exists() or pub_path.exists()):
        raise KeyFileError(f"{path} already exists; refusing to overwrite a key")
    key = generate_key(suite)
    pem = private_pem(key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        fd = os.open(path, flags, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
        os.chmod(path, 0o600)
        pub_path.write_bytes(public_pem(key.public_key()))
    except OSError as exc:
        raise KeyFileError(f"cannot write key {path}: {exc.strerror}") from None
    return key


def _read_key_file(path: Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except TypeError:
        raise KeyFileError(f"{path!r} is not a path") from None
    except OSError as exc:
        raise KeyFileError(f"cannot read key {path}: {exc.strerror}") from None


def load_private_key(path: Path) -> PrivateKey:
    data = _read_key_file(path)
    if (der := sm2.pem_der(data, "PRIVATE KEY")) is not None and sm2.is_sm2_der(der):
        try:
            return sm2.private_key_from_der(der)
        except KeyFileError as exc:
            raise KeyFileError(f"{path}: {exc}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise KeyFileError(f"{path} is not an unencrypted PEM private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path} holds a {type(key).__name__}, not an Ed25519 or SM2 key")
    return key


def load_public_key(path: Path) -> PublicKey:
    data = _read_key_file(path)
    if (der := sm2.pem_der(data, "PUBLIC KEY")) is not None and sm2.is_sm2_der(der):
        try:
            return sm2.public_key_from_der(der)
        except KeyFileError as exc:
            raise KeyFileError(f"{path}: {exc}") from None
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise KeyFileError(f"{path} is not a PEM public key: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFileError(f"{path} holds a {type(key).__name__}, not an Ed25519 or SM2 key")
    return key
