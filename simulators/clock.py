"""Scenario time: the window a scenario covers, RFC 3339 text, and the city's daily rhythms.

Every timestamp a generator makes derives from the scenario's start; nothing reads the wall
clock. The city's clock is UTC (a scenario starting at ``T00:00:00Z`` starts at midnight in
the city), which keeps the shapes easy to check: rush hours are at 08:00 and 17:30 in the file.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def rfc3339(moment: datetime) -> str:
    """``moment`` as RFC 3339 UTC to the second (``2026-05-04T08:15:00Z``).

    One fixed width, so that text order is time order (scenario lines sort by this string).
    """
    return moment.astimezone(UTC).strftime(_FORMAT)


def parse_utc(text: str) -> datetime:
    """An RFC 3339 time with an offset (``Z`` or ``+hh:mm``) as an aware UTC datetime."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is not an RFC 3339 time such as 2026-05-04T00:00:00Z") from None
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset; add Z, e.g. 2026-05-04T00:00:00Z")
    return moment.astimezone(UTC).replace(microsecond=0)


@dataclass(frozen=True)
class Window:
    """The half-open interval ``[start, end)`` a scenario covers."""

    start: datetime
    duration: timedelta

    @property
    def end(self) -> datetime:
        return self.start + self.duration

    @property
    def seconds(self) -> int:
        return int(self.duration.total_seconds())

    def at(self, fraction: float) -> datetime:
        """The moment ``fraction`` (0..1) of the way through, to the second."""
        return self.start + timedelta(seconds=round(self.seconds * fraction))

    def ticks(self, interval: timedelta) -> Iterator[datetime]:
        """``start, start + interval, ...`` while inside the window."""
        moment = self.start
        while moment < self.end:
            yield moment
            moment += interval

    def days(self) -> list[datetime]:
        """Midnight of every city day the window touches."""
        first = self.start.replace(hour=0, minute=0, second=0)
        out = []
        day = first
        while day < self.end:
            out.append(day)
            day += timedelta(days=1)
        return out

    def __contains__(self, moment: object) -> bool:
        return isinstance(moment, datetime) and self.start <= moment < self.end


def hour_of_day(moment: datetime) -> float:
    """City time of day in hours (0 <= h < 24)."""
    return moment.hour + moment.minute / 60 + moment.second / 3600


def is_weekend(moment: datetime) -> bool:
    return moment.weekday() >= 5


def bump(hour: float, centre: float, width: float) -> float:
    """A Gaussian bump on the 24-hour circle: 1 at ``centre``, ~0.6 at ``width`` hours away."""
    distance = abs(hour - centre) % 24
    distance = min(distance, 24 - distance)
    return math.exp(-0.5 * (distance / width) ** 2)


def traffic_index(moment: datetime) -> float:
    """Relative road demand (about 1.0 at the weekday morning peak, ~0.05 at 03:00).

    Weekdays: a sharp morning rush at 08:00, a broader evening rush at 17:30 and a daytime
    plateau; weekends: one late-morning-to-afternoon hump, lower than a weekday rush.
    """
    h = hour_of_day(moment)
    if is_weekend(moment):
        return 0.05 + 0.55 * bump(h, 13.5, 3.2) + 0.12 * bump(h, 20.0, 1.8)
    return (
        0.04
        + 0.92 * bump(h, 8.0, 1.0)
        + 0.85 * bump(h, 17.5, 1.3)
        + 0.42 * bump(h, 12.5, 2.8)
        + 0.10 * bump(h, 21.0, 1.5)
    )
