"""Data keys, pure part: sealing, the associated data that binds a sealed value to its
place, scopes, the key store's digests and the master key file."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given
from hypothesis import strategies as st

from ledger.datakeys import (
    DataKey,
    Scope,
    body_parts,
    body_plaintext,
    check_key_id,
    day_of,
    derive,
    first_day_kept,
    load_master_key,
    new_key,
    open_,
    open_with,
    person_tag,
    resource_digest,
    seal,
    unwrap,
    wrap,
    write_master_key,
)
from ledger.errors import KeyDestroyed, KeyFileError, RangeError, SealError, StoreError
from ledger.keys import b64url_encode

KEY = new_key()


def test_a_sealed_value_opens_where_it_was_sealed() -> None:
    for plaintext in (b"", b"x", os.urandom(200), os.urandom(4096)):
        sealed = seal(KEY, "bodies", 7, plaintext)
        assert sealed[0] == 1 and len(sealed) == len(plaintext) + 29
        assert open_(KEY, "bodies", 7, sealed) == plaintext
        assert open_(KEY, "bodies", 7, bytearray(sealed)) == plaintext


def test_two_seals_of_one_value_differ() -> None:
    assert seal(KEY, "openings", 1, b"same") != seal(KEY, "openings", 1, b"same")


def test_a_value_moved_to_another_index_table_or_key_does_not_open() -> None:
    sealed = seal(KEY, "bodies", 7, b"payload")
    with pytest.raises(SealError, match="moved"):
        open_(KEY, "bodies", 8, sealed)
    with pytest.raises(SealError):
        open_(KEY, "origins", 7, sealed)
    # The same secret under another id: the id is bound too, not just the secret.
    with pytest.raises(SealError):
        open_(DataKey(KEY.id ^ 1 or 2, KEY.secret), "bodies", 7, sealed)
    with pytest.raises(SealError):
        open_(new_key(), "bodies", 7, sealed)


@given(st.binary(max_size=64), st.data())
def test_any_change_to_a_sealed_value_is_caught(plaintext: bytes, data: st.DataObject) -> None:
    sealed = bytearray(seal(KEY, "openings", 3, plaintext))
    at = data.draw(st.integers(0, len(sealed) - 1))
    sealed[at] ^= data.draw(st.integers(1, 255))
    with pytest.raises(SealError):
        open_(KEY, "openings", 3, bytes(sealed))


def test_short_or_foreign_values_are_seal_errors() -> None:
    for bad in (b"", b"\x01" + b"\x00" * 27, b"\x02" + seal(KEY, "bodies", 0, b"x")[1:]):
        with pytest.raises(SealError):
            open_(KEY, "bodies", 0, bad)
    with pytest.raises(SealError):
        open_(KEY, "bodies", 0, "text")  # type: ignore[arg-type]


def test_bad_places_are_range_errors() -> None:
    with pytest.raises(RangeError):
        seal(KEY, "entries", 0, b"x")
    for index in (-1, True, 2**63, "1"):
        with pytest.raises(RangeError):
            seal(KEY, "bodies", index, b"x")  # type: ignore[arg-type]
    with pytest.raises(RangeError):
        seal(KEY, "bodies", 0, "text")  # type: ignore[arg-type]


def test_a_destroyed_key_is_named() -> None:
    sealed = seal(KEY, "bodies", 5, b"gone")
    assert open_with({KEY.id: KEY}, KEY.id, "bodies", 5, sealed) == b"gone"
    with pytest.raises(KeyDestroyed, match="erased") as caught:
        open_with({}, KEY.id, "bodies", 5, sealed)
    assert isinstance(caught.value, StoreError)


def test_key_ids_and_keys_are_checked() -> None:
    assert all(0 < new_key().id < 2**63 for _ in range(100))
    for bad in (0, -1, 2**63, True, "1"):
        with pytest.raises(RangeError):
            check_key_id(bad)
    with pytest.raises(RangeError):
        DataKey(1, b"short")
    assert "secret" not in repr(KEY) and KEY.secret.hex() not in repr(KEY)


def test_a_body_seals_its_salt_with_its_payload() -> None:
    salt = b64url_encode(os.urandom(16))
    plain = body_plaintext(b'{"v":72}', salt)
    assert body_parts(plain) == (b'{"v":72}', salt)
    with pytest.raises(RangeError):
        body_plaintext(b"{}", "not-a-salt")
    with pytest.raises(SealError):
        body_parts(b"short")


# -- scopes ----------------------------------------------------------------------------------


def test_a_records_scope_is_its_utc_day() -> None:
    scope = Scope.of_record(
        pilot="p1",
        subject="s-abcdefgh",
        consent="c1",
        data_type="hr",
        observed_at="2026-03-01T23:59:59.5Z",
    )
    assert scope == Scope("p1", "s-abcdefgh", "c1", "hr", "2026-03-01")
    sensor = Scope.of_record(
        pilot="p1", subject=None, consent=None, data_type="air", observed_at="2026-03-02T00:00:00Z"
    )
    assert (sensor.subject, sensor.consent, sensor.day) == (None, None, "2026-03-02")
    for bad in ("2026-03-01T10:00:00+01:00", "2026-03-01", 5):
        with pytest.raises(RangeError):
            day_of(bad)  # type: ignore[arg-type]
    with pytest.raises(RangeError):
        Scope("p1", None, None, "hr", "March")
    with pytest.raises(RangeError):
        Scope(1, None, None, "hr", "2026-03-01")  # type: ignore[arg-type]


def test_other_entries_openings_have_scopes_of_their_erasure() -> None:
    consent = Scope.of_entry("consent", pilot="p1", subject="s-abcdefgh", consent="c1")
    access = Scope.of_entry("access", pilot="p1", subject="s-abcdefgh", consent="c1")
    assert consent == Scope("p1", "s-abcdefgh", "c1", "@consent", "")
    # An access entry's opening goes with the person, whatever the Consent.
    assert access == Scope("p1", "s-abcdefgh", None, "@access", "")
    with pytest.raises(RangeError):
        Scope.of_entry("erasure", pilot="p1", subject="s", consent=None)


def test_person_tags_name_no_one() -> None:
    tag_key = derive(os.urandom(32), b"person-tag")
    tag = person_tag(tag_key, "p1", "s-abcdefgh", "c1")
    assert len(tag) == 64 and "abcdefgh" not in tag
    assert tag == person_tag(tag_key, "p1", "s-abcdefgh", "c1")
    others = {
        person_tag(tag_key, "p2", "s-abcdefgh", "c1"),
        person_tag(tag_key, "p1", "s-abcdefgh", "c2"),
        person_tag(tag_key, "p1", "s-abcdefgh", None),
        person_tag(derive(os.urandom(32), b"person-tag"), "p1", "s-abcdefgh", "c1"),
    }
    assert tag not in others and len(others) == 4
    assert person_tag(tag_key, "p1", None, None) == ""


def test_resource_digests_are_keyed_and_scoped() -> None:
    index_key = derive(os.urandom(32), b"resource-index")
    digest = resource_digest(index_key, "p1", "fhir.Observation", "obs-1")
    assert len(digest) == 16
    assert digest == resource_digest(index_key, "p1", "fhir.Observation", "obs-1")
    assert digest != resource_digest(index_key, "p2", "fhir.Observation", "obs-1")
    assert digest != resource_digest(os.urandom(32), "p1", "fhir.Observation", "obs-1")
    with pytest.raises(RangeError):
        resource_digest(index_key, "p1", "t", 1)  # type: ignore[arg-type]


# -- retention's backstop --------------------------------------------------------------------


def test_the_first_day_kept_is_the_first_not_wholly_past_retention() -> None:
    def thirty_days(t: datetime) -> datetime:
        return t + timedelta(days=30)

    now = datetime(2026, 3, 31, 12, 0, tzinfo=UTC)
    # A body observed on 1 March 23:59:59 is due 31 March 23:59:59: 1 March is not over.
    # 28 February's last instant was due 30 March: wholly past.
    assert first_day_kept(thirty_days, now) == "2026-03-01"
    assert first_day_kept(thirty_days, datetime(2026, 3, 31, 0, 0, tzinfo=UTC)) == "2026-03-01"
    assert first_day_kept(thirty_days, datetime(2026, 3, 30, 23, 59, tzinfo=UTC)) == "2026-02-28"

    def an_hour(t: datetime) -> datetime:
        return t + timedelta(hours=1)

    assert first_day_kept(an_hour, datetime(2026, 3, 31, 0, 30, tzinfo=UTC)) == "2026-03-30"
    assert first_day_kept(an_hour, datetime(2026, 3, 31, 1, 0, tzinfo=UTC)) == "2026-03-31"


def test_the_first_day_kept_with_calendar_retention() -> None:
    from pilots.retention import Retention

    month = Retention.parse("P1M")
    now = datetime(2026, 3, 29, 0, 0, tzinfo=UTC)
    # 28 Feb + P1M = 28 March; 27 Feb's end (28 Feb 00:00) + P1M = 28 March 00:00 <= now.
    assert first_day_kept(month.until, now) == "2026-02-28"
    assert first_day_kept(Retention.parse("P100Y").until, now) == "1926-03-29"


# -- the master key ----------------------------------------------------------------------------


def test_a_master_key_file_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "secrets" / "master.key"
    secret = write_master_key(path)
    assert load_master_key(path) == secret
    assert path.stat().st_mode & 0o777 == 0o600
    with pytest.raises(KeyFileError, match="refusing"):
        write_master_key(path)
    assert write_master_key(path, overwrite=True) != secret


@pytest.mark.parametrize(
    "content", [b"", b"not base64url!", b64url_encode(os.urandom(16)).encode(), b"\xff\xfe"]
)
def test_a_bad_master_key_file_is_named(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "master.key"
    path.write_bytes(content)
    with pytest.raises(KeyFileError, match="master key"):
        load_master_key(path)
    with pytest.raises(KeyFileError):
        load_master_key(tmp_path / "missing")


def test_a_wrapped_key_is_bound_to_its_label() -> None:
    master = AESGCM(os.urandom(32))
    wrapped = wrap(master, b"key 5", KEY.secret)
    assert KEY.secret not in wrapped and len(wrapped) == 60
    assert unwrap(master, b"key 5", wrapped) == KEY.secret
    with pytest.raises(SealError):
        unwrap(master, b"key 6", wrapped)
    with pytest.raises(SealError):
        unwrap(AESGCM(os.urandom(32)), b"key 5", wrapped)
    with pytest.raises(SealError):
        unwrap(master, b"key 5", wrapped[:5])
