"""Reconnect delays: exponential ceilings, and full jitter below them (AWS Architecture Blog,
"Exponential Backoff And Jitter": uniform in [0, min(cap, base * 2**attempt)])."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from transport.backoff import Backoff, backoff_ceiling, backoff_delay


def test_ceiling_grows_exponentially_then_stays_at_the_cap() -> None:
    ceilings = [backoff_ceiling(n, initial=0.5, maximum=30, multiplier=2) for n in range(10)]
    assert ceilings[:7] == [0.5, 1, 2, 4, 8, 16, 30]
    assert ceilings[7:] == [30, 30, 30]


def test_huge_attempt_numbers_do_not_overflow() -> None:
    assert backoff_ceiling(10_000, initial=0.5, maximum=30, multiplier=2) == 30


@given(attempt=st.integers(0, 200), seed=st.floats(0, 1))
def test_full_jitter_stays_between_zero_and_the_ceiling(attempt: int, seed: float) -> None:
    delay = backoff_delay(
        attempt, initial=0.5, maximum=30, uniform=lambda lo, hi: lo + (hi - lo) * seed
    )
    assert 0 <= delay <= backoff_ceiling(attempt, initial=0.5, maximum=30, multiplier=2)


@pytest.mark.parametrize("attempt", [0, 1, 3, 8, 50])
def test_full_jitter_draws_from_zero_to_the_ceiling(attempt: int) -> None:
    """The whole interval: "equal jitter" ([ceiling/2, ceiling]) would keep every client's
    first half of the delay in lockstep after a broker restart."""
    backoff = Backoff(initial=0.2, maximum=15.0)
    bounds: list[tuple[float, float]] = []

    def uniform(lo: float, hi: float) -> float:
        bounds.append((lo, hi))
        return lo

    assert backoff.delay(attempt, uniform) == 0.0
    ceiling = min(15.0, 0.2 * 2**attempt)
    assert bounds == [(0.0, pytest.approx(ceiling))]


def test_jitter_spreads_reconnects() -> None:
    delays = {backoff_delay(5, initial=0.5, maximum=30) for _ in range(50)}
    assert len(delays) > 40
    assert min(delays) < backoff_ceiling(5, initial=0.5, maximum=30, multiplier=2) / 2


def test_negative_attempts_are_a_bug() -> None:
    with pytest.raises(ValueError):
        backoff_ceiling(-1, initial=1, maximum=2, multiplier=2)
