from __future__ import annotations

import pytest

from edge.drafts import Prepared
from edge.errors import InvalidInput
from edge.signer import Signer
from ledger.envelope import check_commitment, check_signature, parse_record
from ledger.hashing import leaf_hash
from ledger.keys import generate_key
from tests.support.drafts import NOW, air


def test_sealed_records_verify_and_carry_their_leaf_hash() -> None:
    key = generate_key()
    signer = Signer("city-air", "station-1", key)
    sealed = signer.seal(Prepared("city.air-quality", air(), None, None, NOW), seq=7)
    record = parse_record(sealed.wire)
    check_commitment(record)
    check_signature(record.header.canonical(), record.sig, key.public_key())
    assert (record.header.seq, record.header.id, record.header.key) == (7, sealed.id, signer.key_id)
    assert sealed.leaf_hash == leaf_hash(record.header.canonical())


def test_fields_that_cannot_make_an_envelope_are_invalid_input() -> None:
    signer = Signer("city-air", "station-1", generate_key())
    with pytest.raises(InvalidInput):
        signer.seal(Prepared("city.air-quality", air(), None, None, "today"), seq=1)
    with pytest.raises(InvalidInput, match="consent"):
        signer.seal(Prepared("fhir.Observation", {}, "a" * 64, "bad consent!", NOW), seq=1)


def test_oversize_records_are_refused() -> None:
    signer = Signer("city-air", "station-1", generate_key())
    huge = air(blob="x" * 300_000)
    with pytest.raises(InvalidInput) as err:
        signer.seal(Prepared("city.air-quality", huge, None, None, NOW), seq=1)
    assert (err.value.reason, err.value.status) == ("oversize", 413)


def test_resealing_changes_only_the_key_and_the_signature() -> None:
    old_key, new_key = generate_key(), generate_key()
    old = Signer("city-air", "station-1", old_key)
    new = Signer("city-air", "station-1", new_key)
    first = old.seal(Prepared("city.air-quality", air(), None, None, NOW), seq=7)
    again = new.reseal(first.wire)
    assert again is not None
    before, after = parse_record(first.wire), parse_record(again.wire)
    assert after.header.model_dump(exclude={"key"}) == before.header.model_dump(exclude={"key"})
    assert after.body == before.body and after.header.key == new.key_id
    check_signature(after.header.canonical(), after.sig, new_key.public_key())
    assert (again.seq, again.id, again.leaf_hash) == (
        7,
        first.id,
        leaf_hash(after.header.canonical()),
    )
    assert again.leaf_hash != first.leaf_hash


def test_nothing_to_reseal() -> None:
    key = generate_key()
    signer = Signer("city-air", "station-1", key)
    mine = signer.seal(Prepared("city.air-quality", air(), None, None, NOW), seq=1)
    assert signer.reseal(mine.wire) is None
    elsewhere = Signer("city-air", "station-2", generate_key()).reseal(mine.wire)
    assert elsewhere is None
    assert signer.reseal(b'{"not": "a record"}') is None
