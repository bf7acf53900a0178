"""The mirror's pure decisions as tables: what a new checkpoint means, what to fetch next,
how long to wait."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mirror.plan import MAX_PAGE, Action, Head, backoff, judge, next_page

A, B, C = b"a" * 32, b"b" * 32, b"c" * 32


@pytest.mark.parametrize(
    ("new", "reference", "stored", "held_root", "action", "proof"),
    [
        # The reference itself again: nothing new.
        (Head(10, A), Head(10, A), 10, A, Action.UNCHANGED, None),
        (Head(10, A), Head(10, A), 4, None, Action.UNCHANGED, None),
        # Same size, another root: a fork, held or not.
        (Head(10, B), Head(10, A), 10, A, Action.FORK, None),
        (Head(10, B), Head(10, A), 4, None, Action.FORK, None),
        # A smaller tree the mirror holds: same root is a lagging hub, another is a fork.
        (Head(6, C), Head(10, A), 10, C, Action.BEHIND, None),
        (Head(6, C), Head(10, A), 10, B, Action.FORK, None),
        (Head(3, C), Head(10, A), 4, B, Action.FORK, None),
        # Larger: prove from the reference; from nothing, nothing to prove.
        (Head(20, B), Head(10, A), 10, None, Action.EXTEND, (10, 20)),
        (Head(20, B), Head(10, A), 4, None, Action.EXTEND, (10, 20)),
        (Head(20, B), Head(0, A), 0, None, Action.EXTEND, None),
        # Between what is stored and the reference: prove it inside the reference.
        (Head(7, B), Head(10, A), 4, None, Action.INSIDE, (7, 10)),
    ],
)
def test_judge(
    new: Head,
    reference: Head,
    stored: int,
    held_root: bytes | None,
    action: Action,
    proof: tuple[int, int] | None,
) -> None:
    verdict = judge(new, reference, stored, held_root)
    assert verdict.action is action
    assert verdict.proof == proof
    assert bool(verdict.reason) == (action in (Action.FORK, Action.BEHIND))


def test_judge_needs_the_held_root_of_a_held_size() -> None:
    with pytest.raises(ValueError):
        judge(Head(3, A), Head(10, A), 5, None)


@pytest.mark.parametrize(
    ("stored", "target", "page"),
    [
        (0, 0, None),
        (5, 5, None),
        (0, 1, (0, 1)),
        (0, 2500, (0, MAX_PAGE)),
        (2000, 2500, (2000, 2500)),
        (999, 2000, (999, 1999)),
        (7, 3, None),
    ],
)
def test_next_page(stored: int, target: int, page: tuple[int, int] | None) -> None:
    assert next_page(stored, target) == page


@given(st.integers(0, 10**6), st.integers(0, 10**6), st.integers(1, 5000))
def test_pages_walk_to_the_target_in_bounded_steps(stored: int, target: int, limit: int) -> None:
    steps = 0
    while (page := next_page(stored, target, limit)) is not None:
        start, end = page
        assert start == stored and stored < end <= target and end - start <= limit
        stored, steps = end, steps + 1
    assert stored == max(stored, target) and steps <= -(-max(0, target) // limit) + 1


def test_next_page_refuses_nonsense() -> None:
    for args in ((-1, 5), (0, -1), (0, 5, 0)):
        with pytest.raises(ValueError):
            next_page(*args)


@pytest.mark.parametrize(
    ("failures", "wait"),
    [(0, 0.0), (1, 0.5), (2, 1.0), (3, 2.0), (7, 30.0), (10**6, 30.0)],
)
def test_backoff_doubles_and_is_bounded(failures: int, wait: float) -> None:
    assert backoff(failures, initial=0.5, maximum=30.0) == wait
