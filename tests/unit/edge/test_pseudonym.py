from __future__ import annotations

from pathlib import Path

import pytest

from edge.errors import ConfigError
from edge.pseudonym import Pseudonymiser, load_pseudonym_key

KEY = bytes(range(32))


def test_pseudonym_is_hmac_sha256_hex_and_stable() -> None:
    p = Pseudonymiser(KEY, "hospital-a")
    first = p.pseudonym("MRN-1234")
    assert first == p.pseudonym("MRN-1234")
    assert len(first) == 64 and int(first, 16) >= 0
    assert "MRN" not in first


def test_another_key_gives_another_pseudonym() -> None:
    assert Pseudonymiser(KEY, "x").pseudonym("42") != Pseudonymiser(KEY[::-1], "x").pseudonym("42")


def test_different_people_get_different_pseudonyms() -> None:
    p = Pseudonymiser(KEY, "x")
    assert p.pseudonym("1") != p.pseudonym("2")


def test_short_keys_are_refused() -> None:
    with pytest.raises(ConfigError):
        Pseudonymiser(b"short", "x")


def test_repr_never_shows_the_key() -> None:
    assert KEY.hex() not in repr(Pseudonymiser(KEY, "x"))


def test_key_files_hold_hex_or_raw_bytes(tmp_path: Path) -> None:
    hex_file = tmp_path / "hex.key"
    hex_file.write_text(KEY.hex() + "\n")
    raw_file = tmp_path / "raw.key"
    raw_file.write_bytes(KEY)
    assert load_pseudonym_key(hex_file) == KEY
    assert load_pseudonym_key(raw_file) == KEY


def test_unusable_key_files_say_what_to_do(tmp_path: Path) -> None:
    small = tmp_path / "small.key"
    small.write_bytes(b"abc")
    with pytest.raises(ConfigError, match="urandom"):
        load_pseudonym_key(small)
    with pytest.raises(ConfigError, match="cannot read"):
        load_pseudonym_key(tmp_path / "missing.key")
