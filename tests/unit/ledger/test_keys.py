"""Key files (PEM, private ones 0600, never overwritten by accident) and key encodings."""

from __future__ import annotations

import base64
import binascii
import os
import stat
import string
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.base64url import canonical_b64url
from ledger.errors import EncodingError, KeyFileError, LedgerError, SignatureError
from ledger.keys import (
    FastVerifier,
    b64url_decode,
    b64url_encode,
    generate_key,
    key_id,
    load_private_key,
    load_public_key,
    public_key_b64,
    public_key_from_b64,
    sign,
    verify,
    write_key_pair,
)


def test_write_and_load_key_pair(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "station.key"
    key = write_key_pair(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    pub = load_public_key(tmp_path / "keys" / "station.key.pub")
    assert public_key_b64(pub) == public_key_b64(key.public_key())
    loaded = load_private_key(path)
    assert key_id(loaded.public_key()) == key_id(key.public_key())
    assert len(key_id(pub)) == 16


def test_private_key_is_0600_even_with_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        write_key_pair(tmp_path / "k")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "k").stat().st_mode) == 0o600


def test_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "hub.key"
    first = write_key_pair(path)
    before = path.read_bytes()
    with pytest.raises(KeyFileError, match="refusing"):
        write_key_pair(path)
    assert path.read_bytes() == before
    (tmp_path / "hub.key").unlink()
    with pytest.raises(KeyFileError, match="refusing"):  # the .pub alone also stops it
        write_key_pair(path)
    second = write_key_pair(path, overwrite=True)
    assert key_id(second.public_key()) != key_id(first.public_key())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def _pem_private(key: Any) -> bytes:
    return key.private_bytes(  # type: ignore[no-any-return]
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _pem_public(key: Any) -> bytes:
    return key.public_key().public_bytes(  # type: ignore[no-any-return]
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"not a key",
        b"\x00\xff" * 50,
        _pem_private(ec.generate_private_key(ec.SECP256R1())),
        _pem_private(rsa.generate_private_key(public_exponent=65537, key_size=1024)),
        _pem_public(generate_key()),
        generate_key().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        ),
    ],
)
def test_wrong_private_key_files(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.key"
    path.write_bytes(content)
    with pytest.raises(KeyFileError):
        load_private_key(path)


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"garbage",
        _pem_private(generate_key()),
        _pem_public(ec.generate_private_key(ec.SECP256R1())),
    ],
)
def test_wrong_public_key_files(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.pub"
    path.write_bytes(content)
    with pytest.raises(KeyFileError):
        load_public_key(path)


def test_missing_directory_and_non_path_key_files(tmp_path: Path) -> None:
    for load in (load_private_key, load_public_key):
        with pytest.raises(KeyFileError):
            load(tmp_path / "missing.key")
        with pytest.raises(KeyFileError):
            load(tmp_path)
        with pytest.raises(KeyFileError):
            load(None)  # type: ignore[arg-type]
    with pytest.raises(KeyFileError):
        write_key_pair(tmp_path)  # an existing directory
    (tmp_path / "file").write_text("x")
    with pytest.raises(KeyFileError):
        write_key_pair(tmp_path / "file" / "under-a-file.key")
    with pytest.raises(KeyFileError):
        write_key_pair(None)  # type: ignore[arg-type]


def test_base64url() -> None:
    for raw in (b"", b"\x00", b"\xff\xfe", bytes(range(33))):
        assert b64url_decode(b64url_encode(raw)) == raw
        assert "=" not in b64url_encode(raw)
    for bad in ("a", "a===", "ab+/", "YQ==", "ab cd", "é", None, 5):
        with pytest.raises(EncodingError):
            b64url_decode(bad)  # type: ignore[arg-type]
    # One value, one spelling: "AB" and "AA" would both decode to b"\x00" without this.
    assert b64url_decode("AA") == b"\x00"
    with pytest.raises(EncodingError, match="canonical"):
        b64url_decode("AB")
    # Still a ValueError, for callers written against that.
    with pytest.raises(ValueError):
        b64url_decode("*")


def _strict_b64url(text: str) -> bytes | None:
    """The strict decode spelled out (the standard alphabet, padded, validated, re-encoded):
    what the fast round trip of canonical_b64url must agree with."""
    if not text.isascii() or any(c in text for c in "+/="):
        return None
    try:
        raw = base64.b64decode(
            text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4), validate=True
        )
    except binascii.Error:
        return None
    return raw if base64.urlsafe_b64encode(raw).rstrip(b"=").decode() == text else None


@settings(max_examples=2000)
@given(
    st.one_of(
        st.text(alphabet=string.ascii_letters + string.digits + "-_+/= \n.\x00é", max_size=12),
        st.binary(max_size=9).map(b64url_encode),
        st.tuples(st.binary(min_size=1, max_size=9), st.integers(0, 5)).map(
            lambda t: b64url_encode(t[0])[: -t[1] or None] + "A" * (t[1] % 2)
        ),
    )
)
def test_fast_base64url_accepts_exactly_the_canonical_spellings(text: str) -> None:
    expected = _strict_b64url(text)
    assert canonical_b64url(text) == expected
    if expected is None:
        with pytest.raises(EncodingError):
            b64url_decode(text)
    else:
        assert b64url_decode(text) == expected


def test_public_key_strings() -> None:
    key = generate_key()
    assert public_key_b64(public_key_from_b64(public_key_b64(key.public_key()))) == (
        public_key_b64(key.public_key())
    )
    for bad in ("", "AAAA", b64url_encode(bytes(31)), b64url_encode(bytes(33)), "!" * 43, None):
        with pytest.raises(KeyFileError):
            public_key_from_b64(bad)  # type: ignore[arg-type]


def test_sign_and_verify() -> None:
    key = generate_key()
    sig = sign(key, b"message")
    verify(key.public_key(), sig, b"message")
    fast = FastVerifier(key.public_key())
    fast.verify(sig, b"message")
    assert fast.is_valid(sig, b"message")
    for bad_sig, msg in ((sig, b"other"), (bytes(64), b"message"), (sig[:63], b"message")):
        with pytest.raises(SignatureError):
            verify(key.public_key(), bad_sig, msg)
        with pytest.raises(SignatureError):
            fast.verify(bad_sig, msg)
        assert not fast.is_valid(bad_sig, msg)
    with pytest.raises(SignatureError):
        verify(generate_key().public_key(), sig, b"message")
    assert not fast.is_valid("text", b"message")  # type: ignore[arg-type]


def test_bad_key_objects_are_named_errors() -> None:
    calls: list[Any] = [
        lambda: sign(None, b"x"),  # type: ignore[arg-type]
        lambda: sign(generate_key(), "text"),  # type: ignore[arg-type]
        lambda: verify(None, bytes(64), b"x"),  # type: ignore[arg-type]
        lambda: key_id(None),  # type: ignore[arg-type]
        lambda: public_key_b64(generate_key()),  # type: ignore[arg-type]
        lambda: FastVerifier(None),  # type: ignore[arg-type]
    ]
    for call in calls:
        with pytest.raises(LedgerError):
            call()
