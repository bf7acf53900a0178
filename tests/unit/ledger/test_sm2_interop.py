"""ledger.sm2 against implementations that share none of its code: tongsuopy (Tongsuo, ex-
BabaSSL) and, when it is installed with SM2, the OpenSSL 3 command line.

Keys and signatures cross both ways: ledger's PEM files load there and theirs load here;
ledger's 64-byte r || s, DER-encoded as GM/T 0009 section 7.3's SEQUENCE of two INTEGERs,
verifies there, and theirs, decoded, verifies here. Both sides use GM/T 0009's default id
``1234567812345678`` in Z_A.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from tongsuopy.crypto import hashes as ts_hashes  # type: ignore[import-untyped]
from tongsuopy.crypto import serialization as ts_serialization
from tongsuopy.crypto.asymciphers import ec as ts_ec  # type: ignore[import-untyped]
from tongsuopy.crypto.exceptions import (  # type: ignore[import-untyped]
    InvalidSignature as TsInvalidSignature,
)

from ledger import sm2
from ledger.errors import KeyFileError
from ledger.keys import key_id, load_private_key, load_public_key, write_key_pair
from ledger.sm2 import DEFAULT_ID, Sm2PrivateKey, Sm2PublicKey
from ledger.suite import SM2_SM3
from tests.unit.ledger.test_sm2 import MESSAGE, POINT, SIGNATURE, D, P, _b32, _small_x_point

MESSAGES = [b"", b"\x00", MESSAGE, bytes(range(256)), b"\xa5" * 65536]
SM3_ECDSA = ts_ec.ECDSA(ts_hashes.SM3())


def to_der(signature: bytes) -> bytes:
    return encode_dss_signature(
        int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    )


def from_der(der: bytes) -> bytes:
    r, s = decode_dss_signature(der)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def ts_point(key: object) -> bytes:
    return bytes(
        key.public_bytes(  # type: ignore[attr-defined]
            ts_serialization.Encoding.X962, ts_serialization.PublicFormat.UncompressedPoint
        )
    )


def ts_private_pem(key: object) -> bytes:
    return bytes(
        key.private_bytes(  # type: ignore[attr-defined]
            ts_serialization.Encoding.PEM,
            ts_serialization.PrivateFormat.PKCS8,
            ts_serialization.NoEncryption(),
        )
    )


def ts_public_pem(key: object) -> bytes:
    return bytes(
        key.public_bytes(  # type: ignore[attr-defined]
            ts_serialization.Encoding.PEM, ts_serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


# -- tongsuopy ----------------------------------------------------------------------------


def test_tongsuo_verifies_the_standards_example() -> None:
    """Tongsuo's SM2 is GM/T 0003.2's, Z_A and all: the worked example checks there too."""
    public = ts_ec.EllipticCurvePublicKey.from_encoded_point(ts_ec.SM2(), POINT)
    public.verify(to_der(SIGNATURE), MESSAGE, SM3_ECDSA)
    with pytest.raises(TsInvalidSignature):
        public.verify(to_der(SIGNATURE), MESSAGE + b"!", SM3_ECDSA)
    derived = ts_ec.derive_private_key(int.from_bytes(D, "big"), ts_ec.SM2())
    assert ts_point(derived.public_key()) == POINT


def test_our_key_files_load_in_tongsuo(tmp_path: Path) -> None:
    key = write_key_pair(tmp_path / "station.key", suite=SM2_SM3)
    assert isinstance(key, Sm2PrivateKey)
    theirs = ts_serialization.load_pem_private_key(
        (tmp_path / "station.key").read_bytes(), password=None
    )
    assert theirs.curve.name == "SM2"
    assert theirs.private_numbers().private_value == int.from_bytes(key.private_bytes_raw(), "big")
    assert ts_point(theirs.public_key()) == key.public_key().public_bytes_raw()
    their_public = ts_serialization.load_pem_public_key((tmp_path / "station.key.pub").read_bytes())
    assert ts_point(their_public) == key.public_key().public_bytes_raw()
    # And the in-memory writers, byte for byte what Tongsuo writes of the same key.
    fixed = Sm2PrivateKey(D)
    loaded = ts_serialization.load_pem_private_key(sm2.private_key_pem(fixed), password=None)
    assert ts_private_pem(loaded) == sm2.private_key_pem(fixed)
    assert ts_public_pem(loaded.public_key()) == sm2.public_key_pem(fixed.public_key())


def test_tongsuos_key_files_load_here(tmp_path: Path) -> None:
    theirs = ts_ec.generate_private_key(ts_ec.SM2())
    (tmp_path / "t.key").write_bytes(ts_private_pem(theirs))
    (tmp_path / "t.pub").write_bytes(ts_public_pem(theirs.public_key()))
    key = load_private_key(tmp_path / "t.key")
    public = load_public_key(tmp_path / "t.pub")
    assert isinstance(key, Sm2PrivateKey) and isinstance(public, Sm2PublicKey)
    assert key.private_bytes_raw() == theirs.private_numbers().private_value.to_bytes(32, "big")
    assert public == key.public_key()
    assert public.public_bytes_raw() == ts_point(theirs.public_key())
    assert key_id(public) == SM2_SM3.digest(ts_point(theirs.public_key()))[:8].hex()


@pytest.fixture(scope="module")
def pair() -> tuple[Sm2PrivateKey, object]:
    """One key, as ledger.sm2 and as tongsuopy hold it."""
    ours = Sm2PrivateKey.generate()
    return ours, ts_serialization.load_pem_private_key(sm2.private_key_pem(ours), password=None)


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: f"{len(m)}B")
def test_our_signatures_verify_in_tongsuo(
    pair: tuple[Sm2PrivateKey, object], message: bytes
) -> None:
    ours, theirs = pair
    signature = ours.sign(message)
    public = theirs.public_key()  # type: ignore[attr-defined]
    public.verify(to_der(signature), message, SM3_ECDSA)
    with pytest.raises(TsInvalidSignature):
        public.verify(to_der(signature), message + b"\x00", SM3_ECDSA)
    bad = bytes([signature[0] ^ 1]) + signature[1:]
    with pytest.raises(TsInvalidSignature):
        public.verify(to_der(bad), message, SM3_ECDSA)


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: f"{len(m)}B")
def test_tongsuos_signatures_verify_here(
    pair: tuple[Sm2PrivateKey, object], message: bytes
) -> None:
    ours, theirs = pair
    signature = from_der(theirs.sign(message, SM3_ECDSA))  # type: ignore[attr-defined]
    assert len(signature) == sm2.SIGNATURE_BYTES
    ours.public_key().verify(signature, message)
    assert not ours.public_key().is_valid(signature, message + b"\x00")
    assert not ours.public_key().is_valid(signature[:32] + bytes(32), message)


def test_a_coordinate_not_below_p_is_refused_by_both() -> None:
    x, y = _small_x_point()
    canonical, unreduced = b"\x04" + _b32(x) + _b32(y), b"\x04" + _b32(x + P) + _b32(y)
    ts_ec.EllipticCurvePublicKey.from_encoded_point(ts_ec.SM2(), canonical)
    Sm2PublicKey(canonical)
    with pytest.raises(ValueError):
        ts_ec.EllipticCurvePublicKey.from_encoded_point(ts_ec.SM2(), unreduced)
    with pytest.raises(KeyFileError):
        Sm2PublicKey(unreduced)


# -- the OpenSSL 3 command line -----------------------------------------------------------


def _openssl_sm2() -> str | None:
    """Why the OpenSSL CLI cannot take part, or None when it can."""
    exe = shutil.which("openssl")
    if exe is None:
        return "no openssl command on PATH"
    version = subprocess.run([exe, "version"], capture_output=True, text=True, timeout=30)
    if version.returncode != 0 or not version.stdout.startswith("OpenSSL 3"):
        return f"openssl is not OpenSSL 3: {version.stdout.strip() or version.stderr.strip()}"
    algorithms = subprocess.run(
        [exe, "list", "-signature-algorithms"], capture_output=True, text=True, timeout=30
    )
    if "SM2" not in algorithms.stdout:
        return f"{version.stdout.strip()} has no SM2 signature algorithm"
    return None


@pytest.fixture(scope="module")
def openssl() -> Iterator[str]:
    reason = _openssl_sm2()
    if reason is not None:
        pytest.skip(reason)
    exe = shutil.which("openssl")
    assert exe is not None
    yield exe


def _run(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(list(args), capture_output=True, timeout=30)


def test_openssl_reads_our_key_files(openssl: str, tmp_path: Path) -> None:
    key = write_key_pair(tmp_path / "k.pem", suite=SM2_SM3)
    assert _run(openssl, "pkey", "-in", str(tmp_path / "k.pem"), "-noout").returncode == 0
    pub = tmp_path / "k.pem.pub"
    assert _run(openssl, "pkey", "-pubin", "-in", str(pub), "-noout").returncode == 0
    text = _run(openssl, "pkey", "-in", str(tmp_path / "k.pem"), "-noout", "-text").stdout
    assert b"ASN1 OID: SM2" in text
    # OpenSSL derives from our private key file the public key file we wrote, byte for byte.
    derived = _run(openssl, "pkey", "-in", str(tmp_path / "k.pem"), "-pubout")
    assert derived.returncode == 0 and derived.stdout == pub.read_bytes()
    assert derived.stdout == sm2.public_key_pem(key.public_key())  # type: ignore[arg-type]


@pytest.mark.parametrize("message", [b"", MESSAGE, b"\xa5" * 65536], ids=["0B", "14B", "64KiB"])
def test_openssl_verifies_our_signatures(openssl: str, tmp_path: Path, message: bytes) -> None:
    key = write_key_pair(tmp_path / "k.pem", suite=SM2_SM3)
    assert isinstance(key, Sm2PrivateKey)
    (tmp_path / "m").write_bytes(message)
    (tmp_path / "sig").write_bytes(to_der(key.sign(message)))
    verify = [
        openssl, "pkeyutl", "-verify", "-rawin", "-digest", "sm3",
        "-pkeyopt", f"distid:{DEFAULT_ID.decode()}",
        "-pubin", "-inkey", str(tmp_path / "k.pem.pub"),
        "-in", str(tmp_path / "m"), "-sigfile", str(tmp_path / "sig"),
    ]  # fmt: skip
    done = _run(*verify)
    assert done.returncode == 0, done.stderr
    assert b"Verified Successfully" in done.stdout
    (tmp_path / "m").write_bytes(message + b"\x00")
    assert _run(*verify).returncode != 0


def test_openssl_signatures_and_keys_work_here(openssl: str, tmp_path: Path) -> None:
    key_file, message = tmp_path / "o.pem", tmp_path / "m"
    assert _run(openssl, "genpkey", "-algorithm", "SM2", "-out", str(key_file)).returncode == 0
    message.write_bytes(MESSAGE)
    signed = _run(
        openssl, "pkeyutl", "-sign", "-rawin", "-digest", "sm3",
        "-pkeyopt", f"distid:{DEFAULT_ID.decode()}",
        "-inkey", str(key_file), "-in", str(message),
    )  # fmt: skip
    assert signed.returncode == 0, signed.stderr
    key = load_private_key(key_file)
    assert isinstance(key, Sm2PrivateKey)
    key.public_key().verify(from_der(signed.stdout), MESSAGE)
    # OpenSSL's `ecparam -genkey` writes an SM2 PARAMETERS block before the key.
    params_file = tmp_path / "p.pem"
    made = _run(openssl, "ecparam", "-name", "SM2", "-genkey", "-out", str(params_file))
    assert made.returncode == 0, made.stderr
    assert isinstance(load_private_key(params_file), Sm2PrivateKey)
