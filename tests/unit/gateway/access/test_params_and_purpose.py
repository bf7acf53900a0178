"""Pure parsing of the data routes' inputs: FHIR search parameters, purpose of use, scopes,
and the consent book's ingest decision."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from multidict import MultiDict

from gateway.access.consents import ConsentBook, consent_bytes
from gateway.access.purpose import PurposeError, parse_purpose
from gateway.errors import BadParameter
from gateway.fhir.params import BadSearch, date_bounds, parse_search, resource_codes
from gateway.ingest.checks import Rejected
from gateway.smart.scopes import grant, parse_scopes
from ledger.entries import ConsentEntry
from ledger.envelope import SignedRecord, seal
from ledger.keys import generate_key
from pilots import load_pilots, make_consent, with_status

KEY = generate_key()


def q(**kw: str | list[str]) -> MultiDict[str]:
    out: MultiDict[str] = MultiDict()
    for k, v in kw.items():
        for item in v if isinstance(v, list) else [v]:
            out.add(k, item)
    return out


@pytest.mark.parametrize(
    ("dates", "bounds"),
    [
        (["ge2026-01-01"], ("2026-01-01T00:00:00", None)),
        (["le2026-01-31"], (None, "2026-02-01T00:00:00")),
        (["2026-03"], ("2026-03-01T00:00:00", "2026-04-01T00:00:00")),
        (["gt2026"], ("2027-01-01T00:00:00", None)),
        (["lt2026-01-01T10:00:00Z"], (None, "2026-01-01T10:00:00")),
        (["ge2026-01-01T12:00:00+02:00"], ("2026-01-01T10:00:00", None)),
        (
            ["ge2026-01-01", "ge2026-02-01", "le2026-12-31"],
            ("2026-02-01T00:00:00", "2027-01-01T00:00:00"),
        ),
    ],
)
def test_date_bounds(dates: list[str], bounds: tuple[str | None, str | None]) -> None:
    assert date_bounds(dates) == bounds


@pytest.mark.parametrize(
    "bad", ["xx2026", "2026-13-01", "2026-02-30", "' OR 1=1", "ge2026-01-01T10"]
)
def test_bad_dates(bad: str) -> None:
    with pytest.raises(BadSearch):
        date_bounds([bad])


def test_search_parameters() -> None:
    s = parse_search(
        q(subject="Patient/pt-00000001", code="http://loinc.org|85354-9,718-7", _count="5")
    )
    assert (s.subject, s.codes, s.count, s.offset) == (
        "pt-00000001",
        frozenset({"85354-9", "718-7"}),
        5,
        0,
    )
    for bad in [
        q(),
        q(subject="Patient/short"),
        q(subject="Patient/pt-00000001", _count="101"),
        q(subject="Patient/pt-00000001", _count="-1"),
        q(subject="Patient/pt-00000001", code="snomed|123"),
        q(subject=["Patient/pt-00000001", "Patient/pt-00000002"]),
    ]:
        with pytest.raises(BadParameter):
            parse_search(bad)


def test_resource_codes() -> None:
    obs = {"code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}, {"code": "x"}]}}
    assert resource_codes(obs) == frozenset({"718-7"})
    assert resource_codes({"type": "nonsense"}) == frozenset()


def test_purpose_of_use() -> None:
    assert parse_purpose("TREAT") == "TREAT"
    assert parse_purpose("http://terminology.hl7.org/CodeSystem/v3-ActReason|ETREAT") == "ETREAT"
    for bad in [None, "", "treat", "SHOPPING", "http://evil|TREAT"]:
        with pytest.raises(PurposeError):
            parse_purpose(bad)


def test_consent_scopes_are_granted_only_for_consent() -> None:
    allowed = parse_scopes("system/*.cruds")
    granted = grant(parse_scopes("system/Observation.cruds system/Consent.cruds"), allowed)
    assert [str(s) for s in granted] == ["system/Consent.crus", "system/Observation.rs"]


def _header(**kw: object) -> SignedRecord:
    """A record as the consent hook sees it (v2: its subject and Consent in the body)."""
    fields: dict[str, Any] = {
        "pilot": "chronic-care",
        "source": "home-bp",
        "seq": 1,
        "type": "fhir.Observation",
        "subject": "pt-00000001",
        "consent": "c-1",
        "observed_at": "2026-01-01T00:00:00Z",
        "payload": {},
        "signing_key": KEY,
        **kw,
    }
    return seal(**fields)


def test_consent_book_decides_ingest() -> None:
    book = ConsentBook(load_pilots())
    consent = make_consent(consent_id="c-1", subject="pt-00000001", recorded_at=datetime.now(UTC))

    def apply(index: int, c: object, status: str) -> None:
        digest, _ = consent_bytes(c)  # type: ignore[arg-type]
        entry = ConsentEntry(
            action="grant",
            at="2026-01-01T00:00:00Z",
            actor="t",
            pilot="chronic-care",
            consent="c-1",
            subject="pt-00000001",
            status=status,
            resource_hash=digest,
            custodian="harbour-peoples-hospital",
        )
        book.apply(index, entry, c)  # type: ignore[arg-type]

    with pytest.raises(Rejected) as missing:
        book.check_record(_header(), "harbour-peoples-hospital")
    assert missing.value.reason == "consent_required"
    apply(1, consent, "active")
    book.check_record(_header(), "harbour-peoples-hospital")
    with pytest.raises(Rejected) as other:
        book.check_record(_header(subject="pt-00000002"), "harbour-peoples-hospital")
    assert other.value.reason == "consent_not_active"
    apply(2, with_status(consent, "inactive"), "inactive")
    with pytest.raises(Rejected) as withdrawn:
        book.check_record(_header(), "harbour-peoples-hospital")
    assert withdrawn.value.reason == "consent_not_active"
    assert book.current_for("chronic-care", "pt-00000001").status == "inactive"  # type: ignore[union-attr]
    # Non-personal data and types that need no consent pass.
    book.check_record(
        _header(subject=None, consent=None, type="stats.chronic-care-weekly"), "vitalink"
    )
