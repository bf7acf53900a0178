"""The verifier reads a leaf exactly as ``json.loads`` does, though it parses with msgspec."""

from __future__ import annotations

import json

import pytest

from ledger.verify import _loads


@pytest.mark.parametrize(
    "leaf",
    [
        b'{"kind":"record","seq":1}',
        b'{"n":NaN,"m":-Infinity}',  # JSON extensions json accepts and msgspec refuses
        b'{"seq":123456789012345678901234567890}',  # past 64 bits
        '{"kind":"registry"}'.encode("utf-16"),  # json detects UTF-16 and -32
        b'\xef\xbb\xbf{"a":1}',  # a UTF-8 byte order mark
        b'{"a":1,"a":2}',
        b' [1, 2.5e3, "\\u00e9"] ',
        b'["\xed\xa0\x80", 1e400]',  # a UTF-8-spelled surrogate, a float past double
    ],
)
def test_leaves_json_reads_read_the_same(leaf: bytes) -> None:
    # repr: NaN is not equal to itself, and 1 == 1.0 would hide an int read as a float.
    assert repr(_loads(leaf)) == repr(json.loads(leaf))


@pytest.mark.parametrize("leaf", [b"", b"{", b'{"a":1}x', b"\xff\xfe\xfd", b'{"a":"\x01"}'])
def test_leaves_json_refuses_stay_refused(leaf: bytes) -> None:
    with pytest.raises((ValueError, UnicodeDecodeError)):
        json.loads(leaf)
    with pytest.raises((ValueError, UnicodeDecodeError)):
        _loads(leaf)
