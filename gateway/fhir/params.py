"""FHIR search parameters the hub understands, parsed strictly (FHIR R4B 3.1.1.4): a value
that does not parse is a 400 OperationOutcome, never a guess. Pure functions over the query
multidict. Result parameters (``_count``, ``_sort``...) and what the hub does not support
are :mod:`.results`'.

- ``subject`` (or ``patient``): ``Patient/<pseudonym>``, required (personal data only);
- ``date``: ``[eq|ge|gt|le|lt]<date or dateTime>``, repeatable (ANDed);
- ``code``: LOINC codes, comma-separated (ORed), bare or ``http://loinc.org|<code>``;
- ``pilot``: optional; must be the access token's pilot.

Time bounds become text bounds on the stored RFC 3339 UTC ``observed_at``
(``YYYY-MM-DDTHH:MM:SS``, lower inclusive, upper exclusive), whole seconds: a bound with a
fraction of a second is widened to the second that contains it. Text compares as time only
at a fixed width, so every year is written with four digits (FHIR R4B 2.24.0.1 ``date``:
years 0001 to 9999, ``0999`` is year 999).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from multidict import MultiMapping

from .results import BadSearch, Handling, Ignored, Results, handle, one

__all__ = ["BadSearch", "Search", "date_bounds", "parse_search", "resource_codes"]

LOINC_SYSTEM = "http://loinc.org"
_PSEUDONYM = re.compile(r"^[A-Za-z0-9_-]{8,128}$")
_LOINC = re.compile(r"^\d{1,7}-\d$")
_DATE = re.compile(
    r"^(eq|ge|gt|le|lt)?(\d{4}(?:-\d{2}(?:-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?"
    r"(?:Z|[+-]\d{2}:\d{2}))?)?)?)$"
)
_PILOT = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
FILTERS = frozenset({"subject", "patient", "date", "code", "pilot"})


@dataclass(frozen=True)
class Search:
    subject: str
    since: str | None
    """Inclusive lower bound on observed_at, text."""
    until: str | None
    """Exclusive upper bound on observed_at, text."""
    codes: frozenset[str]
    pilot: str | None
    results: Results
    ignored: tuple[Ignored, ...] = ()
    applied: tuple[tuple[str, str], ...] = ()
    """The parameters applied, in the order given (the Bundle's self and next links)."""

    @property
    def count(self) -> int:
        return self.results.count

    @property
    def offset(self) -> int:
        return self.results.offset


def _span(text: str) -> tuple[str, str]:
    """[first instant, first instant after] a FHIR date or dateTime covers, as text bounds."""
    try:
        start = _start(text)
    except (ValueError, OverflowError):
        raise BadSearch(
            f"{text[:40]!r} is not a real date (FHIR dates run from 0001-01-01 to 9999-12-31)"
        ) from None
    try:
        end = _end(text, start)
    except (ValueError, OverflowError):
        # A real start whose end a datetime cannot hold: it lies in year 9999.
        return _text(start), AFTER_9999
    return _text(start), _text(end)


def _start(text: str) -> datetime:
    if "T" in text:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
        return moment.replace(microsecond=0)
    year, month, day = [*map(int, text.split("-")), 1, 1][:3]
    return datetime(year, month, day, tzinfo=UTC)


def _end(text: str, start: datetime) -> datetime:
    if "T" in text:
        seconds = text.count(":") >= 2
        return start + (timedelta(seconds=1) if seconds else timedelta(minutes=1))
    precision = text.count("-")
    if precision == 0:
        return start.replace(year=start.year + 1)
    if precision == 1:
        return start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)
    return start + timedelta(days=1)


#: The first instant after 9999-12-31T23:59:59, as a text bound: ``datetime`` stops at year
#: 9999, and no RFC 3339 time has hour 24, so every stored ``observed_at`` sorts before it.
AFTER_9999 = "9999-12-31T24:00:00"


def _text(moment: datetime) -> str:
    # Not strftime("%Y"): glibc writes year 999 as "999", which sorts after "2025".
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
        f"T{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
    )


def date_bounds(values: list[str]) -> tuple[str | None, str | None]:
    """The tightest [since, until) over every ``date`` parameter (each ANDed)."""
    # Fixed-width text bounds sort as the instants they name.
    low: str | None = None
    high: str | None = None
    for value in values:
        m = _DATE.match(value)
        if m is None:
            raise BadSearch(
                f"date {value[:40]!r} is not [eq|ge|gt|le|lt]YYYY[-MM[-DD[Thh:mm[:ss]Z]]]"
            )
        prefix, text = m.group(1) or "eq", m.group(2)
        start, end = _span(text)
        lo, hi = {
            "eq": (start, end),
            "ge": (start, None),
            "gt": (end, None),
            "le": (None, end),
            "lt": (None, start),
        }[prefix]
        if lo is not None:
            low = lo if low is None else max(low, lo)
        if hi is not None:
            high = hi if high is None else min(high, hi)
    return low, high


def parse_codes(value: str | None) -> frozenset[str]:
    if value is None:
        return frozenset()
    codes = set()
    for token in value.split(","):
        system, bar, code = token.rpartition("|")
        if bar and system != LOINC_SYSTEM:
            raise BadSearch(f"code system must be {LOINC_SYSTEM}")
        if not _LOINC.match(code):
            raise BadSearch(f"{code[:40]!r} is not a LOINC code")
        codes.add(code)
    if len(codes) > 50:
        raise BadSearch("at most 50 codes")
    return frozenset(codes)


def subject_of(value: str | None, name: str = "subject") -> str:
    if value is None:
        raise BadSearch(f"{name}=Patient/<pseudonym> is required", code="subject_required")
    ident = value.removeprefix("Patient/")
    if not _PSEUDONYM.match(ident):
        raise BadSearch(f"{name} must be Patient/<pseudonym> (8-128 of A-Z a-z 0-9 _ -)")
    return ident


def pilot_param(query: MultiMapping[str]) -> str | None:
    pilot = one(query, "pilot")
    if pilot is not None and not _PILOT.match(pilot):
        raise BadSearch("pilot must be a pilot id")
    return pilot


def parse_search(query: MultiMapping[str], *, strict: bool = False) -> Search:
    """A record search (Observation, DiagnosticReport, Composition); ``strict``: the
    request's ``Prefer: handling=strict``."""
    taken: Handling = handle(query, filters=FILTERS, strict=strict, sortable=True)
    filters = taken.filters
    subject = one(filters, "subject")
    patient = one(filters, "patient")
    if subject is not None and patient is not None:
        raise BadSearch("give subject or patient, not both")
    since, until = date_bounds(filters.getall("date", []))
    return Search(
        subject=subject_of(subject if subject is not None else patient),
        since=since,
        until=until,
        codes=parse_codes(one(filters, "code")),
        pilot=pilot_param(filters),
        results=taken.results,
        ignored=taken.ignored,
        applied=taken.applied,
    )


def resource_codes(resource: Mapping[str, object]) -> frozenset[str]:
    """LOINC codes in a resource's ``code`` (Observation, DiagnosticReport) or ``type``
    (Composition)."""
    concept = resource.get("code") or resource.get("type")
    if not isinstance(concept, dict):
        return frozenset()
    codings = concept.get("coding")
    if not isinstance(codings, list):
        return frozenset()
    return frozenset(
        str(c.get("code"))
        for c in codings
        if isinstance(c, dict) and c.get("system") == LOINC_SYSTEM and c.get("code")
    )
