"""Exponential backoff with full jitter ("Exponential Backoff And Jitter", AWS Architecture
Blog, 2015): the n-th retry waits a uniformly random time in [0, min(cap, base * m**n)], so
that the agents and hubs reconnecting after one broker restart do not arrive together.

"Full" means the lower bound is 0: drawing from [ceiling/2, ceiling] ("equal jitter") keeps
half of every delay in lockstep across clients.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

Uniform = Callable[[float, float], float]


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
    uniform: Uniform = random.uniform,
) -> float:
    """A full-jitter delay for the ``attempt``-th retry: uniform in [0, ceiling]."""
    ceiling = backoff_ceiling(attempt, initial=initial, maximum=maximum, multiplier=multiplier)
    return uniform(0.0, ceiling)


@dataclass(frozen=True)
class Backoff:
    """The reconnect delays of one client: ``initial`` doubling (by ``multiplier``) up to
    ``maximum``, each drawn with full jitter."""

    initial: float
    maximum: float
    multiplier: float = 2.0

    def delay(self, attempt: int, uniform: Uniform = random.uniform) -> float:
        return backoff_delay(
            attempt,
            initial=self.initial,
            maximum=self.maximum,
            multiplier=self.multiplier,
            uniform=uniform,
        )
