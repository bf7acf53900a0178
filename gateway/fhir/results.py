"""Search result parameters and the handling of what the hub does not support (FHIR R4B
3.1.1.5 "Modifying Search Results", 3.1.1.4 "Handling Errors"). Pure functions.

- ``_count``: page size, 0..100 (default 20); ``0`` asks for the total only, no entries;
- ``_offset``: paging (from our own ``next`` links);
- ``_sort``: ``date`` or ``-date`` where the type has a date (the record's time);
- ``_summary``: ``count`` (the total only) or ``false`` (the default);
- ``_total``: ``none`` leaves ``Bundle.total`` out; ``estimate`` and ``accurate`` give the
  exact count (cheap: the hub counts every match to page them);
- ``_elements``: top-level element names; each resource keeps those and its mandatory
  elements, and is tagged ``SUBSETTED``;
- ``_format``: JSON forms only (others are a 406, :mod:`.negotiation`).

Anything else -- an unknown parameter, a modifier, ``_pretty=true``, ``_summary=text``, a
``_sort`` on anything but the date -- follows the request's ``Prefer: handling=`` (FHIR R4B
3.1.1.4): ``strict`` makes it a 400 OperationOutcome; ``lenient``, the default, ignores it
and says so in an OperationOutcome entry of the Bundle (``search.mode = outcome``).
Values of supported parameters that do not parse are a 400 either way.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from multidict import MultiDict, MultiMapping

from ..errors import BadParameter

DEFAULT_COUNT = 20
MAX_COUNT = 100
MAX_OFFSET = 1_000_000
MAX_ELEMENTS = 32
RESULT_PARAMETERS = frozenset(
    {"_count", "_offset", "_sort", "_summary", "_total", "_elements", "_format", "_pretty"}
)
_ELEMENT = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,63}$")


class BadSearch(BadParameter):
    code = "bad_search"


@dataclass(frozen=True)
class Ignored:
    """A parameter the hub did not apply (lenient handling), and why."""

    name: str
    value: str
    why: str

    def sentence(self) -> str:
        return f"ignored {self.name}={self.value[:60]}: {self.why}"


@dataclass(frozen=True)
class Results:
    count: int
    """Page size; 0: the total only."""
    offset: int
    descending: bool
    """``_sort=-date``: newest first (else oldest first)."""
    total: bool
    """Whether ``Bundle.total`` is given."""
    elements: frozenset[str] | None
    """``_elements``: the top-level elements to keep, or None for whole resources."""


@dataclass(frozen=True)
class Handling:
    """How one request's parameters were taken: the filters and results to apply, what was
    ignored, and the parameters applied (for the Bundle's ``self`` and ``next`` links)."""

    filters: MultiDict[str]
    results: Results
    ignored: tuple[Ignored, ...]
    applied: tuple[tuple[str, str], ...]


def prefers_strict(prefer: str | None) -> bool:
    """``Prefer: handling=strict`` (RFC 7240 preferences, comma-separated; a preference
    the hub does not know is ignored, as RFC 7240 2 asks)."""
    for part in (prefer or "").split(","):
        for item in part.split(";"):
            name, _, value = item.partition("=")
            if name.strip().lower() == "handling":
                return value.strip().strip('"').lower() == "strict"
    return False


def one(query: MultiMapping[str], name: str) -> str | None:
    values = query.getall(name, [])
    if len(values) > 1:
        raise BadSearch(f"{name} may be given only once")
    return values[0] if values else None


def whole_number(text: str | None, name: str, default: int, low: int, high: int) -> int:
    if text is None or text == "":
        return default
    if not (text.isascii() and text.isdigit()) or len(text) > 9:
        raise BadSearch(f"{name} must be a whole number, not {text[:32]!r}")
    value = int(text)
    if not low <= value <= high:
        raise BadSearch(f"{name} must be between {low} and {high}")
    return value


class _Taker:
    """Collects what is ignored, or raises at once under strict handling."""

    def __init__(self, strict: bool) -> None:
        self.strict = strict
        self.ignored: list[Ignored] = []

    def unsupported(self, name: str, value: str, why: str) -> None:
        if self.strict:
            raise BadSearch(
                f"{name}={value[:60]} is not supported: {why} (Prefer: handling=strict)",
                code="unsupported_parameter",
            )
        self.ignored.append(Ignored(name, value, why))


def handle(
    query: MultiMapping[str],
    *,
    filters: Iterable[str],
    strict: bool,
    sortable: bool,
) -> Handling:
    """Split a search's parameters into its filters (names in ``filters``), its result
    parameters, and what is not supported (ignored or, when ``strict``, a 400)."""
    known = frozenset(filters)
    taker = _Taker(strict)
    kept: MultiDict[str] = MultiDict()
    applied: list[tuple[str, str]] = []
    for name, value in query.items():
        if name in known:
            kept.add(name, value)
            applied.append((name, value))
        elif name not in RESULT_PARAMETERS:
            taker.unsupported(name, value, "not a search parameter of this hub")
    count = whole_number(one(query, "_count"), "_count", DEFAULT_COUNT, 0, MAX_COUNT)
    offset = whole_number(one(query, "_offset"), "_offset", 0, 0, MAX_OFFSET)
    if one(query, "_count") is not None:
        applied.append(("_count", str(count)))
    descending = _sort(one(query, "_sort"), sortable, taker, applied)
    summary = one(query, "_summary")
    if summary == "count":
        count = 0
        applied.append(("_summary", "count"))
    elif summary is not None and summary != "false":
        taker.unsupported("_summary", summary, "only _summary=count and false are served")
    total = _total(one(query, "_total"), taker, applied)
    elements = _elements(one(query, "_elements"), taker, applied)
    pretty = one(query, "_pretty")
    if pretty not in (None, "false"):
        taker.unsupported("_pretty", pretty, "answers are compact JSON")
    fmt = one(query, "_format")
    if fmt is not None:
        applied.append(("_format", fmt))
    results = Results(count, offset, descending, total or count == 0, elements)
    # Reported in the order they were given.
    order = {name: i for i, name in reversed(list(enumerate(query.keys())))}
    ignored = sorted(taker.ignored, key=lambda item: order.get(item.name, len(order)))
    return Handling(kept, results, tuple(ignored), tuple(applied))


def _sort(value: str | None, sortable: bool, taker: _Taker, applied: list[tuple[str, str]]) -> bool:
    if value is None:
        return False
    if sortable and value in ("date", "-date"):
        applied.append(("_sort", value))
        return value == "-date"
    served = "date and -date" if sortable else "no sort order (results come in log order)"
    taker.unsupported("_sort", value, f"this search sorts by {served} only")
    return False


def _total(value: str | None, taker: _Taker, applied: list[tuple[str, str]]) -> bool:
    if value is None:
        return True
    if value in ("none", "estimate", "accurate"):
        applied.append(("_total", value))
        return value != "none"
    taker.unsupported("_total", value, "_total is none, estimate or accurate")
    return True


def _elements(
    value: str | None, taker: _Taker, applied: list[tuple[str, str]]
) -> frozenset[str] | None:
    if value is None:
        return None
    names = [name.strip() for name in value.split(",") if name.strip()]
    if not names or len(names) > MAX_ELEMENTS or not all(_ELEMENT.match(n) for n in names):
        taker.unsupported(
            "_elements",
            value,
            f"_elements takes 1 to {MAX_ELEMENTS} top-level element names (no paths, no '-')",
        )
        return None
    applied.append(("_elements", value))
    return frozenset(names)
