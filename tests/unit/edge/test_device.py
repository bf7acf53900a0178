"""A personal device's side: the type and time a reading is sealed with, and the seal."""

from __future__ import annotations

import pytest

from edge.device import clock_seq, reading_time, reading_type, seal_reading
from edge.errors import InvalidInput
from ledger.envelope import RecordHeaderV2, check_commitment, check_signature
from ledger.keys import generate_key, key_id
from ledger.suite import Suite
from tests.support.devices import CONSENT, SUBJECT, reading
from tests.support.drafts import NOW, air


def test_a_fhir_reading_names_its_type_and_others_must_be_named() -> None:
    assert reading_type(reading(), None) == "fhir.Observation"
    assert reading_type(air(), "city.air-quality") == "city.air-quality"
    with pytest.raises(InvalidInput) as err:
        reading_type(air(), None)
    assert err.value.reason == "type_required"


@pytest.mark.parametrize(
    ("payload", "given", "expected"),
    [
        (reading(), None, "2026-05-01T08:30:00.000000Z"),  # effectiveDateTime, in UTC
        (air(), None, NOW),
        ({"pm25": 1}, None, None),
        (air(), "2026-05-02T00:00:00Z", "2026-05-02T00:00:00Z"),
    ],
)
def test_the_reading_time_comes_from_the_payload_unless_given(
    payload: dict[str, object], given: str | None, expected: str | None
) -> None:
    assert reading_time(payload, given) == expected


def test_a_sealed_reading_is_a_v2_envelope_about_its_person(suite: Suite) -> None:
    key = generate_key(suite)
    record = seal_reading(
        reading(),
        pilot="hospital-a",
        source="hd-1",
        seq=clock_seq(),
        signing_key=key,
        subject=SUBJECT,
        consent=CONSENT,
    )
    assert isinstance(record.header, RecordHeaderV2) and record.header.person is not None
    assert (record.subject, record.consent) == (SUBJECT, CONSENT)
    check_commitment(record, suite)
    check_signature(record.header.canonical(), record.sig, key.public_key())
    assert record.header.key == key_id(key.public_key())


def test_a_reading_that_cannot_be_sealed_says_why() -> None:
    with pytest.raises(InvalidInput) as err:
        seal_reading(
            reading(),
            pilot="hospital-a",
            source="hd-1",
            seq=1,
            signing_key=generate_key(),
            subject=SUBJECT,
        )
    assert "consent" in err.value.detail
