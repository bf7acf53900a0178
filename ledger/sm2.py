"""SM2 signature keys (GM/T 0003.2, GB/T 32918.2) through gmalglib, and their PEM files.

The classes mirror cryptography's Ed25519 key classes (``sign``, ``public_key``,
``verify`` raising ``InvalidSignature``), so the code that signs or checks notes and
records handles either kind the same way; :mod:`ledger.suite` says which kind a log uses.

- **Signature**: 64 bytes, r || s, each 32 bytes big-endian: the fixed-size form FISCO
  BCOS and most SM2 libraries exchange, and the same length as an Ed25519 signature. (GM/T
  0009 section 7.3 also defines a DER SEQUENCE of the two; it is not used on the wire.)
- **Signed message**: SM3(Z_A || M), where Z_A hashes the signer's distinguishing id, the
  curve and the public key (GM/T 0003.2 section 5.5). The id is GM/T 0009 section 10's
  default ``1234567812345678`` unless the key is made with another.
- **Public key**: the 65-byte uncompressed point 0x04 || x || y (GM/T 0003.1 section 4.2.9).
- **Key files**: PKCS#8 (private, RFC 5958) and SubjectPublicKeyInfo (public, RFC 5480)
  PEM, algorithm id-ecPublicKey with the SM2 curve's OID 1.2.156.10197.1.301 (GM/T 0006),
  as OpenSSL 3 and Tongsuo write and read them.

gmalglib was measured against tongsuopy, gmssl-fast, gmssl_pyx and the pure-Python gmssl
on this project's 2-core machines (bench/suites.py): it signs 3-5x faster than the next,
and verifies at 0.65-0.75x the rate of tongsuopy, whose build reports an OpenSSL 1.1.1h base
from 2020; it is a self-contained C extension with no other dependency. It holds the GIL:
a hub spreads SM2 verification over its front-end processes, not threads.
"""

from __future__ import annotations

import base64
import re

import gmalglib.sm2 as _gm
from cryptography.exceptions import InvalidSignature

from .errors import KeyFileError, SignatureError

#: GM/T 0009-2012 section 10: the signer id when none is agreed.
DEFAULT_ID = b"1234567812345678"
PUBLIC_KEY_BYTES = 65
PRIVATE_KEY_BYTES = 32
SIGNATURE_BYTES = 64

_EC_PUBLIC_KEY_OID = bytes.fromhex("06072a8648ce3d0201")  # 1.2.840.10045.2.1
_SM2_CURVE_OID = bytes.fromhex("06082a811ccf5501822d")  # 1.2.156.10197.1.301
_ALGORITHM = b"\x30" + bytes([len(_EC_PUBLIC_KEY_OID) + len(_SM2_CURVE_OID)])
_ALGORITHM += _EC_PUBLIC_KEY_OID + _SM2_CURVE_OID
#: The field's prime p (GM/T 0003.5 section 2, GB/T 32918.5 section 4).
_P = int.from_bytes(_gm.SM2_PARAMS_P, "big")


class Sm2PublicKey:
    """An SM2 verification key: ``verify(signature, message)`` raises InvalidSignature."""

    __slots__ = ("_point", "_sm2", "distinguishing_id")

    def __init__(self, point: bytes, distinguishing_id: bytes = DEFAULT_ID) -> None:
        if not isinstance(point, bytes) or len(point) != PUBLIC_KEY_BYTES or point[0] != 4:
            raise KeyFileError("an SM2 public key is the 65-byte point 0x04 || x || y")
        # GM/T 0003.1 section 6.2 (public key verification): each coordinate is an element
        # of F_p, in [0, p-1]. gmalglib reduces them mod p, so x + p would pass as x: one
        # point, two spellings, two key ids, and a key that OpenSSL and Tongsuo refuse.
        if int.from_bytes(point[1:33], "big") >= _P or int.from_bytes(point[33:], "big") >= _P:
            raise KeyFileError("not a point on the SM2 curve (a coordinate is not below p)")
        _check_id(distinguishing_id)
        try:
            self._sm2 = _gm.SM2(pk=point, uid=distinguishing_id)
        except ValueError:
            raise KeyFileError("not a point on the SM2 curve") from None
        self._point = point
        self.distinguishing_id = distinguishing_id

    @classmethod
    def from_public_bytes(cls, point: bytes) -> Sm2PublicKey:
        return cls(point)

    def public_bytes_raw(self) -> bytes:
        """The uncompressed point, 0x04 || x || y."""
        return self._point

    def verify(self, signature: bytes, message: bytes) -> None:
        if not self.is_valid(signature, message):
            raise InvalidSignature

    def is_valid(self, signature: bytes, message: bytes) -> bool:
        if not isinstance(signature, bytes) or len(signature) != SIGNATURE_BYTES:
            return False
        if not isinstance(message, bytes):
            return False
        return bool(self._sm2.verify(message, signature))

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Sm2PublicKey)
            and other._point == self._point
            and other.distinguishing_id == self.distinguishing_id
        )

    def __hash__(self) -> int:
        return hash((self._point, self.distinguishing_id))

    def __repr__(self) -> str:
        return f"Sm2PublicKey({self._point[:9].hex()}...)"


class Sm2PrivateKey:
    """An SM2 signing key. ``sign(message)`` is the 64-byte r || s."""

    __slots__ = ("_public", "_scalar", "_sm2")

    def __init__(self, scalar: bytes, distinguishing_id: bytes = DEFAULT_ID) -> None:
        if not isinstance(scalar, bytes) or len(scalar) != PRIVATE_KEY_BYTES:
            raise KeyFileError("an SM2 private key is 32 bytes")
        _check_id(distinguishing_id)
        if not _gm.SM2.is_sk_valid(scalar):
            raise KeyFileError("not an SM2 private key (outside [1, n-2])")
        self._scalar = scalar
        self._sm2 = _gm.SM2(sk=scalar, uid=distinguishing_id)
        self._public = Sm2PublicKey(_gm.SM2.get_pk(scalar), distinguishing_id)

    @classmethod
    def generate(cls) -> Sm2PrivateKey:
        scalar, _ = _gm.SM2().generate_keypair()
        return cls(scalar)

    def private_bytes_raw(self) -> bytes:
        return self._scalar

    def public_key(self) -> Sm2PublicKey:
        return self._public

    def sign(self, message: bytes) -> bytes:
        if not isinstance(message, bytes):
            raise SignatureError("only bytes can be signed")
        return bytes(self._sm2.sign(message))

    def __repr__(self) -> str:
        return "Sm2PrivateKey(...)"


def _check_id(distinguishing_id: object) -> None:
    # Z_A carries the id's length in bits as two bytes (GM/T 0003.2 section 5.5).
    if not isinstance(distinguishing_id, bytes) or not 0 < len(distinguishing_id) < 8192:
        raise KeyFileError("an SM2 distinguishing id is 1 to 8191 bytes")


# -- DER, for the two fixed key-file structures ------------------------------------------


def _der(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        length = bytes([n])
    else:
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(raw)]) + raw
    return bytes([tag]) + length + content


def _read_tlv(data: bytes, at: int) -> tuple[int, bytes, int]:
    """(tag, content, next offset) of the DER element at ``at``; KeyFileError if malformed."""
    if at + 2 > len(data):
        raise KeyFileError("truncated DER")
    tag, first = data[at], data[at + 1]
    at += 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if not 0 < count <= 3 or at + count > len(data):
            raise KeyFileError("bad DER length")
        length = int.from_bytes(data[at : at + count], "big")
        at += count
    if at + length > len(data):
        raise KeyFileError("truncated DER")
    return tag, data[at : at + length], at + length


def _elements(content: bytes) -> list[tuple[int, bytes]]:
    out, at = [], 0
    while at < len(content):
        tag, value, at = _read_tlv(content, at)
        out.append((tag, value))
    return out


def _sequence(data: bytes, what: str) -> list[tuple[int, bytes]]:
    tag, content, end = _read_tlv(data, 0)
    if tag != 0x30 or end != len(data):
        raise KeyFileError(f"{what} is not one DER SEQUENCE")
    return _elements(content)


def _check_algorithm(tag: int, value: bytes, what: str) -> None:
    if tag != 0x30 or value != _ALGORITHM[2:]:
        raise KeyFileError(f"{what} is not an SM2 key (id-ecPublicKey, curve 1.2.156.10197.1.301)")


def private_key_der(key: Sm2PrivateKey) -> bytes:
    """PKCS#8 PrivateKeyInfo holding the RFC 5915 ECPrivateKey with its public key."""
    point = key.public_key().public_bytes_raw()
    ec_private = _der(
        0x30,
        _der(0x02, b"\x01")
        + _der(0x04, key.private_bytes_raw())
        + _der(0xA1, _der(0x03, b"\x00" + point)),
    )
    return _der(0x30, _der(0x02, b"\x00") + _ALGORITHM + _der(0x04, ec_private))


def public_key_der(key: Sm2PublicKey) -> bytes:
    """SubjectPublicKeyInfo (RFC 5480 section 2)."""
    return _der(0x30, _ALGORITHM + _der(0x03, b"\x00" + key.public_bytes_raw()))


def private_key_from_der(data: bytes) -> Sm2PrivateKey:
    parts = _sequence(data, "a PKCS#8 private key")
    if len(parts) < 3 or parts[0] != (0x02, b"\x00") or parts[2][0] != 0x04:
        raise KeyFileError("not a PKCS#8 private key")
    _check_algorithm(*parts[1], what="the private key")
    inner = _sequence(parts[2][1], "an EC private key")
    if len(inner) < 2 or inner[0] != (0x02, b"\x01") or inner[1][0] != 0x04:
        raise KeyFileError("not an RFC 5915 EC private key")
    scalar = inner[1][1].rjust(PRIVATE_KEY_BYTES, b"\x00")
    key = Sm2PrivateKey(scalar)
    for tag, value in inner[2:]:
        if tag == 0xA1:  # the public key, when present, must be this key's
            bit_tag, bits, _ = _read_tlv(value, 0)
            if bit_tag != 0x03 or bits != b"\x00" + key.public_key().public_bytes_raw():
                raise KeyFileError("the private key's public key does not match it")
    return key


def public_key_from_der(data: bytes) -> Sm2PublicKey:
    parts = _sequence(data, "a public key")
    if len(parts) != 2 or parts[1][0] != 0x03 or parts[1][1][:1] != b"\x00":
        raise KeyFileError("not a SubjectPublicKeyInfo")
    _check_algorithm(*parts[0], what="the public key")
    return Sm2PublicKey(parts[1][1][1:])


def _pem(label: str, der: bytes) -> bytes:
    body = base64.encodebytes(der).decode().replace("\n", "")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    text = "\n".join([f"-----BEGIN {label}-----", *lines, f"-----END {label}-----"])
    return (text + "\n").encode()


def private_key_pem(key: Sm2PrivateKey) -> bytes:
    return _pem("PRIVATE KEY", private_key_der(key))


def public_key_pem(key: Sm2PublicKey) -> bytes:
    return _pem("PUBLIC KEY", public_key_der(key))


def pem_der(data: bytes, label: str) -> bytes | None:
    """The DER inside ``data``'s PEM block of ``label``, or None if there is none."""
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        return None
    # RFC 7468 section 2: a file may hold other blocks before the key (a PUBLIC KEY, the
    # "SM2 PARAMETERS" of ``openssl ecparam -genkey``); take the first of ``label``, as
    # OpenSSL's PEM reader does.
    match = re.search(
        rf"-----BEGIN {re.escape(label)}-----\s*(?P<body>[A-Za-z0-9+/=\s]+?)\s*"
        rf"-----END {re.escape(label)}-----",
        text,
    )
    if match is None:
        return None
    try:
        return base64.b64decode("".join(match["body"].split()), validate=True)
    except ValueError:
        return None


def is_sm2_der(der: bytes) -> bool:
    """Whether a key file's DER names the SM2 curve (cheap sniff before a full parse)."""
    return _SM2_CURVE_OID in der
