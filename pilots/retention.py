"""Retention periods: an ISO 8601 duration (``P10Y``, ``P30D``, ``PT12H``) or a number of
days, and the instant a body kept from ``observed_at`` falls due for erasure."""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import MAXYEAR, datetime, timedelta
from typing import Any

# ISO 8601-1 §5.5.2.4 duration in the "PnYnMnWnDTnHnMnS" form, integers only (a retention
# period has no use for fractions), at least one component.
_DURATION = re.compile(
    r"^P(?!$)(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+)S)?)?$"
)
_MAX_YEARS = 200


@dataclass(frozen=True, slots=True)
class Retention:
    """How long a record's body is kept. Calendar parts (years, months) are added on the
    calendar, the rest as exact durations."""

    years: int = 0
    months: int = 0
    days: int = 0
    seconds: int = 0

    @classmethod
    def parse(cls, value: object) -> Retention:
        """``"P10Y"``, ``"P1Y6M"``, ``"PT36H"`` or a whole number of days (``30``)."""
        if isinstance(value, Retention):
            return value
        if isinstance(value, bool):
            raise ValueError("retention is an ISO 8601 duration such as P30D, or days")
        if isinstance(value, int):
            if value <= 0:
                raise ValueError("retention in days must be at least 1")
            return cls(days=value)._checked()
        if not isinstance(value, str):
            raise ValueError("retention is an ISO 8601 duration such as P30D, or days")
        m = _DURATION.match(value)
        if m is None:
            raise ValueError(
                f"{value!r} is not an ISO 8601 duration (examples: P30D, P1Y6M, PT12H, P2W)"
            )
        n = {k: int(v) if v else 0 for k, v in m.groupdict().items()}
        retention = cls(
            years=n["years"],
            months=n["months"],
            days=n["days"] + 7 * n["weeks"],
            seconds=n["hours"] * 3600 + n["minutes"] * 60 + n["seconds"],
        )
        return retention._checked()

    def _checked(self) -> Retention:
        if self.years == self.months == self.days == self.seconds == 0:
            raise ValueError("retention must be longer than zero")
        if self.years + self.months / 12 + self.days / 365 > _MAX_YEARS:
            raise ValueError(f"retention longer than {_MAX_YEARS} years is not a retention")
        return self

    def until(self, start: datetime) -> datetime:
        """The first instant at which a body observed at ``start`` is past retention.

        Months are added on the calendar and clamped to the month's last day
        (31 January + P1M = 28/29 February). A due date past the last instant a datetime
        holds (year 9999) is that last instant: such a body is never due, and a far-future
        ``observed_at`` must not make the arithmetic raise in the middle of a sweep.
        """
        end_of_time = datetime.max.replace(tzinfo=start.tzinfo)
        month_index = start.month - 1 + self.months + 12 * self.years
        year, month = start.year + month_index // 12, month_index % 12 + 1
        if year > MAXYEAR:
            return end_of_time
        day = min(start.day, calendar.monthrange(year, month)[1])
        moved = start.replace(year=year, month=month, day=day)
        try:
            return moved + timedelta(days=self.days, seconds=self.seconds)
        except OverflowError:
            return end_of_time

    def iso(self) -> str:
        """The canonical ISO 8601 text (``P1Y6M``, ``P30D``, ``PT12H``)."""
        date = "".join(
            f"{n}{u}" for n, u in ((self.years, "Y"), (self.months, "M"), (self.days, "D")) if n
        )
        h, rest = divmod(self.seconds, 3600)
        mi, s = divmod(rest, 60)
        time = "".join(f"{n}{u}" for n, u in ((h, "H"), (mi, "M"), (s, "S")) if n)
        return "P" + date + (f"T{time}" if time else "")

    def __str__(self) -> str:
        return self.iso()


def parse_retention(value: Any) -> Retention:
    """Pydantic before-validator form of :meth:`Retention.parse`."""
    return Retention.parse(value)
