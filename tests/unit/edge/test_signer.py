from __future__ import annotations

import math
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.drafts import Prepared
from edge.errors import InvalidInput
from edge.signer import Signer
from ledger.envelope import check_commitment, check_signature, parse_record, seal, uuid7
from ledger.errors import InvalidEnvelope
from ledger.keys import generate_key, key_id
from ledger.suite import ED25519_SHA256, SM2_SM3, SUITES, Suite
from tests.support.drafts import NOW, air

KEY = generate_key()
#: A key of each suite, for the property tests (hypothesis takes no per-test fixture).
KEYS = {s.name: generate_key(s) for s in SUITES.values()}
OTHER = {ED25519_SHA256.name: SM2_SM3, SM2_SM3.name: ED25519_SHA256}
#: A pseudonym and a Consent: a record about a person (its person commitment hashed too).
PERSON = ("a" * 64, "consent-1")


@pytest.mark.parametrize("about", ["nobody", "a person"])
def test_sealed_records_verify_and_carry_their_leaf_hash(suite: Suite, about: str) -> None:
    key = generate_key(suite)
    signer = Signer("city-air", "station-1", key)
    assert signer.suite is suite
    subject, consent = PERSON if about == "a person" else (None, None)
    sealed = signer.seal(Prepared("city.air-quality", air(), subject, consent, NOW), seq=7)
    record = parse_record(sealed.wire)
    check_commitment(record, suite)
    check_signature(record.header.canonical(), record.sig, key.public_key())
    assert (record.header.seq, record.header.id, record.header.key) == (7, sealed.id, signer.key_id)
    assert signer.key_id == key_id(key.public_key())
    assert sealed.leaf_hash == suite.tree.leaf(record.header.canonical())
    # The suite's own hash, not the other's: commitments and the leaf.
    other = OTHER[suite.name]
    assert sealed.leaf_hash != other.tree.leaf(record.header.canonical())
    with pytest.raises(InvalidEnvelope):
        check_commitment(record, other)


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


def test_resealing_changes_only_the_key_and_the_signature(suite: Suite) -> None:
    old_key, new_key = generate_key(suite), generate_key(suite)
    old = Signer("city-air", "station-1", old_key)
    new = Signer("city-air", "station-1", new_key)
    first = old.seal(Prepared("city.air-quality", air(), None, None, NOW), seq=7)
    again = new.reseal(first.wire)
    assert again is not None
    before, after = parse_record(first.wire), parse_record(again.wire)
    assert after.header.model_dump(exclude={"key"}) == before.header.model_dump(exclude={"key"})
    assert after.body == before.body and after.header.key == new.key_id
    check_commitment(after, suite)
    check_signature(after.header.canonical(), after.sig, new_key.public_key())
    assert (again.seq, again.id, again.leaf_hash) == (
        7,
        first.id,
        suite.tree.leaf(after.header.canonical()),
    )
    assert again.leaf_hash != first.leaf_hash


def test_nothing_to_reseal(suite: Suite) -> None:
    key = generate_key(suite)
    signer = Signer("city-air", "station-1", key)
    mine = signer.seal(Prepared("city.air-quality", air(), None, None, NOW), seq=1)
    assert signer.reseal(mine.wire) is None
    elsewhere = Signer("city-air", "station-2", generate_key(suite)).reseal(mine.wire)
    assert elsewhere is None
    assert signer.reseal(b'{"not": "a record"}') is None


# -- the fast path for records about nobody ------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**60), 2**60)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)
times = st.sampled_from([NOW, "2026-05-01T08:30:00.123456Z", "1999-12-31T23:59:59.5Z"])
type_ids = st.from_regex(r"\A[A-Za-z][A-Za-z0-9._-]{0,63}\Z")


@pytest.mark.parametrize("suite_name", list(KEYS))
@settings(max_examples=400, deadline=None)
@given(
    payload=st.dictionaries(st.text(), json_values, max_size=6),
    type_id=type_ids,
    observed=times,
    seq=st.integers(1, 2**53 - 1),
    salt=st.binary(min_size=16, max_size=16),
    pilot=st.from_regex(r"\A[a-z0-9][a-z0-9._-]{0,63}\Z"),
)
def test_the_fast_path_seals_the_bytes_the_envelope_module_does(
    suite_name: str,
    payload: dict[str, Any],
    type_id: str,
    observed: str,
    seq: int,
    salt: bytes,
    pilot: str,
) -> None:
    key = KEYS[suite_name]
    suite = SUITES[suite_name]
    signer = Signer(pilot, "station-1", key)
    assert signer._fast is not None
    record_id = uuid7()
    fast = signer._fast.seal(
        Prepared(type_id, payload, None, None, observed), seq, salt=salt, record_id=record_id
    )
    try:
        general = seal(
            pilot=pilot,
            source="station-1",
            seq=seq,
            type=type_id,
            payload=payload,
            signing_key=key,
            observed_at=observed,
            record_id=record_id,
            salt=salt,
        )
    except InvalidEnvelope:
        assert fast is None  # left to the general way, which refuses it
        return
    assert fast is not None
    if suite is SM2_SM3:
        # SM2 signatures are randomised (GM/T 0003.2, k per signature): the same bytes but
        # the signature, and each verifies.
        record = parse_record(fast.wire)
        check_signature(general.header.canonical(), record.sig, key.public_key())
        general = general.model_copy(update={"sig": record.sig})
    assert fast.wire == general.to_wire()
    assert fast.leaf_hash == suite.tree.leaf(general.header.canonical())
    assert general.header.canonical() == rfc8785.dumps(general.header.model_dump())
    assert (fast.id, fast.seq, fast.type_id) == (record_id, seq, type_id)


@pytest.mark.parametrize(
    ("type_id", "observed", "seq"),
    [
        ("city.air-quality", "today", 1),
        ("city.air-quality", "2026-05-01T08:30:00Z\n", 1),
        ("city.air-quality", "2026-02-30T08:30:00Z", 1),
        ("city air", NOW, 1),
        ("city.air-quality", NOW, 0),
        ("city.air-quality", NOW, 2**53),
        ("city.air-quality", NOW, True),
    ],
)
def test_what_the_fast_path_does_not_take_is_refused_as_before(
    type_id: str, observed: str, seq: int
) -> None:
    signer = Signer("city-air", "station-1", KEY)
    assert signer._fast is not None
    assert signer._fast.seal(Prepared(type_id, air(), None, None, observed), seq) is None
    with pytest.raises(InvalidInput):
        signer.seal(Prepared(type_id, air(), None, None, observed), seq)


def test_a_payload_jcs_cannot_carry_is_refused() -> None:
    signer = Signer("city-air", "station-1", KEY)
    for payload in (air(pm25=math.nan), air(station="\ud800")):
        with pytest.raises(InvalidInput) as err:
            signer.seal(Prepared("city.air-quality", payload, None, None, NOW), 1)
        assert err.value.reason == "not_canonicalizable"


def test_an_identity_that_makes_no_header_takes_the_general_way() -> None:
    signer = Signer("City Air", "station-1", KEY)
    assert signer._fast is None
    with pytest.raises(InvalidInput):
        signer.seal(Prepared("city.air-quality", air(), None, None, NOW), 1)
