"""RFC 8785 (JCS) canonical JSON bytes, through the ``rfc8785`` library."""

from typing import Any

import rfc8785

from .errors import InvalidEnvelope


def canonical_json(value: Any) -> bytes:
    """JCS(value). Raises InvalidEnvelope for values JSON cannot carry exactly."""
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError, ValueError, RecursionError) as exc:
        raise InvalidEnvelope("not_canonicalizable", str(exc)) from None
