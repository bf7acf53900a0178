"""The mirror's pure decisions: what to fetch next, what a new checkpoint from the hub means
against what the mirror already holds (c2sp.org/tlog-mirror, "Updating a Mirror": a pending
checkpoint proven consistent first, then the entries up to it, then the mirror checkpoint),
and how long to wait after a failure.

Three sizes describe a mirror: ``verified``, the size of its *mirror checkpoint* (every entry
up to it stored and the hub's signed root recomputed from them, cosigned); ``reference``, the
size of the largest hub checkpoint it has accepted (its *pending checkpoint* when ahead of
``verified``, proven consistent with it); and ``stored``, the entries it holds (each page
proven inside ``reference`` before it was written), with ``verified <= stored <= reference``.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from enum import Enum

#: The hub's largest entries page (``ledger.store.MAX_ENTRIES_PAGE``).
MAX_PAGE = 1000


@dataclass(frozen=True)
class Head:
    """A tree head: a signed checkpoint's size and root hash."""

    size: int
    root: bytes


class Action(Enum):
    UNCHANGED = "unchanged"
    """The hub's checkpoint is the reference itself: nothing new."""
    BEHIND = "behind"
    """The hub shows a smaller tree the mirror holds, with the same root: a stale or lagging
    hub (or a load balancer's other replica), not a fork; wait."""
    EXTEND = "extend"
    """A larger tree: fetch a consistency proof from the reference to it, then its entries."""
    INSIDE = "inside"
    """A tree between what the mirror stores and its reference: prove it is a prefix of the
    reference (a proof from it to the reference) before believing it."""
    FORK = "fork"
    """Two signed tree heads that cannot both be the one log."""


@dataclass(frozen=True)
class Verdict:
    action: Action
    reason: str = ""
    proof: tuple[int, int] | None = None
    """(first, second) of the consistency proof to fetch and check, if any."""


def judge(new: Head, reference: Head, stored: int, held_root: bytes | None) -> Verdict:
    """What the hub's (signature-checked) checkpoint ``new`` means to a mirror whose
    reference is ``reference`` and which stores ``stored`` entries; ``held_root`` is the root
    of its first ``new.size`` entries when ``new.size <= stored``, else None."""
    if new.size <= stored:
        if held_root is None:
            raise ValueError("the root of a held size is needed to judge it")
        if not hmac.compare_digest(held_root, new.root):
            return Verdict(
                Action.FORK,
                f"the hub signed root {new.root.hex()} at size {new.size}, where the mirror"
                f" holds root {held_root.hex()}",
            )
        if new.size == reference.size:
            return Verdict(Action.UNCHANGED)
        return Verdict(Action.BEHIND, f"the hub shows size {new.size} < {reference.size}")
    if new.size == reference.size:
        if hmac.compare_digest(new.root, reference.root):
            return Verdict(Action.UNCHANGED)
        return Verdict(
            Action.FORK,
            f"the hub signed two roots at size {new.size}: {reference.root.hex()} and"
            f" {new.root.hex()}",
        )
    if new.size > reference.size:
        # RFC 9162 2.1.4: nothing to prove from the empty tree.
        proof = (reference.size, new.size) if reference.size > 0 else None
        return Verdict(Action.EXTEND, proof=proof)
    return Verdict(Action.INSIDE, proof=(new.size, reference.size))


def next_page(stored: int, target: int, limit: int = MAX_PAGE) -> tuple[int, int] | None:
    """The ``[start, end)`` of the next entries to fetch towards ``target``, or None."""
    if stored < 0 or target < 0 or limit < 1:
        raise ValueError("sizes are non-negative and a page holds at least one entry")
    if stored >= target:
        return None
    return stored, min(target, stored + limit)


def backoff(failures: int, *, initial: float, maximum: float) -> float:
    """Seconds to wait after ``failures`` failures in a row: doubling from ``initial``,
    never more than ``maximum`` (0 failures: no wait)."""
    if failures <= 0:
        return 0.0
    return min(maximum, initial * 2.0 ** min(failures - 1, 62))
