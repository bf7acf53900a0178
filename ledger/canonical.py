"""RFC 8785 (JCS) canonical JSON bytes: the ``rfc8785`` library's, fast for common values.

The ``rfc8785`` library is pure Python: measured on the 2-core machines it takes ~6.2 µs for
a city sensor payload, against ~2.3 µs for ``json.dumps`` with sorted keys, on every record
the agent seals and again where the hub checks its commitment. For most JSON values the two
give the same bytes, and where they do this module uses ``json.dumps``; anything else goes
to the library, so the bytes are always RFC 8785's (tests/unit/ledger/test_canonical.py
checks the two agree).

Where ``json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`` is
JCS (RFC 8785 section 3.2):

- strings: both escape ``"``, ``\\``, and the controls U+0000-U+001F (``\\b \\t \\n \\f \\r``
  short, the others ``\\u00xx`` in lower case) and write everything else as it is; a lone
  surrogate, which JCS refuses, fails the UTF-8 encoding (and is left to the library);
- keys: JCS sorts them by UTF-16 code units, Python by code points: the same order for
  ASCII keys (others go to the library);
- integers inside the IEEE 754 safe range (±(2**53 - 1)): the same digits;
- floats: ``repr`` is the shortest round-trip form, as ECMAScript's; the layout differs only
  for an integral value (``21.0`` where JCS writes ``21``, written here as the integer) and
  outside 1e-4 <= |x| < 1e16, where ``repr`` switches to an exponent earlier than JCS does
  (those go to the library).
"""

from __future__ import annotations

import json
from typing import Any

import rfc8785

from .errors import InvalidEnvelope

_INT_MAX = 2**53 - 1
#: ``repr`` writes floats in positional notation (as JCS does) between these bounds.
_FLOAT_LOW, _FLOAT_HIGH = 1e-4, 1e16
_UNSUPPORTED, _AS_IS, _INTEGRAL_FLOATS = 0, 1, 2
#: ``json.dumps`` with these options builds an encoder per call (~1 µs); one is enough.
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _library_jcs(value: Any) -> bytes:
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError, ValueError, RecursionError) as exc:
        raise InvalidEnvelope("not_canonicalizable", str(exc)) from None


def canonical_json(value: Any) -> bytes:
    """JCS(value), byte for byte the ``rfc8785`` library's. Raises InvalidEnvelope for
    values JSON cannot carry exactly (where the library refuses them)."""
    try:
        shape = _shape(value)
    except RecursionError:
        shape = _UNSUPPORTED
    if shape == _UNSUPPORTED:
        return _library_jcs(value)
    if shape == _INTEGRAL_FLOATS:
        value = _integral_floats_as_ints(value)
    try:
        return _ENCODER.encode(value).encode()
    except UnicodeEncodeError:  # a lone surrogate: the library says why it refuses it
        return _library_jcs(value)


def _shape(value: Any) -> int:
    """Whether ``json.dumps`` gives JCS(value) as it is, once integral floats are written as
    integers, or not at all."""
    kind = type(value)
    if kind is dict:
        shape = _AS_IS
        for key, item in value.items():
            if type(key) is not str or not key.isascii():
                return _UNSUPPORTED
            # Strings first, inline: most members of a payload are (a call costs more).
            if type(item) is not str:
                inner = _shape(item)
                if inner == _UNSUPPORTED:
                    return _UNSUPPORTED
                if inner > shape:
                    shape = inner
        return shape
    if kind is str or value is None or kind is bool:
        return _AS_IS
    if kind is float:
        if value.is_integer():
            return _INTEGRAL_FLOATS if -_FLOAT_HIGH < value < _FLOAT_HIGH else _UNSUPPORTED
        return _AS_IS if _FLOAT_LOW <= abs(value) < _FLOAT_HIGH else _UNSUPPORTED
    if kind is int:
        return _AS_IS if -_INT_MAX <= value <= _INT_MAX else _UNSUPPORTED
    if kind is list:
        shape = _AS_IS
        for item in value:
            inner = _shape(item)
            if inner == _UNSUPPORTED:
                return _UNSUPPORTED
            if inner > shape:
                shape = inner
        return shape
    return _UNSUPPORTED


def _integral_floats_as_ints(value: Any) -> Any:
    kind = type(value)
    if kind is float:
        return int(value) if value.is_integer() else value
    if kind is dict:
        return {key: _integral_floats_as_ints(item) for key, item in value.items()}
    if kind is list:
        return [_integral_floats_as_ints(item) for item in value]
    return value
