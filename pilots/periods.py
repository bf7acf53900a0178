"""Instants covered by FHIR ``date``, ``dateTime`` and ``instant`` values, as a Consent's
``period`` and ``dataPeriod`` need them (FHIR R4B Period: the end includes all of its last
unit, so 2012-02-03 ends at the end of that day). Dates without a time are UTC days."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

from .errors import ConsentError

_PARTIAL = re.compile(r"^(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?$")


def aware(name: str, value: datetime) -> datetime:
    if not isinstance(value, datetime):
        raise ConsentError(f"{name} must be a datetime, not {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ConsentError(f"{name} must be timezone-aware (UTC): {value.isoformat()}")
    return value


def _span(value: object) -> tuple[datetime, datetime]:
    """[first instant, first instant after] covered by a FHIR date, dateTime or instant."""
    if isinstance(value, datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        # A dateTime covers its own precision: 10:00:00 ends after 10:00:00.999999.
        step = timedelta(seconds=1) if moment.microsecond == 0 else timedelta(microseconds=1)
        return moment, moment + step
    if isinstance(value, date):
        start = datetime(value.year, value.month, value.day, tzinfo=UTC)
        return start, start + timedelta(days=1)
    m = _PARTIAL.match(str(value))
    if m is None:
        return _span(datetime.fromisoformat(str(value)))
    year, month, day = int(m[1]), m[2], m[3]
    if day is not None:
        return _span(date(year, int(month), int(day)))
    if month is not None:
        start = datetime(year, int(month), 1, tzinfo=UTC)
        nxt = datetime(year + int(month) // 12, int(month) % 12 + 1, 1, tzinfo=UTC)
        return start, nxt
    return datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC)


def lower(value: object) -> datetime:
    return _span(value)[0]


def upper(value: object) -> datetime:
    return _span(value)[1]
