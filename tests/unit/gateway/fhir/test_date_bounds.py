"""FHIR R4B ``date`` search bounds at the edges of the calendar: every year is written with
four digits (years 0001-9999, FHIR R4B 2.24.0.1), so the text bounds sort as the instants
they name; year 0000 is refused; the end of year 9999 is a bound too."""

from __future__ import annotations

import pytest

from gateway.fhir.params import AFTER_9999, BadSearch, date_bounds

STORED = ["0998-06-01T00:00:00Z", "0999-01-01T00:00:00Z", "2026-01-01T00:00:00Z"]


def matches(dates: list[str]) -> list[str]:
    """The stored ``observed_at`` values a search keeps, compared as text as the store does."""
    since, until = date_bounds(dates)
    return [t for t in STORED if (since is None or t >= since) and (until is None or t < until)]


@pytest.mark.parametrize(
    ("dates", "bounds"),
    [
        (["lt0999"], (None, "0999-01-01T00:00:00")),
        (["ge0001-02"], ("0001-02-01T00:00:00", None)),
        (["eq0999-01-01T10:00:00Z"], ("0999-01-01T10:00:00", "0999-01-01T10:00:01")),
        (["0099-12"], ("0099-12-01T00:00:00", "0100-01-01T00:00:00")),
        (["gt9999"], (AFTER_9999, None)),
        (["le9999-12-31"], (None, AFTER_9999)),
        (["9999-12-31T23:59:59Z"], ("9999-12-31T23:59:59", AFTER_9999)),
    ],
)
def test_years_are_written_with_four_digits(
    dates: list[str], bounds: tuple[str | None, str | None]
) -> None:
    assert date_bounds(dates) == bounds


def test_a_bound_before_year_1000_keeps_only_what_is_earlier() -> None:
    assert matches(["lt0999"]) == ["0998-06-01T00:00:00Z"]
    assert matches(["ge0999"]) == STORED[1:]
    assert matches(["gt9999"]) == []
    assert matches(["le9999"]) == STORED


@pytest.mark.parametrize("bad", ["0000", "lt0000-01-01", "ge0001-01-01T00:00:00+01:00", "999"])
def test_years_outside_0001_to_9999_are_refused(bad: str) -> None:
    with pytest.raises(BadSearch):
        date_bounds([bad])
