from __future__ import annotations

from edge.link import republish_after


def test_republish_waits_double_each_attempt_up_to_the_maximum() -> None:
    waits = [republish_after(a, first=30, maximum=600) for a in range(1, 8)]
    assert waits == [30, 60, 120, 240, 480, 600, 600]
