"""The crypto suites: looking one up by name, by key and by raw key, and requiring one."""

from __future__ import annotations

from collections.abc import Callable
from hashlib import sha256

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.errors import KeyFileError, LedgerError, SuiteError
from ledger.hashing import SHA256_TREE, SM3_TREE, sm3_digest
from ledger.sm2 import Sm2PrivateKey
from ledger.suite import (
    DEFAULT_SUITE,
    ED25519_SHA256,
    KEY_KINDS,
    SM2_SM3,
    SUITES,
    Suite,
    suite_named,
    suite_of,
    suite_of_raw,
)

BOTH = pytest.mark.parametrize("suite", [ED25519_SHA256, SM2_SM3], ids=lambda s: s.name)


def test_the_two_suites() -> None:
    assert SUITES == {"ed25519-sha256": ED25519_SHA256, "sm2-sm3": SM2_SM3}
    assert KEY_KINDS == {"ed25519": ED25519_SHA256, "sm2": SM2_SM3}
    assert DEFAULT_SUITE is ED25519_SHA256
    assert ED25519_SHA256.tree is SHA256_TREE and SM3_TREE is SM2_SM3.tree
    assert (ED25519_SHA256.public_key_bytes, SM2_SM3.public_key_bytes) == (32, 65)


def test_signed_note_types() -> None:
    # C2SP signed-note: 0x01 Ed25519, 0x04 timestamped Ed25519 cosignature; 0xff and a
    # long identifier for types without a byte of their own.
    assert (ED25519_SHA256.note_type, ED25519_SHA256.cosignature_type) == (b"\x01", b"\x04")
    assert SM2_SM3.note_type == b"\xffswiftchain.dev/sm2-sm3/note"
    assert SM2_SM3.cosignature_type == b"\xffswiftchain.dev/sm2-sm3/cosignature"
    types = [s.note_type for s in SUITES.values()] + [s.cosignature_type for s in SUITES.values()]
    assert len(set(types)) == 4


@BOTH
def test_suite_named(suite: Suite) -> None:
    assert suite_named(suite.name) is suite
    assert suite_named(suite.key_kind) is suite


def test_no_name_is_the_default_of_logs_from_before_suites() -> None:
    assert suite_named(None) is ED25519_SHA256


@pytest.mark.parametrize("name", ["nope", "", "SM2-SM3", "sm2_sm3", "sha256", "sm3", " sm2"])
def test_unknown_suite_names(name: str) -> None:
    with pytest.raises(SuiteError, match="unknown crypto suite") as caught:
        suite_named(name)
    assert "ed25519-sha256" in str(caught.value) and "sm2-sm3" in str(caught.value)
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, LedgerError)


def test_suite_of_keys() -> None:
    ed, sm = Ed25519PrivateKey.generate(), Sm2PrivateKey.generate()
    assert suite_of(ed) is suite_of(ed.public_key()) is ED25519_SHA256
    assert suite_of(sm) is suite_of(sm.public_key()) is SM2_SM3


@pytest.mark.parametrize("thing", [None, b"\x00" * 32, "sm2", object(), SM2_SM3])
def test_suite_of_a_non_key(thing: object) -> None:
    with pytest.raises(KeyFileError, match="expected an Ed25519 or SM2 key"):
        suite_of(thing)


@BOTH
def test_suite_of_raw(suite: Suite) -> None:
    raw = suite.public_from_raw(_raw(suite))
    assert suite.owns(raw)
    assert suite_of_raw(_raw(suite)) is suite


@pytest.mark.parametrize("n", [0, 1, 31, 33, 64, 66, 97])
def test_suite_of_raw_of_another_length(n: int) -> None:
    with pytest.raises(KeyFileError, match=f"not {n}"):
        suite_of_raw(bytes(n))


def _raw(suite: Suite) -> bytes:
    """A raw public key of ``suite``: 32 bytes (RFC 8032), or the 65-byte SM2 point."""
    return suite.generate_key().public_key().public_bytes_raw()


@BOTH
def test_generate_and_own(suite: Suite) -> None:
    key = suite.generate_key()
    assert isinstance(key, suite.private_type)
    assert isinstance(key.public_key(), suite.public_type)
    assert suite.owns(key) and suite.owns(key.public_key())
    suite.require(key, "the log key")
    suite.require(key.public_key(), "the log key")
    other = SM2_SM3 if suite is ED25519_SHA256 else ED25519_SHA256
    assert not other.owns(key) and not other.owns(key.public_key())
    assert not suite.owns(_raw(suite))


@BOTH
def test_require_a_key_of_the_other_suite(suite: Suite) -> None:
    other = SM2_SM3 if suite is ED25519_SHA256 else ED25519_SHA256
    for key in (other.generate_key(), other.generate_key().public_key()):
        with pytest.raises(SuiteError) as caught:
            suite.require(key, "the witness key")
        message = str(caught.value)
        assert message.startswith("the witness key is an ")
        assert other.name in message and suite.name in message
        assert message.index(other.name) < message.index(suite.name)


@BOTH
def test_require_a_non_key(suite: Suite) -> None:
    for thing in (None, _raw(suite), "key"):
        with pytest.raises(SuiteError, match=f"the log key is not a key; .* {suite.name}$"):
            suite.require(thing, "the log key")


@BOTH
def test_public_from_raw(suite: Suite) -> None:
    raw = _raw(suite)
    key = suite.public_from_raw(raw)
    assert isinstance(key, suite.public_type)
    other = SM2_SM3 if suite is ED25519_SHA256 else ED25519_SHA256
    for bad in (raw[:-1], raw + b"\x00", b"", bytearray(raw), raw.hex(), None):
        with pytest.raises(KeyFileError, match=f"{suite.key_kind} public key has"):
            suite.public_from_raw(bad)  # type: ignore[arg-type]
    with pytest.raises(KeyFileError):
        other.public_from_raw(raw)


def test_public_from_raw_of_an_sm2_point_off_the_curve() -> None:
    raw = bytearray(_raw(SM2_SM3))
    raw[-1] ^= 1
    with pytest.raises(KeyFileError, match="not a point on the SM2 curve"):
        SM2_SM3.public_from_raw(bytes(raw))


@pytest.mark.parametrize(
    ("suite", "hash_"),
    [(ED25519_SHA256, lambda d: sha256(d).digest()), (SM2_SM3, sm3_digest)],
    ids=["ed25519-sha256", "sm2-sm3"],
)
def test_digests(suite: Suite, hash_: Callable[[bytes], bytes]) -> None:
    for data in (b"", b"abc", bytes(1000)):
        assert suite.digest(data) == hash_(data)
        assert suite.hexdigest(data) == suite.digest(data).hex()
    assert ED25519_SHA256.digest(b"abc") != SM2_SM3.digest(b"abc")
    assert SM2_SM3.hexdigest(b"abc") == (
        "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    )
