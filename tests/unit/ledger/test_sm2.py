"""SM2 signatures (GM/T 0003.2) and SM2 key files through ledger.sm2.

The worked example is GM/T 0003.5-2012 Annex A.2 (GB/T 32918.5-2017 Appendix A): a
signature on the recommended curve, with every intermediate value. (GM/T 0003.2's own
Annex A works on an example curve, not the one SM2 uses.) Z_A, e, the public key and r, s
are also recomputed here from the formulas with plain integers, so that the example checks
the formulas as well as gmalglib.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

import gmalglib.sm2
import pytest
from cryptography.exceptions import InvalidSignature

from ledger import sm2
from ledger.errors import KeyFileError, SignatureError
from ledger.hashing import sm3_digest
from ledger.keys import load_private_key, load_public_key
from ledger.sm2 import DEFAULT_ID, Sm2PrivateKey, Sm2PublicKey

h = bytes.fromhex

# -- GM/T 0003.5-2012 section 2 (GB/T 32918.5-2017 section 4): the recommended curve -----
P = int("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF", 16)
A = int("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC", 16)
B = int("28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93", 16)
N = int("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123", 16)
GX = int("32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7", 16)
GY = int("BC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0", 16)

# -- GM/T 0003.5-2012 Annex A.2: the signature example ------------------------------------
D = h("3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8")
XA = h("09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020")
YA = h("CCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13")
ID = b"1234567812345678"
MESSAGE = b"message digest"
ZA = h("B2E14C5C79C6DF5B85F4FE7ED8DB7A262B9DA7E07CCB0EA9F4747B8CCDA8A4F3")
E = h("F0B43E94BA45ACCAACE692ED534382EB17E6AB5A19CE7B31F4486FDFC0D28640")
K = h("59276E27D506861A16680F3AD9C02DCCEF3CC1FA3CDBE4CE6D54B80DEAC1BC21")
R = h("F5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3")
S = h("B1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA")
POINT = b"\x04" + XA + YA
SIGNATURE = R + S

Point = tuple[int, int] | None  # None: the point at infinity


def _add(p1: Point, p2: Point) -> Point:
    """Affine point addition on y^2 = x^3 + ax + b over F_p (GM/T 0003.1 section 3.2.3)."""
    if p1 is None:
        return p2
    if p2 is None:
        return p1
    (x1, y1), (x2, y2) = p1, p2
    if x1 == x2 and (y1 + y2) % P == 0:
        return None
    if p1 == p2:
        slope = (3 * x1 * x1 + A) * pow(2 * y1, -1, P) % P
    else:
        slope = (y2 - y1) * pow(x2 - x1, -1, P) % P
    x3 = (slope * slope - x1 - x2) % P
    return x3, (slope * (x1 - x3) - y1) % P


def _mul(k: int, point: Point) -> Point:
    out: Point = None
    while k:
        if k & 1:
            out = _add(out, point)
        point = _add(point, point)
        k >>= 1
    return out


def _int(raw: bytes) -> int:
    return int.from_bytes(raw, "big")


def _b32(n: int) -> bytes:
    return n.to_bytes(32, "big")


def _za(uid: bytes, point: bytes) -> bytes:
    """GM/T 0003.2 section 5.5: Z_A = SM3(ENTL_A || ID_A || a || b || x_G || y_G || x_A || y_A),
    ENTL_A being ID_A's length in bits as two bytes."""
    entl = (len(uid) * 8).to_bytes(2, "big")
    return sm3_digest(entl + uid + _b32(A) + _b32(B) + _b32(GX) + _b32(GY) + point[1:])


def _sign_with(d: int, k: int, e: int) -> bytes:
    """GM/T 0003.2 section 6.1, steps A4-A6, for a given k."""
    kg = _mul(k, (GX, GY))
    assert kg is not None
    r = (e + kg[0]) % N
    s = pow(1 + d, -1, N) * (k - r * d) % N
    return _b32(r) + _b32(s)


def _verify(point: bytes, e: int, signature: bytes) -> bool:
    """GM/T 0003.2 section 7.1, steps B5-B7."""
    r, s = _int(signature[:32]), _int(signature[32:])
    if not (0 < r < N and 0 < s < N) or (r + s) % N == 0:
        return False
    sum_ = _add(_mul(s, (GX, GY)), _mul((r + s) % N, (_int(point[1:33]), _int(point[33:]))))
    return sum_ is not None and (e + sum_[0]) % N == r


def _flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 0x80 >> (bit % 8)
    return bytes(out)


# -- the worked example -------------------------------------------------------------------


def test_curve_parameters_are_gmalglibs() -> None:
    assert gmalglib.sm2.SM2_PARAMS_P == _b32(P)
    assert gmalglib.sm2.SM2_PARAMS_A == _b32(A)
    assert gmalglib.sm2.SM2_PARAMS_B == _b32(B)
    assert gmalglib.sm2.SM2_PARAMS_G == (_b32(GX), _b32(GY))
    assert gmalglib.sm2.SM2_PARAMS_N == _b32(N)
    assert (GY * GY - GX**3 - A * GX - B) % P == 0
    assert _mul(N, (GX, GY)) is None


def test_public_key_of_the_example() -> None:
    key = Sm2PrivateKey(D)
    assert key.private_bytes_raw() == D
    assert key.public_key().public_bytes_raw() == POINT
    assert key.public_key() == Sm2PublicKey(POINT)
    assert _mul(_int(D), (GX, GY)) == (_int(XA), _int(YA))


def test_za_and_e_of_the_example() -> None:
    assert ID == DEFAULT_ID
    assert _za(ID, POINT) == ZA
    assert sm3_digest(ZA + MESSAGE) == E
    assert gmalglib.sm2.SM2(pk=POINT).get_entity_info() == ZA


def test_the_example_signature_verifies() -> None:
    public = Sm2PublicKey(POINT)
    public.verify(SIGNATURE, MESSAGE)
    assert public.is_valid(SIGNATURE, MESSAGE)
    assert Sm2PrivateKey(D).public_key().is_valid(SIGNATURE, MESSAGE)
    assert _verify(POINT, _int(E), SIGNATURE)
    assert not _verify(POINT, _int(E), _flip(SIGNATURE, 255))
    assert not _verify(POINT, _int(E), _flip(SIGNATURE, 256))
    assert not _verify(POINT, _int(sm3_digest(ZA + MESSAGE + b"!")), SIGNATURE)


def test_the_formulas_with_k_reproduce_r_and_s() -> None:
    assert _sign_with(_int(D), _int(K), _int(E)) == SIGNATURE


def test_gmalglib_with_k_reproduces_r_and_s() -> None:
    """gmalglib takes k from ``rnd_fn``, but reads its 32 bytes little-endian (it loads
    them straight into its word array), so the standard's k goes in byte-reversed."""
    calls: list[int] = []

    def rnd(n: int) -> bytes:
        calls.append(n)
        return K[::-1]

    signer = gmalglib.sm2.SM2(sk=D, uid=ID, rnd_fn=rnd)
    assert signer.sign(MESSAGE) == SIGNATURE
    assert signer.sign_digest(E) == SIGNATURE
    assert calls == [32, 32]
    # Fed big-endian, it signs with another k: still valid, but not the example's.
    other = gmalglib.sm2.SM2(sk=D, uid=ID, rnd_fn=lambda n: K).sign(MESSAGE)
    assert other != SIGNATURE
    assert Sm2PublicKey(POINT).is_valid(other, MESSAGE)


@pytest.mark.parametrize("bit", [0, 1, 7, 100, 255])
def test_a_flipped_bit_in_r_or_s_fails(bit: int) -> None:
    public = Sm2PublicKey(POINT)
    for bad in (_flip(SIGNATURE, bit), _flip(SIGNATURE, 256 + bit)):
        assert not public.is_valid(bad, MESSAGE)
        with pytest.raises(InvalidSignature):
            public.verify(bad, MESSAGE)


def test_a_flipped_bit_in_the_message_fails() -> None:
    public = Sm2PublicKey(POINT)
    for bit in range(len(MESSAGE) * 8):
        assert not public.is_valid(SIGNATURE, _flip(MESSAGE, bit))
    for other in (b"", MESSAGE + b"\x00", MESSAGE[:-1], E):
        assert not public.is_valid(SIGNATURE, other)


def test_another_key_fails() -> None:
    # A flipped bit in the private key is another key pair, whose public key rejects it.
    for bit in (0, 128, 255):
        other = Sm2PrivateKey(_flip(D, bit)).public_key()
        assert not other.is_valid(SIGNATURE, MESSAGE)
    # A flipped bit in the point is (all but always) not a point on the curve at all.
    for bit in range(8, 8 * 65, 37):
        with pytest.raises(KeyFileError, match="not a point on the SM2 curve"):
            Sm2PublicKey(_flip(POINT, bit))
    # The same point under another distinguishing id has another Z_A.
    assert not Sm2PublicKey(POINT, b"another signer").is_valid(SIGNATURE, MESSAGE)


# -- signing ------------------------------------------------------------------------------


def test_sign_is_randomised_and_verifies() -> None:
    key = Sm2PrivateKey.generate()
    first, second = key.sign(MESSAGE), key.sign(MESSAGE)
    assert len(first) == len(second) == sm2.SIGNATURE_BYTES
    assert first != second
    point = key.public_key().public_bytes_raw()
    e = _int(sm3_digest(_za(DEFAULT_ID, point) + MESSAGE))
    for signature in (first, second):
        key.public_key().verify(signature, MESSAGE)
        assert _verify(point, e, signature)  # checked by the formulas, not gmalglib


def test_messages_of_any_size() -> None:
    key = Sm2PrivateKey(D)
    for message in (b"", b"\x00", bytes(range(256)) * 256):
        assert key.public_key().is_valid(key.sign(message), message)


def test_another_distinguishing_id() -> None:
    uid = b"station-17@swiftchain"
    key = Sm2PrivateKey(D, uid)
    assert key.public_key().distinguishing_id == uid
    assert key.public_key() != Sm2PublicKey(POINT)
    signature = key.sign(MESSAGE)
    assert Sm2PublicKey(POINT, uid).is_valid(signature, MESSAGE)
    assert not Sm2PublicKey(POINT).is_valid(signature, MESSAGE)
    e = _int(sm3_digest(_za(uid, POINT) + MESSAGE))
    assert _verify(POINT, e, signature)
    assert not _verify(POINT, _int(E), signature)


@pytest.mark.parametrize("uid", [b"", b"x" * 8192, "1234567812345678", None])
def test_distinguishing_id_bounds(uid: object) -> None:
    with pytest.raises(KeyFileError, match="distinguishing id"):
        Sm2PublicKey(POINT, uid)  # type: ignore[arg-type]
    with pytest.raises(KeyFileError, match="distinguishing id"):
        Sm2PrivateKey(D, uid)  # type: ignore[arg-type]


def test_the_longest_distinguishing_id() -> None:
    uid = b"x" * 8191  # ENTL is 16 bits: 8191 bytes is 65528 bits
    signature = Sm2PrivateKey(D, uid).sign(MESSAGE)
    assert Sm2PublicKey(POINT, uid).is_valid(signature, MESSAGE)
    assert _verify(POINT, _int(sm3_digest(_za(uid, POINT) + MESSAGE)), signature)


def test_only_bytes_are_signed() -> None:
    key = Sm2PrivateKey(D)
    for bad in ("message digest", bytearray(MESSAGE), None):
        with pytest.raises(SignatureError):
            key.sign(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "scalar",
    [bytes(32), _b32(N - 1), _b32(N), _b32(N + 1), b"\xff" * 32, D[:31], D + b"\x00", b""],
    ids=["zero", "n-1", "n", "n+1", "2^256-1", "31 bytes", "33 bytes", "empty"],
)
def test_private_scalar_outside_1_to_n_minus_2(scalar: bytes) -> None:
    with pytest.raises(KeyFileError):
        Sm2PrivateKey(scalar)


def test_private_scalar_bounds_inside() -> None:
    for d in (1, 2, N - 2):
        key = Sm2PrivateKey(_b32(d))
        point = _mul(d, (GX, GY))
        assert point is not None
        assert key.public_key().public_bytes_raw() == b"\x04" + _b32(point[0]) + _b32(point[1])
        assert key.public_key().is_valid(key.sign(MESSAGE), MESSAGE)
    with pytest.raises(KeyFileError):
        Sm2PrivateKey(D.hex())  # type: ignore[arg-type]


# -- public keys and signatures that are not ----------------------------------------------


def _small_x_point() -> tuple[int, int]:
    """A curve point whose x is small enough that x + p still fits in 32 bytes."""
    for x in range(1, 100):
        rhs = (x**3 + A * x + B) % P
        y = pow(rhs, (P + 1) // 4, P)  # p = 3 mod 4
        if y * y % P == rhs:
            return x, y
    raise AssertionError("no small x on the curve")


def test_coordinates_at_or_above_p_are_not_a_point() -> None:
    x, y = _small_x_point()
    canonical = b"\x04" + _b32(x) + _b32(y)
    Sm2PublicKey(canonical)
    assert gmalglib.sm2.SM2.is_pk_valid(b"\x04" + _b32(x + P) + _b32(y))  # why the check
    for bad in (
        b"\x04" + _b32(x + P) + _b32(y),
        b"\x04" + _b32(P) + _b32(y),
        b"\x04" + _b32(x) + _b32(P),
        b"\x04" + b"\xff" * 64,
    ):
        with pytest.raises(KeyFileError, match="not a point on the SM2 curve"):
            Sm2PublicKey(bad)


@pytest.mark.parametrize(
    "point",
    [
        POINT[:-1] + bytes([POINT[-1] ^ 1]),  # y off by one
        b"\x04" + XA + _b32(P - _int(YA) + 1),
        b"\x04" + bytes(64),  # (0, 0)
        b"\x04" + _b32(GX) + _b32(GX),
    ],
    ids=["y^1", "-y+1", "zero", "x,x"],
)
def test_points_not_on_the_curve(point: bytes) -> None:
    with pytest.raises(KeyFileError, match="not a point on the SM2 curve"):
        Sm2PublicKey(point)


def test_the_negated_point_is_a_point_but_not_the_key() -> None:
    negated = Sm2PublicKey(b"\x04" + XA + _b32(P - _int(YA)))
    assert not negated.is_valid(SIGNATURE, MESSAGE)


@pytest.mark.parametrize(
    "point",
    [
        b"",
        b"\x00",  # the point at infinity, as SEC 1 writes it
        (b"\x02" if _int(YA) % 2 == 0 else b"\x03") + XA,  # compressed: GM/T allows, we do not
        b"\x06" + XA + YA,  # hybrid
        b"\x07" + XA + YA,
        XA + YA,
        POINT + b"\x00",
        POINT[:-1],
    ],
    ids=["empty", "infinity", "compressed", "hybrid6", "hybrid7", "64", "66", "64+04"],
)
def test_public_key_lengths_and_forms(point: bytes) -> None:
    with pytest.raises(KeyFileError, match="65-byte point"):
        Sm2PublicKey(point)


def test_public_key_of_other_types() -> None:
    for bad in (bytearray(POINT), POINT.hex(), None, memoryview(POINT)):
        with pytest.raises(KeyFileError):
            Sm2PublicKey(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "signature",
    [
        b"",
        SIGNATURE[:63],
        SIGNATURE + b"\x00",
        b"\x00" + SIGNATURE,
        bytes(64),
        R + bytes(32),  # s = 0
        bytes(32) + S,  # r = 0
        _b32(N) + S,  # r = n
        R + _b32(N),  # s = n
        R + _b32(N - _int(R)),  # r + s = n
        b"\xff" * 64,
    ],
    ids=["empty", "63", "65", "0||sig", "zeros", "s=0", "r=0", "r=n", "s=n", "r+s=n", "ff"],
)
def test_malformed_signatures_are_just_invalid(signature: bytes) -> None:
    public = Sm2PublicKey(POINT)
    assert not public.is_valid(signature, MESSAGE)
    with pytest.raises(InvalidSignature):
        public.verify(signature, MESSAGE)


def test_signatures_and_messages_of_other_types_are_just_invalid() -> None:
    public = Sm2PublicKey(POINT)
    for signature, message in (
        (bytearray(SIGNATURE), MESSAGE),
        (SIGNATURE.hex(), MESSAGE),
        (None, MESSAGE),
        (SIGNATURE, MESSAGE.decode()),
        (SIGNATURE, None),
    ):
        assert not public.is_valid(signature, message)  # type: ignore[arg-type]
        with pytest.raises(InvalidSignature):
            public.verify(signature, message)  # type: ignore[arg-type]


def test_public_key_equality_and_repr() -> None:
    a, b = Sm2PublicKey(POINT), Sm2PublicKey.from_public_bytes(POINT)
    assert a == b and hash(a) == hash(b)
    assert a != POINT
    assert len({a, b, Sm2PublicKey(POINT, b"other")}) == 2
    assert XA.hex()[:8] in repr(a)
    assert D.hex() not in repr(Sm2PrivateKey(D)) and "..." in repr(Sm2PrivateKey(D))


# -- key files ----------------------------------------------------------------------------


def _der_of(pem: bytes, label: str) -> bytes:
    der = sm2.pem_der(pem, label)
    assert der is not None
    return der


def test_pem_round_trip() -> None:
    key = Sm2PrivateKey(D)
    private_pem, public_pem = sm2.private_key_pem(key), sm2.public_key_pem(key.public_key())
    assert private_pem.startswith(b"-----BEGIN PRIVATE KEY-----\n")
    assert private_pem.endswith(b"-----END PRIVATE KEY-----\n")
    assert all(len(line) <= 64 for line in private_pem.splitlines())
    assert public_pem.startswith(b"-----BEGIN PUBLIC KEY-----\n")
    loaded = sm2.private_key_from_der(_der_of(private_pem, "PRIVATE KEY"))
    assert loaded.private_bytes_raw() == D
    assert sm2.public_key_from_der(_der_of(public_pem, "PUBLIC KEY")) == key.public_key()
    assert sm2.is_sm2_der(sm2.private_key_der(key)) and sm2.is_sm2_der(
        sm2.public_key_der(key.public_key())
    )


def test_spki_is_rfc_5480s() -> None:
    # SEQUENCE { SEQUENCE { id-ecPublicKey, sm2p256v1 }, BIT STRING { 0 unused bits, point } }
    spki = h("3059301306072a8648ce3d020106082a811ccf5501822d034200") + POINT
    assert sm2.public_key_der(Sm2PublicKey(POINT)) == spki


def test_pkcs8_is_rfc_5915_inside_rfc_5958() -> None:
    pkcs8 = (
        h("308187020100301306072a8648ce3d020106082a811ccf5501822d046d306b0201010420")
        + D
        + h("a144034200")
        + POINT
    )
    assert sm2.private_key_der(Sm2PrivateKey(D)) == pkcs8


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


_SPKI = sm2.public_key_der(Sm2PublicKey(POINT))
_PKCS8 = sm2.private_key_der(Sm2PrivateKey(D))
_P256_OID = h("06082a8648ce3d030107")  # prime256v1, as long as the SM2 curve's OID
_SM2_OID = h("06082a811ccf5501822d")
_EC_OID = h("06072a8648ce3d0201")
_OTHER_OID = h("06072a864886f70d01")  # 1.2.840.113549.1 (PKCS), as long as id-ecPublicKey


def _pem(label: str, der: bytes) -> bytes:
    body = base64.encodebytes(der).decode().replace("\n", "")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return "\n".join([f"-----BEGIN {label}-----", *lines, f"-----END {label}-----", ""]).encode()


def _other_point() -> bytes:
    return Sm2PrivateKey(_b32(7)).public_key().public_bytes_raw()


BAD_PRIVATE = {
    "curve OID of P-256": _PKCS8.replace(_SM2_OID, _P256_OID),
    "not id-ecPublicKey": _PKCS8.replace(_EC_OID, _OTHER_OID),
    "mismatched public key": _PKCS8.replace(POINT, _other_point()),
    "public key with unused bits": _PKCS8.replace(h("034200") + POINT, h("034205") + POINT),
    "public key not a BIT STRING": _PKCS8.replace(h("034200") + POINT, h("044200") + POINT),
    "version 5": _PKCS8.replace(h("020100"), h("020105"), 1),
    "EC version 2": _PKCS8.replace(h("0201010420"), h("0201020420")),
    "scalar zero": _PKCS8.replace(D, bytes(32)),
    "scalar n": _PKCS8.replace(D, _b32(N)),
    "trailing byte": _PKCS8 + b"\x00",
    "a public key": _SPKI,
    "empty": b"",
}


@pytest.mark.parametrize("der", BAD_PRIVATE.values(), ids=BAD_PRIVATE.keys())
def test_bad_private_key_files(tmp_path: Path, der: bytes) -> None:
    path = _write(tmp_path / "bad.key", _pem("PRIVATE KEY", der))
    with pytest.raises(KeyFileError, match=re.escape(str(path))):
        load_private_key(path)


def test_bad_private_key_messages(tmp_path: Path) -> None:
    cases = {
        "mismatched public key": "public key does not match",
        "public key with unused bits": "public key does not match",
        "not id-ecPublicKey": "not an SM2 key",
        "version 5": "not a PKCS#8 private key",
        "EC version 2": "not an RFC 5915 EC private key",
        "scalar zero": r"outside \[1, n-2\]",
        "trailing byte": "not one DER SEQUENCE",
    }
    for name, message in cases.items():
        path = _write(tmp_path / "bad.key", _pem("PRIVATE KEY", BAD_PRIVATE[name]))
        with pytest.raises(KeyFileError, match=message):
            load_private_key(path)


BAD_PUBLIC = {
    "curve OID of P-256": _SPKI.replace(_SM2_OID, _P256_OID),
    "not id-ecPublicKey": _SPKI.replace(_EC_OID, _OTHER_OID),
    "not on the curve": _SPKI[:-1] + bytes([_SPKI[-1] ^ 1]),
    "compressed point": h("3039301306072a8648ce3d020106082a811ccf5501822d032200")
    + (b"\x02" if _int(YA) % 2 == 0 else b"\x03")
    + XA,
    "unused bits": _SPKI.replace(h("034200"), h("034201")),
    "trailing byte": _SPKI + b"\x00",
    "extra element": _SPKI.replace(h("3059"), h("305b"), 1) + h("0500"),
    "a private key": _PKCS8,
}


@pytest.mark.parametrize("der", BAD_PUBLIC.values(), ids=BAD_PUBLIC.keys())
def test_bad_public_key_files(tmp_path: Path, der: bytes) -> None:
    path = _write(tmp_path / "bad.pub", _pem("PUBLIC KEY", der))
    with pytest.raises(KeyFileError, match=re.escape(str(path))):
        load_public_key(path)


def test_every_truncation_of_a_key_file_is_refused(tmp_path: Path) -> None:
    for cut in range(len(_PKCS8)):
        with pytest.raises(KeyFileError):
            sm2.private_key_from_der(_PKCS8[:cut])
    for cut in range(len(_SPKI)):
        with pytest.raises(KeyFileError):
            sm2.public_key_from_der(_SPKI[:cut])
    # Through the file loaders too (a cut before the curve's OID goes to cryptography's).
    for cut in [*range(0, len(_PKCS8), 5), len(_PKCS8) - 1]:
        with pytest.raises(KeyFileError):
            load_private_key(_write(tmp_path / "cut.key", _pem("PRIVATE KEY", _PKCS8[:cut])))
    for cut in [*range(0, len(_SPKI), 5), len(_SPKI) - 1]:
        with pytest.raises(KeyFileError):
            load_public_key(_write(tmp_path / "cut.pub", _pem("PUBLIC KEY", _SPKI[:cut])))


@pytest.mark.parametrize(
    "text",
    [
        b"-----BEGIN PRIVATE KEY-----\nnot base64 !!\n-----END PRIVATE KEY-----\n",
        b"-----BEGIN PRIVATE KEY-----\n"
        + base64.b64encode(_PKCS8)[:-3]
        + b"\n-----END PRIVATE KEY-----\n",
        b"-----BEGIN PRIVATE KEY-----\n"
        + base64.b64encode(_PKCS8)
        + b"\n-----END PUBLIC KEY-----\n",
        b"-----BEGIN PRIVATE KEY-----\n" + base64.b64encode(_PKCS8) + b"\n",
        _pem("PRIVATE KEY", _PKCS8).replace(b"M", b"\xd0\x9c", 1),
        _pem("EC PRIVATE KEY", _PKCS8),
        base64.b64encode(_PKCS8),
        _PKCS8,
        b"\x00\xff" * 50,
    ],
    ids=[
        "not-base64",
        "cut-base64",
        "mismatched-end",
        "no-end",
        "non-ascii",
        "label",
        "bare",
        "der",
        "junk",
    ],
)
def test_garbage_pem_is_refused(tmp_path: Path, text: bytes) -> None:
    with pytest.raises(KeyFileError):
        load_private_key(_write(tmp_path / "bad.key", text))


def test_pem_der_finds_its_block_among_others() -> None:
    key = Sm2PrivateKey(D)
    private_pem, public_pem = sm2.private_key_pem(key), sm2.public_key_pem(key.public_key())
    # OpenSSL 3's `ecparam -name SM2 -genkey` writes the curve before the key.
    params = b"-----BEGIN SM2 PARAMETERS-----\nBggqgRzPVQGCLQ==\n-----END SM2 PARAMETERS-----\n"
    ec_params = params.replace(b"SM2 PARAMETERS", b"EC PARAMETERS")
    for before in (params, ec_params, public_pem, b"a comment line\n"):
        both = before + private_pem
        assert sm2.pem_der(both, "PRIVATE KEY") == sm2.private_key_der(key)
    assert sm2.pem_der(private_pem + public_pem, "PUBLIC KEY") == sm2.public_key_der(
        key.public_key()
    )
    assert sm2.pem_der(public_pem, "PRIVATE KEY") is None
    assert sm2.pem_der(b"\xff" + private_pem, "PRIVATE KEY") is None


def test_a_key_file_with_other_blocks_first_loads(tmp_path: Path) -> None:
    key = Sm2PrivateKey(D)
    both = sm2.public_key_pem(key.public_key()) + sm2.private_key_pem(key)
    loaded = load_private_key(_write(tmp_path / "both.pem", both))
    assert isinstance(loaded, Sm2PrivateKey) and loaded.private_bytes_raw() == D
    public = load_public_key(tmp_path / "both.pem")
    assert public == key.public_key()
