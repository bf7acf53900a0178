"""ledger.keys with keys of either suite: key ids, raw key strings, key files, signing and
the fast verifier. The Ed25519-only behaviour is test_keys.py's."""

from __future__ import annotations

import os
import re
import stat
from hashlib import sha256
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger import sm2
from ledger.errors import KeyFileError, SignatureError
from ledger.hashing import sm3_digest
from ledger.keys import (
    FastVerifier,
    b64url_encode,
    generate_key,
    key_id,
    load_private_key,
    load_public_key,
    public_key_b64,
    public_key_from_b64,
    raw_public,
    sign,
    verify,
    write_key_pair,
)
from ledger.sm2 import Sm2PrivateKey
from ledger.suite import DEFAULT_SUITE, ED25519_SHA256, SM2_SM3, Suite
from tests.unit.ledger.test_sm2 import MESSAGE, POINT, SIGNATURE, D

BOTH = pytest.mark.parametrize("suite", [ED25519_SHA256, SM2_SM3], ids=lambda s: s.name)


def _other(suite: Suite) -> Suite:
    return SM2_SM3 if suite is ED25519_SHA256 else ED25519_SHA256


# -- key ids ------------------------------------------------------------------------------


def test_key_id_of_ed25519_is_sha256_of_the_raw_key() -> None:
    # RFC 8032 section 7.1, test 1's public key.
    raw = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
    key = ED25519_SHA256.public_from_raw(raw)
    assert key_id(key) == sha256(raw).digest()[:8].hex()


def test_key_id_of_sm2_is_sm3_of_the_point() -> None:
    key = SM2_SM3.public_from_raw(POINT)
    assert key_id(key) == sm3_digest(POINT)[:8].hex()
    assert key_id(key) != sha256(POINT).digest()[:8].hex()


@BOTH
def test_key_ids_are_16_hex_and_differ(suite: Suite) -> None:
    ids = {key_id(generate_key(suite).public_key()) for _ in range(8)}
    assert len(ids) == 8
    assert all(re.fullmatch("[0-9a-f]{16}", i) for i in ids)


@BOTH
def test_key_id_of_a_private_key_is_refused(suite: Suite) -> None:
    with pytest.raises(KeyFileError, match="public key"):
        key_id(generate_key(suite))  # type: ignore[arg-type]


# -- raw public key strings ---------------------------------------------------------------


@BOTH
def test_public_key_b64_round_trip(suite: Suite) -> None:
    public = generate_key(suite).public_key()
    text = public_key_b64(public)
    assert len(text) == {32: 43, 65: 87}[suite.public_key_bytes]
    assert text == b64url_encode(raw_public(public))
    for back in (public_key_from_b64(text), public_key_from_b64(text, suite)):
        assert isinstance(back, suite.public_type)
        assert raw_public(back) == raw_public(public)
        assert key_id(back) == key_id(public)
    with pytest.raises(KeyFileError, match=f"{_other(suite).key_kind} public key has"):
        public_key_from_b64(text, _other(suite))


def test_public_key_from_b64_dispatches_on_length() -> None:
    assert isinstance(public_key_from_b64(b64url_encode(POINT)), sm2.Sm2PublicKey)
    ed = generate_key(ED25519_SHA256).public_key()
    assert suite_of_text(public_key_b64(ed)) is ED25519_SHA256
    assert suite_of_text(b64url_encode(POINT)) is SM2_SM3


def suite_of_text(text: str) -> Suite:
    key = public_key_from_b64(text)
    return SM2_SM3 if isinstance(key, sm2.Sm2PublicKey) else ED25519_SHA256


@pytest.mark.parametrize(
    "text",
    [
        b64url_encode(bytes(64)),
        b64url_encode(bytes(66)),
        b64url_encode(POINT[:-1] + bytes([POINT[-1] ^ 1])),  # off the curve
        b64url_encode(b"\x02" + POINT[1:33] + bytes(32)),  # 65 bytes, not 0x04
        b64url_encode(POINT) + "=",
        b64url_encode(POINT).replace("_", "/").replace("-", "+"),
        "",
    ],
    ids=["64", "66", "off-curve", "prefix", "padded", "std-alphabet", "empty"],
)
def test_bad_public_key_strings(text: str) -> None:
    with pytest.raises(KeyFileError):
        public_key_from_b64(text)


# -- key files ----------------------------------------------------------------------------


@BOTH
def test_write_key_pair(tmp_path: Path, suite: Suite) -> None:
    path = tmp_path / "keys" / "hub.key"
    key = write_key_pair(path, suite=suite)
    assert isinstance(key, suite.private_type)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----\n")
    assert (tmp_path / "keys" / "hub.key.pub").read_bytes().startswith(b"-----BEGIN PUBLIC KEY")
    loaded = load_private_key(path)
    public = load_public_key(tmp_path / "keys" / "hub.key.pub")
    assert isinstance(loaded, suite.private_type) and isinstance(public, suite.public_type)
    assert raw_public(loaded.public_key()) == raw_public(key.public_key()) == raw_public(public)
    verify(public, sign(loaded, MESSAGE), MESSAGE)


def test_write_key_pair_defaults_to_ed25519(tmp_path: Path) -> None:
    assert DEFAULT_SUITE is ED25519_SHA256
    assert isinstance(write_key_pair(tmp_path / "k"), Ed25519PrivateKey)


@BOTH
def test_write_key_pair_is_0600_under_a_permissive_umask(tmp_path: Path, suite: Suite) -> None:
    old = os.umask(0)
    try:
        write_key_pair(tmp_path / "k", suite=suite)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "k").stat().st_mode) == 0o600


@BOTH
def test_write_key_pair_refuses_to_overwrite(tmp_path: Path, suite: Suite) -> None:
    path = tmp_path / "witness.key"
    first = write_key_pair(path, suite=suite)
    before = path.read_bytes(), (tmp_path / "witness.key.pub").read_bytes()
    for again in (suite, _other(suite)):
        with pytest.raises(KeyFileError, match="refusing to overwrite"):
            write_key_pair(path, suite=again)
    assert (path.read_bytes(), (tmp_path / "witness.key.pub").read_bytes()) == before
    path.unlink()
    with pytest.raises(KeyFileError, match="refusing to overwrite"):  # the .pub alone
        write_key_pair(path, suite=suite)
    second = write_key_pair(path, suite=suite, overwrite=True)
    assert key_id(second.public_key()) != key_id(first.public_key())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@BOTH
def test_a_private_key_file_is_not_a_public_one(tmp_path: Path, suite: Suite) -> None:
    write_key_pair(tmp_path / "k", suite=suite)
    with pytest.raises(KeyFileError):
        load_public_key(tmp_path / "k")
    with pytest.raises(KeyFileError):
        load_private_key(tmp_path / "k.pub")


def test_the_sm2_key_file_of_the_example(tmp_path: Path) -> None:
    (tmp_path / "k").write_bytes(sm2.private_key_pem(Sm2PrivateKey(D)))
    key = load_private_key(tmp_path / "k")
    assert isinstance(key, Sm2PrivateKey)
    assert raw_public(key.public_key()) == POINT
    assert key.public_key().is_valid(SIGNATURE, MESSAGE)


# -- signing and verifying ----------------------------------------------------------------


@BOTH
def test_sign_verify_and_fast_verifier(suite: Suite) -> None:
    key = generate_key(suite)
    public = key.public_key()
    fast = FastVerifier(public)
    for message in (b"", MESSAGE, bytes(65536)):
        signature = sign(key, message)
        assert len(signature) == 64
        verify(public, signature, message)
        fast.verify(signature, message)
        assert fast.is_valid(signature, message)
        assert not fast.is_valid(signature, message + b"\x00")
        with pytest.raises(SignatureError):
            verify(public, signature, message + b"\x00")
        with pytest.raises(SignatureError):
            fast.verify(signature, message + b"\x00")


@BOTH
def test_bad_signatures_are_just_invalid(suite: Suite) -> None:
    key = generate_key(suite)
    public, fast = key.public_key(), FastVerifier(key.public_key())
    good = sign(key, MESSAGE)
    flipped = bytes([good[0] ^ 0x01]) + good[1:]
    for bad in (b"", good[:63], good + b"\x00", bytes(64), b"\xff" * 64, flipped, good.hex()):
        assert not fast.is_valid(bad, MESSAGE)  # type: ignore[arg-type]
        with pytest.raises(SignatureError):
            fast.verify(bad, MESSAGE)  # type: ignore[arg-type]
        with pytest.raises(SignatureError):
            verify(public, bad, MESSAGE)  # type: ignore[arg-type]
    for bad_message in ("message digest", None):
        assert not fast.is_valid(good, bad_message)  # type: ignore[arg-type]
        with pytest.raises(SignatureError):
            verify(public, good, bad_message)  # type: ignore[arg-type]


@BOTH
def test_a_signature_of_the_other_suite_does_not_verify(suite: Suite) -> None:
    key, theirs = generate_key(suite), generate_key(_other(suite))
    signature = sign(theirs, MESSAGE)
    assert len(signature) == 64  # the same length: only the key tells them apart
    with pytest.raises(SignatureError):
        verify(key.public_key(), signature, MESSAGE)
    assert not FastVerifier(key.public_key()).is_valid(signature, MESSAGE)


def test_fast_verifier_of_the_sm2_example() -> None:
    fast = FastVerifier(SM2_SM3.public_from_raw(POINT))
    assert fast.is_valid(SIGNATURE, MESSAGE)
    assert not fast.is_valid(SIGNATURE, MESSAGE + b"!")


@BOTH
def test_bad_key_objects(suite: Suite) -> None:
    key = generate_key(suite)
    with pytest.raises(KeyFileError):
        FastVerifier(key)  # type: ignore[arg-type]
    with pytest.raises(KeyFileError):
        verify(key, sign(key, MESSAGE), MESSAGE)  # type: ignore[arg-type]
    with pytest.raises(KeyFileError):
        sign(key.public_key(), MESSAGE)  # type: ignore[arg-type]
    with pytest.raises(KeyFileError):
        public_key_b64(key)  # type: ignore[arg-type]
    with pytest.raises(SignatureError):
        sign(key, "text")  # type: ignore[arg-type]
