"""C2SP tlog-cosignature (cosignature/v1): key IDs, vkeys, the signed message, lines, verify.

Vectors from the specs and from transparency-dev/formats' tests: the tlog-cosignature
example line (witness.example.com/w1, time 1679315147), the signed-note example vkey and
note, and a native type-0x04 vkey whose key ID only a 0x04 key-ID hash reproduces.
"""

from __future__ import annotations

import base64
import hashlib

import nacl.signing
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.checkpoint import Checkpoint, NoteSigner, NoteVerifier, sign_checkpoint
from ledger.cosignature import (
    COSIGNATURE_BYTES,
    MAX_TIMESTAMP,
    Cosignature,
    CosignatureError,
    CosignatureMismatch,
    CosignerSigner,
    CosignerVerifier,
    attach_cosignatures,
    cosign,
    cosigned_message,
    cosigner_key_id,
    note_body,
    parse_cosignature_line,
    parse_cosignature_lines,
    verify_cosignature,
    verify_cosignatures,
)
from ledger.errors import CheckpointError, LedgerError
from ledger.hashing import EMPTY_ROOT
from ledger.keys import Ed25519PrivateKey, generate_key, raw_public
from ledger.suite import SM2_SM3, SUITES, Suite, suite_named

# tlog-cosignature, "Ed25519 signed message" and the example checkpoint at its top.
SPEC_BODY = b"example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
SPEC_MESSAGE = b"cosignature/v1\ntime 1679315147\n" + SPEC_BODY
SPEC_LOG_LINE = (
    "— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/"
    "Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8="
)
SPEC_WITNESS_LINE = (
    "— witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJs"
    "X3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA=="
)
# transparency-dev/formats note_cosigv1_test.go: a native cosignature/v1 vkey, the same
# kind of key as type 0x01, and a cosignature whose timestamp is 1727964367.
REMORA_VKEY = "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2"
TEST_NOTE_VKEY = "TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6"
FORMATS_SIG = (
    "ZGhGuQAAAABm/qTPeyKXD+R2rzyQsxPiP8mXum7qq/iF0u4vanlqJyocWODBt97w9uL+8qT7S5gxEHWWOworDcFi"
    "EBYJXORmnFBOBA=="
)
# c2sp.org/signed-note, "Verifier keys / Example".
SIGNED_NOTE_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"

# RFC 8032 section 7.1 TEST 1 secret key: Ed25519 is deterministic, so signatures are fixed.
RFC8032_SECRET = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC8032_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")

ORIGIN = "swiftchain.test/log"
ROOT = hashlib.sha256(b"root").digest()
HUB = NoteSigner(ORIGIN, generate_key())
WITNESS = CosignerSigner("witness.example/w1", generate_key())
NOTE = sign_checkpoint(Checkpoint(ORIGIN, 8, ROOT), HUB)
#: A log's key and a witness's, of each suite, and the log's signed checkpoint.
SUITE_SIGNERS = {
    suite.name: (
        NoteSigner(ORIGIN, generate_key(suite)),
        CosignerSigner("witness.example/w1", generate_key(suite)),
    )
    for suite in SUITES.values()
}


@pytest.fixture(scope="module", params=list(SUITE_SIGNERS))
def suite(request: pytest.FixtureRequest) -> Suite:
    return suite_named(request.param)


@pytest.fixture(scope="module")
def hub(suite: Suite) -> NoteSigner:
    return SUITE_SIGNERS[suite.name][0]


@pytest.fixture(scope="module")
def witness(suite: Suite) -> CosignerSigner:
    return SUITE_SIGNERS[suite.name][1]


@pytest.fixture(scope="module")
def note(hub: NoteSigner) -> str:
    return sign_checkpoint(Checkpoint(ORIGIN, 8, ROOT), hub)


T = 1_700_000_000


def rfc8032_signer(name: str) -> CosignerSigner:
    return CosignerSigner(name, Ed25519PrivateKey.from_private_bytes(RFC8032_SECRET))


# --- spec vectors -----------------------------------------------------------------------


def test_the_spec_example_line_decodes_to_its_key_id_and_time() -> None:
    c = parse_cosignature_line(SPEC_WITNESS_LINE)
    assert c.name == "witness.example.com/w1"
    assert c.key_id == bytes.fromhex("8d66cf3f")
    # The spec's example signed message carries "time 1679315147".
    assert c.timestamp == 1679315147
    assert len(c.signature) == 64
    assert c.line() == SPEC_WITNESS_LINE + "\n"


def test_the_spec_signed_message_layout() -> None:
    assert cosigned_message(SPEC_BODY, 1679315147) == SPEC_MESSAGE


def test_the_log_signature_in_the_spec_example_is_not_a_cosignature() -> None:
    # 4 + 64 bytes: a type-0x01 note signature, not a 76-byte cosignature/v1.
    with pytest.raises(CosignatureError, match="76 bytes, not 68"):
        parse_cosignature_line(SPEC_LOG_LINE)


def test_formats_cosignature_timestamp_vector() -> None:
    c = parse_cosignature_line(f"— some.witness/w {FORMATS_SIG}")
    assert c.timestamp == 1727964367 and c.key_id == bytes.fromhex("646846b9")


def test_a_native_0x04_vkey_key_id_uses_type_0x04() -> None:
    v = CosignerVerifier.parse(REMORA_VKEY)
    assert v.name == "remora.n621.de" and v.key_id.hex() == "da77ade7"
    assert v.encode() == REMORA_VKEY
    raw = raw_public(v.public_key)
    assert hashlib.sha256(b"remora.n621.de\n\x04" + raw).digest()[:4].hex() == "da77ade7"
    # With the note type 0x01 the same name and key would get another ID.
    assert hashlib.sha256(b"remora.n621.de\n\x01" + raw).digest()[:4].hex() != "da77ade7"


def test_the_same_key_as_a_note_key_and_as_a_cosigner_key_has_two_ids() -> None:
    note_key = NoteVerifier.parse(TEST_NOTE_VKEY)
    assert note_key.key_hash.hex() == "7997405c"
    cosigner = CosignerVerifier("TEST", note_key.public_key)
    assert cosigner.key_id != note_key.key_hash
    assert cosigner.encode().startswith(f"TEST+{cosigner.key_id.hex()}+BA")  # 0x04 -> "BA"
    assert CosignerVerifier.parse(cosigner.encode()) == cosigner


def test_a_note_vkey_is_refused_as_a_cosigner_key_with_a_reason() -> None:
    with pytest.raises(CosignatureError, match=r"log's note key \(type 0x01\)"):
        CosignerVerifier.parse(SIGNED_NOTE_VKEY)


def test_rfc8032_key_cosignature_is_stable_and_libsodium_verifies_it() -> None:
    signer = rfc8032_signer("witness.example/w1")
    assert raw_public(signer.verifier.public_key) == RFC8032_PUBLIC
    expected_id = hashlib.sha256(b"witness.example/w1\n\x04" + RFC8032_PUBLIC).digest()[:4]
    c = signer.cosign(SPEC_BODY, 1679315147)
    assert c.key_id == expected_id
    # An independent Ed25519 (libsodium) accepts it over the spec's message.
    nacl.signing.VerifyKey(RFC8032_PUBLIC).verify(SPEC_MESSAGE, c.signature)
    again = rfc8032_signer("witness.example/w1").cosign(SPEC_BODY, 1679315147)
    assert again.line() == c.line()
    raw = base64.b64decode(c.line().split(" ")[2])
    assert raw == expected_id + (1679315147).to_bytes(8, "big") + c.signature


# --- sign, verify ----------------------------------------------------------------------


def test_cosign_then_verify_round_trip(witness: CosignerSigner, note: str) -> None:
    line = cosign(note, witness, T)
    assert line.startswith("— witness.example/w1 ") and line.endswith("\n")
    cosigned = attach_cosignatures(note, line)
    (got,) = verify_cosignatures(cosigned, [witness.verifier])
    assert got.verifier == witness.verifier and got.timestamp == T and got.line == line


def test_the_signature_covers_extension_lines(hub: NoteSigner, witness: CosignerSigner) -> None:
    note = sign_checkpoint(Checkpoint(ORIGIN, 8, ROOT, ("ext",)), hub)
    body = note_body(note)
    assert body.endswith(b"ext\n")
    c = witness.cosign(body, T)
    with pytest.raises(CosignatureMismatch):
        verify_cosignature(body.replace(b"ext", b"exu"), c, witness.verifier)


def test_a_changed_timestamp_breaks_the_signature(witness: CosignerSigner, note: str) -> None:
    c = witness.cosign(note_body(note), T)
    forged = Cosignature(c.name, c.key_id, T + 1, c.signature)
    with pytest.raises(CosignatureMismatch, match="does not verify"):
        verify_cosignature(note_body(note), forged, witness.verifier)


def test_a_cosignature_is_not_a_note_signature_and_vice_versa(
    witness: CosignerSigner, note: str
) -> None:
    # A witness key cannot pass off a plain note signature as a cosignature: the message
    # and the key ID differ.
    note_sig = NoteSigner(witness.name, witness.private_key).signature_line(note_body(note))
    with pytest.raises(CosignatureError):
        parse_cosignature_line(note_sig)
    assert verify_cosignatures(note + note_sig, [witness.verifier]) == ()


def test_future_timestamps_can_be_refused(witness: CosignerSigner, note: str) -> None:
    note = attach_cosignatures(note, cosign(note, witness, T))
    assert verify_cosignatures(note, [witness.verifier], not_after=T)
    with pytest.raises(CosignatureMismatch, match="future"):
        verify_cosignatures(note, [witness.verifier], not_after=T - 1)


def test_unknown_cosigners_are_ignored_even_sharing_a_name_or_an_id(
    witness: CosignerSigner, note: str, suite: Suite
) -> None:
    other = CosignerSigner(witness.name, generate_key(suite))  # same name, other key
    note = attach_cosignatures(note, cosign(note, other, T))
    assert verify_cosignatures(note, [witness.verifier]) == ()
    # Same key ID bytes under another name: ignored too.
    c = witness.cosign(note_body(note), T)
    renamed = Cosignature("witness.example/w2", c.key_id, c.timestamp, c.signature)
    assert verify_cosignatures(note + renamed.line(), [witness.verifier]) == ()


def test_a_known_cosigner_with_a_bad_signature_rejects_the_note(
    witness: CosignerSigner, note: str, suite: Suite
) -> None:
    c = witness.cosign(note_body(note), T)
    bad = Cosignature(c.name, c.key_id, c.timestamp, bytes(64))
    good_other = CosignerSigner("witness.example/w2", generate_key(suite))
    note = attach_cosignatures(note, [cosign(note, good_other, T), bad.line()])
    with pytest.raises(CosignatureMismatch) as info:
        verify_cosignatures(note, [witness.verifier, good_other.verifier])
    assert info.value.name == witness.name


def test_a_known_cosigner_line_of_the_wrong_length_rejects_the_note(
    witness: CosignerSigner, note: str
) -> None:
    key_id = witness.verifier.key_id
    short = f"— {witness.name} {base64.b64encode(key_id + bytes(10)).decode()}\n"
    with pytest.raises(CosignatureMismatch, match="malformed"):
        verify_cosignatures(note + short, [witness.verifier])


def test_many_cosigners_each_counted_once(note: str, suite: Suite) -> None:
    signers = [CosignerSigner(f"w{i}.example/w", generate_key(suite)) for i in range(5)]
    lines = [cosign(note, s, T + i) for i, s in enumerate(signers)]
    lines.append(cosign(note, signers[0], T + 99))  # a second timestamp by w0
    note = attach_cosignatures(note, lines)
    got = verify_cosignatures(note, [s.verifier for s in signers])
    assert [g.verifier.name for g in got] == [s.name for s in signers]
    assert got[0].timestamp == T


def test_attach_accepts_a_witness_answer_and_skips_duplicates(
    witness: CosignerSigner, note: str, suite: Suite
) -> None:
    a = cosign(note, witness, T)
    b = cosign(note, CosignerSigner("w2.example/w", generate_key(suite)), T)
    once = attach_cosignatures(note, a + b)
    assert attach_cosignatures(once, a) == once
    assert once == note + a + b
    assert attach_cosignatures(note, "") == note
    with pytest.raises(CosignatureError, match="newline"):
        attach_cosignatures(note, a[:-1])
    with pytest.raises(CosignatureError):
        attach_cosignatures(note, ["not a line"])


def test_parse_cosignature_lines_reads_a_witness_answer(witness: CosignerSigner, note: str) -> None:
    a = cosign(note, witness, T)
    assert parse_cosignature_lines(a + a) == (parse_cosignature_line(a),) * 2
    for bad in ["", "\n", a[:-1], a + "\n", "— x\n"]:
        with pytest.raises(CosignatureError):
            parse_cosignature_lines(bad)


def test_empty_tree_checkpoint_cosigns(hub: NoteSigner, witness: CosignerSigner) -> None:
    note = sign_checkpoint(Checkpoint(ORIGIN, 0, EMPTY_ROOT), hub)
    line = cosign(note, witness, 1)
    assert verify_cosignatures(note + line, [witness.verifier])[0].timestamp == 1


# --- bad input -------------------------------------------------------------------------


def test_errors_are_ledger_errors() -> None:
    assert issubclass(CosignatureMismatch, CosignatureError)
    assert issubclass(CosignatureError, CheckpointError)
    assert issubclass(CosignatureError, LedgerError)


@pytest.mark.parametrize("timestamp", [0, -1, MAX_TIMESTAMP + 1, True, 1.5, "1"])
def test_signer_refuses_bad_timestamps(timestamp: object) -> None:
    with pytest.raises(CosignatureError, match="timestamp"):
        WITNESS.cosign(note_body(NOTE), timestamp)  # type: ignore[arg-type]


def test_the_largest_timestamp_is_allowed() -> None:
    c = WITNESS.cosign(note_body(NOTE), MAX_TIMESTAMP)
    assert parse_cosignature_line(c.line()) == c


def test_a_timestamp_above_2_63_is_refused_when_parsing() -> None:
    raw = bytes(4) + (2**63).to_bytes(8, "big") + bytes(64)
    with pytest.raises(CosignatureError, match="2\\^63"):
        parse_cosignature_line(f"— w.example/w {base64.b64encode(raw).decode()}")


@pytest.mark.parametrize("name", ["", "has space", "has+plus", "tab\there", "nbsp\u00a0x", None, 7])
def test_bad_cosigner_names(name: object) -> None:
    with pytest.raises(CosignatureError, match="cosigner name"):
        CosignerSigner(name, generate_key())  # type: ignore[arg-type]


def test_signer_needs_an_ed25519_key() -> None:
    with pytest.raises(CosignatureError, match="Ed25519"):
        CosignerSigner("w.example/w", b"key")  # type: ignore[arg-type]


@pytest.mark.parametrize("body", [b"", b"no newline", "text\n", None])
def test_bad_bodies(body: object) -> None:
    with pytest.raises(CosignatureError, match="body"):
        cosigned_message(body, T)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "vkey, match",
    [
        ("w.example", "reads"),
        ("w.example+1234", "reads"),
        ("+00000000+BA==", "cosigner name"),
        ("w.example+xyz+BA==", "8 hex digits"),
        ("w.example+0000000+BA==", "8 hex digits"),
        ("w.example+00000000+not base64!", "base64"),
        ("w.example+00000000+Bg==", "type 0x04"),
        ("w.example+00000000+BAAA", "type 0x04"),
        (REMORA_VKEY.replace("da77ade7", "da77ade8"), "does not match"),
        (REMORA_VKEY.replace("remora", "remorb"), "does not match"),
    ],
)
def test_bad_vkeys(vkey: str, match: str) -> None:
    with pytest.raises(CosignatureError, match=match):
        CosignerVerifier.parse(vkey)


def test_vkey_parse_needs_text() -> None:
    with pytest.raises(CosignatureError, match="text"):
        CosignerVerifier.parse(b"w+1+2")  # type: ignore[arg-type]


def test_vkey_hex_is_case_insensitive_and_whitespace_trimmed() -> None:
    v = CosignerVerifier.parse("  " + REMORA_VKEY.replace("da77ade7", "DA77ADE7") + "\n")
    assert v.encode() == REMORA_VKEY


@pytest.mark.parametrize(
    "line",
    [
        "",
        "- w.example/w AAAA",
        "— w.example/w",
        "— w.example/w AA AA",
        "— w.example/w not*base64",
        "— w.example/w AAAA\nmore",
        "—  AAAA",
    ],
)
def test_bad_lines(line: str) -> None:
    with pytest.raises(CosignatureError):
        parse_cosignature_line(line)


def test_parse_line_needs_text() -> None:
    with pytest.raises(CosignatureError, match="text"):
        parse_cosignature_line(b"x")  # type: ignore[arg-type]


def test_verify_needs_the_right_types() -> None:
    c = WITNESS.cosign(note_body(NOTE), T)
    with pytest.raises(CosignatureError, match="CosignerVerifier"):
        verify_cosignature(note_body(NOTE), c, NoteSigner("x", generate_key()).verifier)  # type: ignore[arg-type]
    with pytest.raises(CosignatureError, match="Cosignature"):
        verify_cosignature(note_body(NOTE), c.line(), WITNESS.verifier)  # type: ignore[arg-type]
    with pytest.raises(CosignatureError, match="not a cosignature by"):
        verify_cosignature(note_body(NOTE), c, CosignerSigner("o.ex/w", generate_key()).verifier)
    with pytest.raises(CosignatureError, match="CosignerVerifiers"):
        verify_cosignatures(NOTE, ["vkey"])  # type: ignore[list-item]
    with pytest.raises(CosignatureError, match="CosignerSigner"):
        cosign(NOTE, NoteSigner("x", generate_key()), T)  # type: ignore[arg-type]


def test_line_refuses_malformed_fields() -> None:
    with pytest.raises(CosignatureError):
        Cosignature("w.example/w", b"abc", T, bytes(64)).line()
    with pytest.raises(CosignatureError):
        Cosignature("w.example/w", bytes(4), T, bytes(63)).line()


def test_not_a_note() -> None:
    for bad in ["", "just text\n", NOTE.replace("\n\n", "\n")]:
        with pytest.raises(CheckpointError):
            cosign(bad, WITNESS, T)
        with pytest.raises(CheckpointError):
            verify_cosignatures(bad, [WITNESS.verifier])


# --- properties ------------------------------------------------------------------------

names = st.from_regex(r"[a-z0-9./_-]{1,40}", fullmatch=True)
bodies = st.builds(
    lambda origin, size, root, ext: Checkpoint(origin, size, root, ext),
    names,
    st.integers(min_value=0, max_value=2**63),
    st.binary(min_size=32, max_size=32),
    st.lists(st.from_regex(r"[ -~]{1,20}", fullmatch=True), max_size=3).map(tuple),
)
KEYS = [generate_key() for _ in range(3)]


@settings(max_examples=60, deadline=None)
@given(
    checkpoint=bodies,
    name=names,
    key=st.sampled_from(KEYS),
    ts=st.integers(min_value=1, max_value=MAX_TIMESTAMP),
)
def test_property_sign_line_parse_verify(
    checkpoint: Checkpoint, name: str, key: Ed25519PrivateKey, ts: int
) -> None:
    note = sign_checkpoint(checkpoint, HUB)
    signer = CosignerSigner(name, key)
    line = cosign(note, signer, ts)
    c = parse_cosignature_line(line)
    assert (
        c.line() == line
        and c.timestamp == ts
        and len(base64.b64decode(line.split()[2])) == (COSIGNATURE_BYTES)
    )
    assert verify_cosignature(checkpoint.body(), c, signer.verifier) == ts
    assert CosignerVerifier.parse(signer.verifier.encode()) == signer.verifier
    assert cosigner_key_id(name, key.public_key()) == signer.verifier.key_id


@settings(max_examples=60, deadline=None)
@given(flip=st.integers(min_value=0, max_value=COSIGNATURE_BYTES * 8 - 1))
def test_property_any_bit_flip_in_a_cosignature_fails(flip: int) -> None:
    line = cosign(NOTE, WITNESS, T)
    raw = bytearray(base64.b64decode(line.split()[2]))
    raw[flip // 8] ^= 1 << (flip % 8)
    tampered = f"— {WITNESS.name} {base64.b64encode(bytes(raw)).decode()}\n"
    try:
        got = verify_cosignatures(NOTE + tampered, [WITNESS.verifier])
    except CosignatureError:
        return
    # A flip in the key ID makes it another (unknown) key: ignored, never accepted.
    assert got == () and flip < 32


@settings(max_examples=100, deadline=None)
@given(text=st.text(max_size=200))
def test_property_parsers_only_raise_named_errors(text: str) -> None:
    for parse in (parse_cosignature_line, parse_cosignature_lines, CosignerVerifier.parse):
        try:
            parse(text)
        except CosignatureError:
            pass


def test_an_sm2_cosigner_vkey_round_trips_with_its_own_type() -> None:
    _, sm2_witness = SUITE_SIGNERS[SM2_SM3.name]
    vkey = sm2_witness.verifier.encode()
    raw = base64.b64decode(vkey.split("+", 2)[2])
    assert raw.startswith(SM2_SM3.cosignature_type)
    assert len(raw) == len(SM2_SM3.cosignature_type) + 65
    again = CosignerVerifier.parse(vkey)
    assert again == sm2_witness.verifier and again.suite is SM2_SM3
    # SM3 key ID over name, 0x0A, the type and the point.
    message = sm2_witness.name.encode() + b"\n" + raw
    assert again.key_id == SM2_SM3.digest(message)[:4]


def test_an_sm2_log_key_is_refused_as_a_cosigner_key() -> None:
    sm2_hub, _ = SUITE_SIGNERS[SM2_SM3.name]
    with pytest.raises(CosignatureError, match="log's note key"):
        CosignerVerifier.parse(sm2_hub.verifier.encode())
