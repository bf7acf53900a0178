"""Retention periods and the code systems pilots use (LOINC check digits, PurposeOfUse)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pilots.retention import Retention
from pilots.terminology import is_fhir_resource_type, is_loinc_code, loinc_check_digit


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("P10Y", "P10Y"),
        ("P1Y6M", "P1Y6M"),
        ("P2W", "P14D"),
        ("PT36H", "PT36H"),
        ("P1DT12H30M", "P1DT12H30M"),
        (30, "P30D"),
    ],
)
def test_retention_forms(text: str | int, iso: str) -> None:
    assert Retention.parse(text).iso() == iso


@pytest.mark.parametrize(
    "bad", ["P", "PT", "10Y", "P1.5Y", "P-1D", "P0D", 0, -3, True, 1.5, "P500Y", None]
)
def test_bad_retention(bad: object) -> None:
    with pytest.raises(ValueError):
        Retention.parse(bad)


def test_retention_until_uses_the_calendar() -> None:
    jan31 = datetime(2024, 1, 31, 8, tzinfo=UTC)
    assert Retention.parse("P1M").until(jan31) == datetime(2024, 2, 29, 8, tzinfo=UTC)
    assert Retention.parse("P1Y").until(datetime(2024, 2, 29, tzinfo=UTC)) == datetime(
        2025, 2, 28, tzinfo=UTC
    )
    assert Retention.parse(90).until(jan31) == datetime(2024, 4, 30, 8, tzinfo=UTC)
    assert Retention.parse("PT12H").until(jan31) == datetime(2024, 1, 31, 20, tzinfo=UTC)


@pytest.mark.parametrize("period", ["P10Y", "P200Y", "P1M", "P30D", "PT1S", 90])
def test_retention_until_a_far_future_start_is_the_end_of_time(period: str | int) -> None:
    """A body "observed" in year 9999 is never due; the sweep must not raise over it."""
    far = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
    end = Retention.parse(period).until(far)
    assert end == datetime.max.replace(tzinfo=UTC)
    assert end > datetime.now(UTC)


def test_retention_until_keeps_the_start_offset_when_clamped() -> None:
    plus2 = timezone(timedelta(hours=2))
    end = Retention.parse("P1Y").until(datetime(9999, 6, 1, tzinfo=plus2))
    assert end.tzinfo == plus2 and end.year == 9999


def test_retention_until_just_below_the_end_of_time_is_exact() -> None:
    start = datetime(9989, 12, 31, tzinfo=UTC)
    assert Retention.parse("P10Y").until(start) == datetime(9999, 12, 31, tzinfo=UTC)


@given(
    years=st.integers(0, 50),
    months=st.integers(0, 11),
    days=st.integers(0, 400),
    seconds=st.integers(0, 86399),
)
def test_retention_iso_round_trips(years: int, months: int, days: int, seconds: int) -> None:
    r = Retention(years, months, days, seconds)
    if r == Retention():
        return
    again = Retention.parse(r.iso())
    assert (again.years, again.months, again.days, again.seconds) == (
        years,
        months,
        days,
        seconds,
    )


@pytest.mark.parametrize(
    "code", ["8480-6", "8462-4", "85354-9", "2339-0", "4548-4", "18842-5", "59284-0", "718-7"]
)
def test_real_loinc_codes(code: str) -> None:
    assert is_loinc_code(code)


@given(number=st.integers(1, 9_999_999), wrong=st.integers(1, 9))
def test_exactly_one_check_digit_is_right(number: int, wrong: int) -> None:
    digits = str(number)
    right = loinc_check_digit(digits)
    assert is_loinc_code(f"{digits}-{right}")
    assert not is_loinc_code(f"{digits}-{(right + wrong) % 10}")


@pytest.mark.parametrize(
    "bad", ["8480", "8480-", "-6", "8480-66", "84a0-6", "12345678-9", "٨٤٨٠-6"]
)
def test_malformed_loinc(bad: str) -> None:
    assert not is_loinc_code(bad)


def test_fhir_resource_types() -> None:
    assert is_fhir_resource_type("Observation")
    assert is_fhir_resource_type("Consent")
    assert not is_fhir_resource_type("Coding")  # a datatype, not a resource
    assert not is_fhir_resource_type("observation")
    assert not is_fhir_resource_type("Nonsense")
