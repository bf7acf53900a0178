"""FHIR search parameters the hub understands, parsed strictly (FHIR R4B 3.1.1.4): anything
else is a 400 OperationOutcome, never a guess. Pure functions over the query multidict.

- ``subject`` (or ``patient``): ``Patient/<pseudonym>``, required (personal data only);
- ``date``: ``[eq|ge|gt|le|lt]<date or dateTime>``, repeatable (ANDed);
- ``code``: LOINC codes, comma-separated (ORed), bare or ``http://loinc.org|<code>``;
- ``_count`` (1..100, default 20), ``_offset`` (paging, from our own ``next`` links);
- ``pilot``: optional; must be the access token's pilot.

Time bounds become text bounds on the stored RFC 3339 UTC ``observed_at``
(``YYYY-MM-DDTHH:MM:SS``, lower inclusive, upper exclusive), whole seconds: a bound with a
fraction of a second is widened to the second that contains it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from multidict import MultiMapping

from ..errors import BadParameter

LOINC_SYSTEM = "http://loinc.org"
DEFAULT_COUNT = 20
MAX_COUNT = 100
MAX_OFFSET = 1_000_000
_PSEUDONYM = re.compile(r"^[A-Za-z0-9_-]{8,128}$")
_LOINC = re.compile(r"^\d{1,7}-\d$")
_DATE = re.compile(
    r"^(eq|ge|gt|le|lt)?(\d{4}(?:-\d{2}(?:-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?"
    r"(?:Z|[+-]\d{2}:\d{2}))?)?)?)$"
)
_PILOT = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
KNOWN = frozenset({"subject", "patient", "date", "code", "_count", "_offset", "pilot", "_format"})


class BadSearch(BadParameter):
    code = "bad_search"


@dataclass(frozen=True)
class Search:
    subject: str
    since: str | None
    """Inclusive lower bound on observed_at, text."""
    until: str | None
    """Exclusive upper bound on observed_at, text."""
    codes: frozenset[str]
    count: int
    offset: int
    pilot: str | None


def _one(query: MultiMapping[str], name: str) -> str | None:
    values = query.getall(name, [])
    if len(values) > 1:
        raise BadSearch(f"{name} may be given only once")
    return values[0] if values else None


def _int(query: MultiMapping[str], name: str, default: int, low: int, high: int) -> int:
    text = _one(query, name)
    if text is None or text == "":
        return default
    if not (text.isascii() and text.isdigit()) or len(text) > 9:
        raise BadSearch(f"{name} must be a whole number, not {text[:32]!r}")
    value = int(text)
    if not low <= value <= high:
        raise BadSearch(f"{name} must be between {low} and {high}")
    return value


def _span(text: str) -> tuple[datetime, datetime]:
    """[first instant, first instant after] a FHIR date or dateTime covers."""
    parts = text.split("-")
    try:
        if "T" not in text:
            year = int(parts[0])
            if len(parts) == 1:
                return datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC)
            month = int(parts[1])
            if len(parts) == 2:
                start = datetime(year, month, 1, tzinfo=UTC)
                end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
                return start, end
            start = datetime(year, month, int(parts[2]), tzinfo=UTC)
            return start, start + timedelta(days=1)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
    except (ValueError, OverflowError):
        raise BadSearch(f"{text[:40]!r} is not a real date") from None
    seconds = text.count(":") >= 2
    step = timedelta(seconds=1) if seconds else timedelta(minutes=1)
    floor = moment.replace(microsecond=0)
    return floor, floor + step


def _text(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


def date_bounds(values: list[str]) -> tuple[str | None, str | None]:
    """The tightest [since, until) over every ``date`` parameter (each ANDed)."""
    low: datetime | None = None
    high: datetime | None = None
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
    return (_text(low) if low else None), (_text(high) if high else None)


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


def subject_of(value: str | None) -> str:
    if value is None:
        raise BadSearch("subject=Patient/<pseudonym> is required", code="subject_required")
    ident = value.removeprefix("Patient/")
    if not _PSEUDONYM.match(ident):
        raise BadSearch("subject must be Patient/<pseudonym> (8-128 of A-Z a-z 0-9 _ -)")
    return ident


def parse_search(query: MultiMapping[str]) -> Search:
    unknown = sorted(set(query) - KNOWN)
    if unknown:
        raise BadSearch(
            f"unsupported search parameter {unknown[0][:40]!r}"
            " (supported: subject, date, code, _count, _offset, pilot)",
            code="unsupported_parameter",
        )
    fmt = _one(query, "_format")
    if fmt is not None and fmt not in ("json", "application/fhir+json", "application/json"):
        raise BadSearch("only _format=json is served")
    subject = _one(query, "subject")
    patient = _one(query, "patient")
    if subject is not None and patient is not None:
        raise BadSearch("give subject or patient, not both")
    since, until = date_bounds(query.getall("date", []))
    pilot = _one(query, "pilot")
    if pilot is not None and not _PILOT.match(pilot):
        raise BadSearch("pilot must be a pilot id")
    return Search(
        subject=subject_of(subject if subject is not None else patient),
        since=since,
        until=until,
        codes=parse_codes(_one(query, "code")),
        count=_int(query, "_count", DEFAULT_COUNT, 1, MAX_COUNT),
        offset=_int(query, "_offset", 0, 0, MAX_OFFSET),
        pilot=pilot,
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
