"""Sealed personal fields (wire v2): commitments, openings, the opened view, blinding, and the
sealed leaves of the consent, access and erasure kinds."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.canonical import canonical_json
from ledger.entries import AccessEntry, ConsentEntry, ErasureEntry, RegistryEntry
from ledger.errors import InvalidEnvelope
from ledger.keys import b64url_encode
from ledger.sealed import (
    PERSON,
    Opening,
    blind,
    commit,
    opened,
    seal,
    subject_tag,
    unblind,
)

SALT = bytes(range(16))
SUBJECT = "pt-3f9a0c1d2e4b"

ACCESS = AccessEntry(
    at="2026-05-04T08:30:00Z",
    client="php-ehr",
    org="harbour-peoples-hospital",
    pilot="chronic-care",
    purpose="TREAT",
    type="fhir.Observation",
    subject=SUBJECT,
    decision="deny",
    reason="consent_inactive",
    request=f"GET /fhir/Observation?patient={SUBJECT}",
    count=0,
)
CONSENT = ConsentEntry(
    action="withdraw",
    at="2026-05-04T08:30:00Z",
    actor="php-ehr",
    pilot="chronic-care",
    consent="c-7",
    subject=SUBJECT,
    status="inactive",
    resource_hash="ab" * 32,
    erase=True,
    custodian="harbour-peoples-hospital",
)
ERASURE = ErasureEntry(
    at="2026-05-04T08:30:00Z", actor="php-ehr", index=12, record="r-1", reason="consent-withdrawn"
)


def test_a_commitment_is_sha256_of_salt_and_jcs() -> None:
    from hashlib import sha256

    fields = {"subject": SUBJECT, "consent": "c-7"}
    assert commit(SALT, fields) == sha256(SALT + canonical_json(fields)).hexdigest()
    opening = seal(fields, salt=SALT)
    assert opening.salt == b64url_encode(SALT) and opening.opens(commit(SALT, fields))


def test_none_fields_are_left_out() -> None:
    assert seal({"a": 1, "b": None}, salt=SALT) == seal({"a": 1}, salt=SALT)


@given(st.text(min_size=1, max_size=40), st.text(min_size=1, max_size=40))
def test_an_opening_opens_its_commitment_only(a: str, b: str) -> None:
    opening = seal({"subject": a})
    assert opening.opens(opening.commitment())
    if a != b:
        assert not Opening(opening.salt, {"subject": b}).opens(opening.commitment())
    assert not opening.opens(seal({"subject": a}).commitment())  # another salt
    assert not opening.opens(None) and not opening.opens(42)


def test_an_opening_round_trips_and_refuses_what_is_not_one() -> None:
    opening = seal({"subject": SUBJECT}, salt=SALT)
    assert Opening.decode(opening.encode()) == opening
    for raw in (b"", b"[]", b'{"salt": "x"}', b'{"fields": [], "salt": "x"}', b"\xff"):
        with pytest.raises(InvalidEnvelope):
            Opening.decode(raw)
    with pytest.raises(InvalidEnvelope):
        seal({}, salt=b"short")


@pytest.mark.parametrize("entry", [ACCESS, CONSENT, ERASURE], ids=["access", "consent", "erasure"])
def test_a_sealed_leaf_keeps_only_its_public_fields(entry: Any) -> None:
    leaf, opening = entry.sealed()
    value = json.loads(leaf)
    assert opening is not None and value["v"] == 2
    assert set(value) == {*[k for k in entry.PUBLIC if getattr(entry, k) is not None], "v", PERSON}
    assert not set(opening.fields) & set(value)
    assert opening.opens(value[PERSON])
    assert type(entry).from_leaf(leaf, opening) == entry
    assert type(entry).from_leaf(entry.leaf()) == entry  # v1 leaves read the same


def test_nothing_that_names_a_person_is_in_a_sealed_leaf() -> None:
    for entry in (ACCESS, CONSENT):
        leaf, _ = entry.sealed()
        for needle in (SUBJECT, "c-7", "consent_inactive", "patient="):
            assert needle.encode() not in leaf, needle


def test_two_sealed_leaves_of_one_fact_do_not_look_alike() -> None:
    assert ACCESS.sealed()[0] != ACCESS.sealed()[0]
    assert ACCESS.sealed(salt=SALT)[0] == ACCESS.sealed(salt=SALT)[0]


def test_a_sealed_leaf_without_its_opening_is_not_the_fact() -> None:
    leaf, opening = CONSENT.sealed()
    with pytest.raises(InvalidEnvelope, match="opening is not held"):
        ConsentEntry.from_leaf(leaf)
    other = seal({**opening.fields, "subject": "pt-someone-else"}) if opening else None
    # An opening of another commitment is not applied.
    assert "subject" not in opened(json.loads(leaf), other)
    with pytest.raises(InvalidEnvelope):
        ConsentEntry.from_leaf(leaf, other)


def test_kinds_that_name_nobody_are_not_sealed() -> None:
    entry = RegistryEntry(action="org.add", at="2026-05-04T08:30:00Z", actor="admin", org="x")
    assert entry.sealed() == (entry.leaf(), None)


def test_a_blinded_opening_opens_with_its_pseudonym_pilot_and_index_only() -> None:
    opening = seal({"subject": SUBJECT, "reason": "consent_inactive"})
    box = blind(opening, pilot="chronic-care", subject=SUBJECT, index=7)
    assert SUBJECT.encode() not in box and b"consent_inactive" not in box
    assert unblind(box, pilot="chronic-care", subject=SUBJECT, index=7) == opening
    for pilot, subject, index in (
        ("chronic-care", "pt-someone-else", 7),
        ("referral", SUBJECT, 7),
        ("chronic-care", SUBJECT, 8),
    ):
        with pytest.raises(InvalidEnvelope):
            unblind(box, pilot=pilot, subject=subject, index=index)
    with pytest.raises(InvalidEnvelope):
        unblind(box[:-1] + bytes([box[-1] ^ 1]), pilot="chronic-care", subject=SUBJECT, index=7)
    tag = subject_tag("chronic-care", SUBJECT)
    assert SUBJECT not in tag and tag != subject_tag("referral", SUBJECT)
