"""Exponential backoff with full jitter ("Exponential Backoff And Jitter", AWS Architecture
Blog, 2015): the n-th retry waits a uniformly random time in [0, min(cap, base * m**n)],
so that many agents reconnecting after one broker restart do not arrive together."""

from __future__ import annotations

import random
from collections.abc import Callable


def backoff_ceiling(attempt: int, *, initial: float, maximum: float, multiplier: float) -> float:
    """The upper bound of the ``attempt``-th delay (attempt 0 is the first retry)."""
    if attempt < 0:
        raise ValueError("attempt counts from 0")
    # Stop multiplying once over the cap, so that huge attempt numbers cannot overflow.
    ceiling = initial
    for _ in range(attempt):
        ceiling *= multiplier
        if ceiling >= maximum:
            return maximum
    return min(ceiling, maximum)


def backoff_delay(
    attempt: int,
    *,
    initial: float,
    maximum: float,
    multiplier: float = 2.0,
    uniform: Callable[[float, float], float] = random.uniform,
) -> float:
    """A full-jitter delay for the ``attempt``-th retry."""
    ceiling = backoff_ceiling(attempt, initial=initial, maximum=maximum, multiplier=multiplier)
    return uniform(0.0, ceiling)


def republish_after(attempts: int, *, first: float, maximum: float) -> float:
    """How long to wait for a receipt after the ``attempts``-th publish of a record:
    ``first``, then doubling, up to ``maximum`` (no jitter: the window is already spread)."""
    return backoff_ceiling(max(attempts - 1, 0), initial=first, maximum=maximum, multiplier=2.0)
