"""When a key vouches for a record, and when an ``observed_at`` is believable: pure
decisions on the hub's clock, each returning the refusal's detail or None.

Time comes from the hub, never from the record. A key is judged at ``received_at``, the
instant the intake took the message, because ``observed_at`` is whatever the signer wrote:
judged by it, a revoked key would go on landing records "observed" before its revocation
for ever. The registry it is checked against is the one the log holds at that moment (a
registry change counts from its commit).

Rotation and revocation differ on purpose. A rotation (or a ``valid_until``) is planned: a
record signed just before it may still be in flight, so it lands if it was observed before
the key's end and arrives within the pilot's small late-delivery window. A revocation says
the key may be in someone else's hands: nothing it signs lands after it, whatever it
claims. In both cases an honest agent re-seals what its outbox still holds with its new
key when it starts with it (``edge/reseal.py``), so its backlog does not need the old key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

from pilots.models import DEFAULT_LATE_DELIVERY_WINDOW, duration_iso

from ..registry.state import ROTATED, Key, parse_time


@dataclass(frozen=True)
class TimeRules:
    """The hub's time limits: how far ahead of its clock ``observed_at`` may be, and each
    pilot's late-delivery window (pilots without a definition get the default)."""

    max_clock_skew: timedelta = timedelta(minutes=5)
    late_delivery: Mapping[str, timedelta] = field(default_factory=dict)
    default_late_delivery: timedelta = DEFAULT_LATE_DELIVERY_WINDOW

    def late_delivery_window(self, pilot: str) -> timedelta:
        return self.late_delivery.get(pilot, self.default_late_delivery)


DEFAULT_TIME_RULES: Final = TimeRules()


@dataclass(frozen=True)
class KeyPeriod:
    """When a key may sign. ``planned_end`` is where its life was meant to end (its
    ``valid_until``, or the start of the key that rotated it out); ``revoked_at`` is where
    it stopped being trusted (a revocation for any other reason: compromise, a lost device).
    """

    key_id: str
    valid_from: datetime
    planned_end: datetime | None = None
    revoked_at: datetime | None = None

    @classmethod
    def of(cls, key: Key) -> KeyPeriod:
        ends = [parse_time(key.valid_until)] if key.valid_until else []
        revoked = None
        if key.revoked_at is not None:
            if key.revoke_reason == ROTATED:
                ends.append(parse_time(key.revoked_at))
            else:
                revoked = parse_time(key.revoked_at)
        return cls(key.key_id, parse_time(key.valid_from), min(ends, default=None), revoked)


def key_refusal(
    period: KeyPeriod, *, observed_at: datetime, received_at: datetime, late_window: timedelta
) -> str | None:
    """Why a record signed by this key must be refused, or None if the key vouches for it.

    The key must be in force at ``received_at``; ``observed_at`` matters only for a record
    arriving within ``late_window`` after a planned end, which must have been observed
    before that end. A record observed before the key's ``valid_from`` is fine: it is a
    backlog the agent re-sealed with its current key, or history it is importing.
    """
    kid = period.key_id
    if received_at < period.valid_from:
        return f"key {kid} is valid from {_text(period.valid_from)}; received {_text(received_at)}"
    if period.revoked_at is not None and received_at >= period.revoked_at:
        return (
            f"key {kid} was revoked at {_text(period.revoked_at)}; nothing it signs is"
            f" accepted after that, whatever its observed_at (received {_text(received_at)})"
        )
    end = period.planned_end
    if end is None or received_at < end:
        return None
    if received_at - late_window >= end:
        return (
            f"key {kid} ended at {_text(end)}; received {_text(received_at)}, after the"
            f" pilot's late-delivery window of {duration_iso(late_window)}:"
            " re-seal it with the current key"
        )
    if observed_at >= end:
        return (
            f"key {kid} ended at {_text(end)}; a record observed at {_text(observed_at)}"
            " needs the key that replaced it"
        )
    return None


def future_refusal(
    observed_at: datetime, *, received_at: datetime, max_clock_skew: timedelta
) -> str | None:
    """Why ``observed_at`` is not believable, or None: no record is observed after it
    arrives, give or take the clock skew allowed between a gateway and the hub."""
    if observed_at > received_at + max_clock_skew:
        return (
            f"observed_at {_text(observed_at)} is ahead of the hub's clock ({_text(received_at)})"
            f" by more than {duration_iso(max_clock_skew)}; check the source's clock"
        )
    return None


def _text(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")
