"""canonical_json is the rfc8785 library's, byte for byte, for every JSON value."""

from __future__ import annotations

import math
import sys
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.canonical import canonical_json
from ledger.errors import InvalidEnvelope

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**60), 2**60)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.floats(min_value=-1e17, max_value=1e17).map(round).map(float)
    | st.text()
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=30,
)


def library(value: Any) -> bytes | type[Exception]:
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, ValueError, TypeError):
        return InvalidEnvelope


def ours(value: Any) -> bytes | type[Exception]:
    try:
        return canonical_json(value)
    except InvalidEnvelope:
        return InvalidEnvelope


@settings(max_examples=2000, deadline=None)
@given(json_values)
def test_the_same_bytes_as_rfc8785(value: Any) -> None:
    assert ours(value) == library(value)


@settings(max_examples=1000, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_every_float_as_rfc8785_writes_it(number: float) -> None:
    assert ours({"x": number}) == library({"x": number})
    assert ours([number, -number]) == library([number, -number])


@pytest.mark.parametrize(
    "value",
    [
        0.0,
        -0.0,
        21.0,
        1e-4,
        9.999e-5,
        1e-7,
        1e15 + 0.5,
        1e16,
        1e21,
        1e22,
        5e-324,
        sys.float_info.max,
        2**53 - 1,
        2**53,
        -(2**53) + 1,
        -(2**53),
        '\u2028\x7f\x00\x1f"\\',
        {"é": 1, "e": 2, "\U0001f600": 3, "\ufffd": 4},
        {"b": [1.0, {"a": 2.5}], "a": None},
    ],
)
def test_edge_values(value: Any) -> None:
    assert ours(value) == library(value)


@pytest.mark.parametrize(
    "value", [math.nan, math.inf, "\ud800", {"k": "\udfff"}, {1: 2}, (1, 2), {"a": object()}]
)
def test_what_jcs_cannot_carry_is_refused_or_written_as_the_library_does(value: Any) -> None:
    assert ours(value) == library(value)
