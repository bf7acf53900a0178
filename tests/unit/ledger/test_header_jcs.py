"""The header fast path gives exactly the rfc8785 library's bytes for every valid header."""

from __future__ import annotations

import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.envelope import RecordHeader, header_jcs

slug = st.from_regex(r"\A[a-z0-9][a-z0-9._-]{0,63}\Z")
pseudonym = st.from_regex(r"\A[A-Za-z0-9_-]{8,128}\Z")


@st.composite
def headers(draw: st.DrawFn) -> RecordHeader:
    subject = draw(st.none() | pseudonym)
    consent = (
        draw(st.from_regex(r"\A[A-Za-z0-9\-.]{1,64}\Z"))
        if subject
        else draw(st.none() | st.from_regex(r"\A[A-Za-z0-9\-.]{1,64}\Z"))
    )
    return RecordHeader.model_validate(
        {
            "v": 1,
            "id": draw(st.uuids()).hex[:8] + "-0000-7000-8000-" + "0" * 12,
            "pilot": draw(slug),
            "source": draw(slug),
            "seq": draw(st.integers(1, 2**53 - 1)),
            "type": draw(st.from_regex(r"\A[A-Za-z][A-Za-z0-9._-]{0,63}\Z")),
            "subject": subject,
            "consent": consent,
            "observed_at": "2026-05-04T08:00:00.123456Z",
            "commitment": draw(st.from_regex(r"\A[0-9a-f]{64}\Z")),
            "key": draw(st.from_regex(r"\A[A-Za-z0-9._:-]{1,64}\Z")),
        }
    )


@settings(max_examples=300, deadline=None)
@given(headers())
def test_fast_header_jcs_equals_the_library(header: RecordHeader) -> None:
    assert header_jcs(header) == rfc8785.dumps(header.model_dump())
