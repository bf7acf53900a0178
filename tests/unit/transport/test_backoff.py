from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.backoff import backoff_ceiling, backoff_delay, republish_after


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


def test_jitter_spreads_reconnects() -> None:
    delays = {backoff_delay(5, initial=0.5, maximum=30) for _ in range(50)}
    assert len(delays) > 40


def test_republish_waits_double_each_attempt_up_to_the_maximum() -> None:
    waits = [republish_after(a, first=30, maximum=600) for a in range(1, 8)]
    assert waits == [30, 60, 120, 240, 480, 600, 600]


def test_negative_attempts_are_a_bug() -> None:
    with pytest.raises(ValueError):
        backoff_ceiling(-1, initial=1, maximum=2, multiplier=2)
