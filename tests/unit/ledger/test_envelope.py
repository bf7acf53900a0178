"""The record envelope: seal/parse round trip, strict parsing, commitments and signatures."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.canonical import canonical_json
from ledger.envelope import (
    MAX_JSON_DEPTH,
    MAX_RECORD_BYTES,
    Origin,
    SignedRecord,
    _depth,
    check_commitment,
    check_origin,
    check_signature,
    commitment,
    parse_json,
    parse_record,
    seal,
)
from ledger.errors import InvalidEnvelope, KeyFileError, SignatureError
from ledger.keys import FastVerifier, b64url_decode, b64url_encode, generate_key, key_id, raw_public
from ledger.sealed import commit
from ledger.suite import ED25519_SHA256, SM2_SM3, SUITES, Suite, suite_named

KEY = generate_key()
OTHER_KEY = generate_key()
SALT = bytes(range(16))


def sealed(**overrides: Any) -> SignedRecord:
    fields: dict[str, Any] = {
        "pilot": "air-quality",
        "source": "station-1",
        "seq": 7,
        "type": "city.air-quality",
        "payload": {"pm25": 12, "station": "station-1", "note": "naïve ✓"},
        "signing_key": KEY,
        "observed_at": "2026-05-01T08:30:00Z",
        "record_id": "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
        "salt": SALT,
    }
    fields.update(overrides)
    return seal(**fields)


def wire(**overrides: Any) -> dict[str, Any]:
    """A v1 message: the strictness cases below name v1's members (a hub still parses v1)."""
    return json.loads(sealed(version=1).to_wire())  # type: ignore[no-any-return]


def raw(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode()


def reason_of(data: bytes) -> str:
    with pytest.raises(InvalidEnvelope) as exc:
        parse_record(data)
    return exc.value.reason


# -- round trip ------------------------------------------------------------------------------
def test_seal_parse_round_trip() -> None:
    record = sealed()
    parsed = parse_record(record.to_wire())
    assert parsed == record
    assert parsed.header.canonical() == record.header.canonical()
    check_commitment(parsed)
    check_signature(parsed.header.canonical(), parsed.sig, KEY.public_key())
    assert parsed.header.key == key_id(KEY.public_key())
    assert parsed.header.commitment == commitment(SALT, record.body.payload)


def test_leaf_is_jcs_of_header() -> None:
    record = sealed()
    assert record.header.canonical() == canonical_json(record.header.model_dump())
    assert record.header.canonical().startswith(b'{"commitment":')


def test_seal_defaults_make_fresh_ids_salts_and_times() -> None:
    a = seal(pilot="p", source="s", seq=1, type="t", payload={}, signing_key=KEY)
    b = seal(pilot="p", source="s", seq=1, type="t", payload={}, signing_key=KEY)
    assert a.header.id != b.header.id and a.body.salt != b.body.salt
    parse_record(a.to_wire())


def test_subject_with_consent_round_trips() -> None:
    record = sealed(subject="pseudo-12345678", consent="consent-1")
    parsed = parse_record(record.to_wire())
    assert (parsed.subject, parsed.consent) == ("pseudo-12345678", "consent-1")
    assert parsed == record
    v1 = parse_record(sealed(subject="pseudo-12345678", consent="consent-1", version=1).to_wire())
    assert (v1.header.v, v1.subject, v1.consent) == (1, "pseudo-12345678", "consent-1")


# -- strictness ------------------------------------------------------------------------------
def _with(path: tuple[str, ...], value: Any, drop: bool = False) -> bytes:
    msg = wire()
    target = msg
    for p in path[:-1]:
        target = target[p]
    if drop:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return raw(msg)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("extra",), 1),
        (("header", "extra"), 1),
        (("body", "extra"), "x"),
        (("header", "v"), 3),
        (("header", "seq"), "7"),
        (("header", "seq"), True),
        (("header", "seq"), 7.0),
        (("header", "seq"), 0),
        (("header", "seq"), 2**53),
        (("header", "v"), True),
        (("header", "pilot"), "Air Quality"),
        (("header", "pilot"), "a" * 65),
        (("header", "source"), None),
        (("header", "type"), "x" * 65),
        (("header", "id"), "not-an-id"),
        (("header", "subject"), "pseudo-12345678"),
        (("header", "subject"), "short"),
        (("header", "consent"), "bad consent id"),
        (("header", "observed_at"), "2026-05-01 08:30:00"),
        (("header", "observed_at"), "2026-05-01T08:30:00+02:00"),
        (("header", "observed_at"), "2026-02-30T08:30:00Z"),
        (("header", "observed_at"), "2026-05-01T25:30:00Z"),
        (("header", "observed_at"), 1714552200),
        (("header", "commitment"), "ab" * 31),
        (("header", "commitment"), "AB" * 32),
        (("header", "key"), ""),
        (("body", "payload"), [1, 2]),
        (("body", "payload"), "text"),
        (("body", "salt"), "AAAA"),
        (("body", "salt"), b64url_encode(SALT) + "="),
        (("body", "salt"), 5),
        (("sig",), "x" * 85),
        (("sig",), "!" * 86),
        (("sig",), None),
        (("header",), []),
    ],
)
def test_wrong_fields_are_invalid_envelopes(path: tuple[str, ...], value: Any) -> None:
    assert reason_of(_with(path, value)) == "invalid_envelope"


@pytest.mark.parametrize(
    "path", [("header", "seq"), ("header", "subject"), ("body",), ("sig",), ("header", "key")]
)
def test_missing_fields_are_invalid_envelopes(path: tuple[str, ...]) -> None:
    assert reason_of(_with(path, None, drop=True)) == "invalid_envelope"


def test_subject_without_consent_is_refused_by_seal_and_parse() -> None:
    with pytest.raises(InvalidEnvelope, match="consent"):
        sealed(subject="pseudo-12345678")
    assert reason_of(_with(("header", "subject"), "pseudo-12345678")) == "invalid_envelope"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "malformed_json"),
        (b"{", "malformed_json"),
        (b"[]", "invalid_envelope"),
        (b"null", "invalid_envelope"),
        (b'"record"', "invalid_envelope"),
        (b"\xff\xfe{}", "malformed_json"),
        (b'{"sig": "\xc3\x28"}', "malformed_json"),
        (b'{"a": NaN}', "malformed_json"),
        (b'{"a": Infinity}', "malformed_json"),
        (b'{"a": -Infinity}', "malformed_json"),
        (b'{"a": 1, "a": 2}', "malformed_json"),
        (b'{"a": "\\ud800"}', "malformed_json"),
        (b'{"a": ["\\uDFFF"]}', "malformed_json"),
        (b'{"\\ud800": 1}', "malformed_json"),
        (b'{"a": 1' + b"1" * 5000 + b"}", "malformed_json"),
        (b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1), "too_deep"),
        (b"[" * 100_000, "too_deep"),
        (b'{"a":' * 40 + b"1" + b"}" * 40, "too_deep"),
        (b" " * (MAX_RECORD_BYTES + 1), "oversize"),
    ],
)
def test_malformed_messages(data: bytes, reason: str) -> None:
    assert reason_of(data) == reason


def test_duplicate_key_inside_header_is_refused() -> None:
    good = sealed().to_wire()
    dup = good.replace(b'"seq":7', b'"seq":7,"seq":8')
    assert dup != good
    assert reason_of(dup) == "malformed_json"


def test_valid_surrogate_pair_is_text_not_an_error() -> None:
    msg = wire()
    msg["body"]["payload"]["emoji"] = "\U0001f600"
    data = json.dumps(msg).encode()  # ensure_ascii: written as a \\ud83d\\ude00 pair
    assert b"\\ud83d" in data
    assert parse_record(data).body.payload["emoji"] == "\U0001f600"


def test_oversize_limit_is_a_parameter() -> None:
    data = sealed().to_wire()
    with pytest.raises(InvalidEnvelope) as exc:
        parse_record(data, max_bytes=len(data) - 1)
    assert exc.value.reason == "oversize"


@pytest.mark.parametrize("value", ["{}", None, 5, ["x"], {"a": 1}])
def test_parse_record_wants_bytes(value: Any) -> None:
    with pytest.raises(InvalidEnvelope):
        parse_record(value)


def test_seal_refuses_bad_fields() -> None:
    with pytest.raises(InvalidEnvelope):
        sealed(payload={"x": float("nan")})
    with pytest.raises(InvalidEnvelope):
        sealed(payload={"x": "\ud800"})
    with pytest.raises(InvalidEnvelope):
        sealed(seq=True)
    with pytest.raises(InvalidEnvelope):
        sealed(salt=b"short")
    with pytest.raises(InvalidEnvelope):
        sealed(salt="0123456789abcdef")
    with pytest.raises(InvalidEnvelope):
        sealed(signing_key=None)
    with pytest.raises(InvalidEnvelope):
        sealed(observed_at="yesterday")
    with pytest.raises(InvalidEnvelope):
        sealed(payload={"big": 2**60})


# -- commitments and signatures -----------------------------------------------------------------
def test_changed_payload_or_salt_breaks_the_commitment() -> None:
    msg = wire()
    msg["body"]["payload"]["pm25"] = 13
    with pytest.raises(InvalidEnvelope) as exc:
        check_commitment(parse_record(raw(msg)))
    assert exc.value.reason == "commitment_mismatch"
    msg = wire()
    msg["body"]["salt"] = b64url_encode(bytes(16))
    with pytest.raises(InvalidEnvelope, match="commitment"):
        check_commitment(parse_record(raw(msg)))


def test_commitment_ignores_key_order_of_the_payload() -> None:
    msg = wire()
    msg["body"]["payload"] = dict(reversed(list(msg["body"]["payload"].items())))
    check_commitment(parse_record(raw(msg)))


def test_signature_checks() -> None:
    record = sealed()
    header = record.header.canonical()
    check_signature(header, record.sig, KEY.public_key())
    with pytest.raises(SignatureError):
        check_signature(header, record.sig, OTHER_KEY.public_key())
    with pytest.raises(SignatureError):
        check_signature(header.replace(b'"seq":7', b'"seq":8'), record.sig, KEY.public_key())
    flipped = ("B" if record.sig[0] == "A" else "A") + record.sig[1:]
    with pytest.raises(SignatureError):
        check_signature(header, flipped, KEY.public_key())
    for bad_sig in ("", "***", "AAAA", record.sig + "AA"):
        with pytest.raises(SignatureError):
            check_signature(header, bad_sig, KEY.public_key())


def test_signature_check_bad_arguments_are_named_errors() -> None:
    record = sealed()
    with pytest.raises(SignatureError):
        check_signature("text", record.sig, KEY.public_key())  # type: ignore[arg-type]
    with pytest.raises(SignatureError):
        check_signature(record.header.canonical(), None, KEY.public_key())  # type: ignore[arg-type]
    with pytest.raises(KeyFileError):
        check_signature(record.header.canonical(), record.sig, None)  # type: ignore[arg-type]
    with pytest.raises(InvalidEnvelope):
        check_commitment(None)  # type: ignore[arg-type]


# -- fuzzing: only InvalidEnvelope ever escapes ---------------------------------------------
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.binary(max_size=300))
def test_fuzz_parse_record_bytes(data: bytes) -> None:
    try:
        parse_record(data)
    except InvalidEnvelope:
        pass


@settings(max_examples=200, deadline=None, derandomize=True)
@given(json_values)
def test_fuzz_parse_record_json(value: Any) -> None:
    try:
        parse_record(json.dumps(value).encode())
    except InvalidEnvelope:
        pass


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.data())
def test_fuzz_mutated_real_records(data: st.DataObject) -> None:
    good = bytearray(sealed().to_wire())
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(good) - 1))
        op = data.draw(st.sampled_from(["flip", "delete", "insert"]))
        if op == "flip":
            good[at] ^= data.draw(st.integers(1, 255))
        elif op == "delete":
            del good[at]
        else:
            good.insert(at, data.draw(st.integers(0, 255)))
    try:
        record = parse_record(bytes(good))
    except InvalidEnvelope:
        return
    # Whatever still parses must still be checkable with named errors only.
    try:
        check_commitment(record)
        check_signature(record.header.canonical(), record.sig, KEY.public_key())
    except (InvalidEnvelope, SignatureError):
        pass


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    st.fixed_dictionaries(
        {
            "header": st.fixed_dictionaries(
                {},
                optional={
                    "v": json_values,
                    "seq": json_values,
                    "subject": json_values,
                    "observed_at": st.text(max_size=30),
                },
            ),
            "body": json_values,
            "sig": json_values,
        }
    )
)
def test_fuzz_envelope_shapes(value: dict[str, Any]) -> None:
    with pytest.raises(InvalidEnvelope):
        parse_record(json.dumps(value).encode())


# -- wire v2: no person in the header -------------------------------------------------------------
PERSON_SALT = bytes(range(16, 32))


def about_a_person(**overrides: Any) -> SignedRecord:
    return sealed(
        subject="pseudo-12345678", consent="consent-1", person_salt=PERSON_SALT, **overrides
    )


def test_a_v2_header_names_nobody() -> None:
    record = about_a_person()
    leaf = record.header.canonical()
    assert record.header.v == 2
    assert b"pseudo-12345678" not in leaf and b"consent-1" not in leaf
    opening = record.opening()
    assert opening is not None and opening.commitment() == record.header.person
    assert json.loads(leaf)["person"] == commit(
        PERSON_SALT, {"consent": "consent-1", "subject": "pseudo-12345678"}
    )
    check_commitment(parse_record(record.to_wire()))


def test_two_records_about_one_person_do_not_look_alike() -> None:
    a = sealed(subject="pseudo-12345678", consent="consent-1")
    b = sealed(subject="pseudo-12345678", consent="consent-1")
    assert a.header.person != b.header.person


def test_a_v2_record_about_nobody_has_a_null_person() -> None:
    record = sealed()
    assert record.header.person is None and record.opening() is None
    assert "person" not in json.loads(record.to_wire())["body"]


def _v2(mutate: Any) -> bytes:
    msg = json.loads(about_a_person().to_wire())
    mutate(msg)
    return raw(msg)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda m: m["header"].update(subject="pseudo-12345678"),
        lambda m: m["header"].pop("person"),
        lambda m: m["body"].pop("person"),
        lambda m: m["body"]["person"].pop("salt"),
        lambda m: m["body"]["person"].update(extra=1),
        lambda m: m["body"]["person"].update(subject="short"),
        lambda m: m.update(body={**m["body"], "origin": {"header": m["header"], "sig": "x"}}),
        lambda m: m["header"].update(person=None),
    ],
)
def test_v2_strictness(mutate: Any) -> None:
    assert reason_of(_v2(mutate)) == "invalid_envelope"


def test_a_v1_body_carries_no_person() -> None:
    msg = wire()
    msg["body"]["person"] = {"subject": "pseudo-12345678", "consent": "c", "salt": "A" * 22}
    assert reason_of(raw(msg)) == "invalid_envelope"


def test_an_opening_of_another_person_is_a_commitment_mismatch() -> None:
    msg = json.loads(about_a_person().to_wire())
    msg["body"]["person"]["subject"] = "pseudo-87654321"
    with pytest.raises(InvalidEnvelope) as exc:
        check_commitment(parse_record(raw(msg)))
    assert exc.value.reason == "commitment_mismatch"


def test_a_relayed_record_carries_its_devices_header() -> None:
    device = about_a_person(source="home-device-7", signing_key=OTHER_KEY)
    assert device.body.person is not None
    relayed = sealed(
        subject="pseudo-12345678",
        consent="consent-1",
        person_salt=PERSON_SALT,
        origin=Origin(header=device.header, sig=device.sig),
    )
    parsed = parse_record(relayed.to_wire())
    check_origin(parsed)
    assert parsed.body.origin is not None and parsed.body.origin.header.source == "home-device-7"
    assert b"home-device-7" not in parsed.header.canonical()


@pytest.mark.parametrize(
    "change",
    [
        {"observed_at": "2026-05-01T08:31:00Z"},
        {"type": "city.parking"},
        {"pilot": "chronic-care"},
        {"source": "station-1"},
        {"payload": {"pm25": 13}},
    ],
)
def test_an_origin_that_is_another_reading_is_refused(change: dict[str, Any]) -> None:
    device = about_a_person(**{"source": "home-device-7", **change})
    with pytest.raises(InvalidEnvelope) as exc:
        about_a_person(origin=Origin(header=device.header, sig=device.sig))
    assert exc.value.reason == "origin_mismatch"


@pytest.mark.parametrize("depth", [30, 31, 32, 33])
@pytest.mark.parametrize("inner", ["1", "[]", "{}", '"x"'])
def test_the_depth_bound_counts_the_innermost_value(depth: int, inner: str) -> None:
    raw = ("[" * depth + inner + "]" * depth).encode()
    nested: Any = json.loads(raw)
    try:
        _depth(nested, MAX_JSON_DEPTH)
    except InvalidEnvelope:
        with pytest.raises(InvalidEnvelope, match="deeper"):
            parse_json(raw)
    else:
        assert parse_json(raw) == nested


def test_a_byte_order_mark_is_refused_as_json_loads_refuses_it() -> None:
    with pytest.raises(InvalidEnvelope, match="BOM"):
        parse_json('\ufeff{"a": 1}'.encode())


# -- both suites ---------------------------------------------------------------------------
#: A record key and another, of each suite.
SUITE_KEYS = {suite.name: (generate_key(suite), generate_key(suite)) for suite in SUITES.values()}


@pytest.fixture(params=list(SUITE_KEYS))
def suite(request: pytest.FixtureRequest) -> Suite:
    return suite_named(request.param)


def test_a_record_of_either_suite_round_trips(suite: Suite) -> None:
    key, other = SUITE_KEYS[suite.name]
    record = about_a_person(signing_key=key)
    parsed = parse_record(record.to_wire())
    assert parsed == record
    check_commitment(parsed, suite)
    check_signature(parsed.header.canonical(), parsed.sig, key.public_key())
    check_signature(parsed.header.canonical(), parsed.sig, FastVerifier(key.public_key()))
    with pytest.raises(SignatureError):
        check_signature(parsed.header.canonical(), parsed.sig, other.public_key())
    # The key id, the payload commitment and the person commitment in the suite's hash.
    raw_key = raw_public(key.public_key())
    assert parsed.header.key == suite.digest(raw_key)[:8].hex()
    payload_jcs = canonical_json(record.body.payload)
    assert parsed.header.commitment == suite.digest(SALT + payload_jcs).hex()
    person = canonical_json({"consent": "consent-1", "subject": "pseudo-12345678"})
    assert parsed.header.person == suite.digest(PERSON_SALT + person).hex()


def test_an_sm2_record_is_not_a_sha256_one() -> None:
    """SM3 commitments do not check as SHA-256 ones, nor the other way round."""
    for mine, theirs in ((SM2_SM3, ED25519_SHA256), (ED25519_SHA256, SM2_SM3)):
        record = about_a_person(signing_key=SUITE_KEYS[mine.name][0])
        check_commitment(record, mine)
        with pytest.raises(InvalidEnvelope) as exc:
            check_commitment(record, theirs)
        assert exc.value.reason == "commitment_mismatch"


def test_an_sm2_signature_with_a_changed_header_or_bit_fails() -> None:
    key, _ = SUITE_KEYS[SM2_SM3.name]
    record = sealed(signing_key=key)
    header = record.header.canonical()
    with pytest.raises(SignatureError):
        check_signature(header.replace(b'"seq":7', b'"seq":8'), record.sig, key.public_key())
    raw_sig = bytearray(b64url_decode(record.sig))
    for at in (0, 31, 32, 63):  # r's and s's first and last bytes
        bad = bytearray(raw_sig)
        bad[at] ^= 1
        with pytest.raises(SignatureError):
            check_signature(header, b64url_encode(bytes(bad)), key.public_key())
