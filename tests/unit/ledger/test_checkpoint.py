"""C2SP signed-note checkpoints: sign, parse, verify, cosign; tampering and wrong keys fail."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.checkpoint import (
    Checkpoint,
    NoteSigner,
    NoteVerifier,
    SignedCheckpoint,
    add_cosignature,
    key_hash,
    parse_checkpoint,
    sign_checkpoint,
    verify_checkpoint,
)
from ledger.errors import CheckpointError
from ledger.hashing import EMPTY_ROOT
from ledger.keys import generate_key
from ledger.suite import ED25519_SHA256, SM2_SM3, SUITES, Suite, suite_named

ORIGIN = "swiftchain.test/log"
ROOT = bytes.fromhex("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")
CP = Checkpoint(ORIGIN, 8, ROOT)
#: A log's key and a witness's, of each suite.
SIGNERS = {
    suite.name: (
        NoteSigner(ORIGIN, generate_key(suite)),
        NoteSigner("witness.example/w1", generate_key(suite)),
    )
    for suite in SUITES.values()
}


@pytest.fixture(scope="module", params=list(SIGNERS))
def suite(request: pytest.FixtureRequest) -> Suite:
    return suite_named(request.param)


@pytest.fixture(scope="module")
def hub(suite: Suite) -> NoteSigner:
    return SIGNERS[suite.name][0]


@pytest.fixture(scope="module")
def witness(suite: Suite) -> NoteSigner:
    return SIGNERS[suite.name][1]


def test_note_layout(hub: NoteSigner) -> None:
    note = sign_checkpoint(CP, hub)
    body, sig = note.split("\n\n")
    assert body == f"{ORIGIN}\n8\n{base64.b64encode(ROOT).decode()}"
    assert sig.startswith(f"\u2014 {ORIGIN} ") and sig.endswith("\n")
    raw = base64.b64decode(sig.rsplit(" ", 1)[1])
    assert raw[:4] == hub.verifier.key_hash and len(raw) == 4 + 64


def test_sign_parse_verify_round_trip(hub: NoteSigner) -> None:
    note = sign_checkpoint(CP, hub)
    parsed = parse_checkpoint(note)
    assert isinstance(parsed, SignedCheckpoint)
    assert parsed.checkpoint == CP and parsed.note == note
    assert verify_checkpoint(note, hub.verifier) == CP


def test_extensions_and_empty_tree(hub: NoteSigner) -> None:
    cp = Checkpoint(ORIGIN, 0, EMPTY_ROOT, ("ext one", "ext-two"))
    assert verify_checkpoint(sign_checkpoint(cp, hub), hub.verifier) == cp


def test_verifier_key_encode_parse(hub: NoteSigner) -> None:
    text = hub.verifier.encode()
    name, hash_hex, _ = text.split("+", 2)
    assert name == ORIGIN and bytes.fromhex(hash_hex) == key_hash(
        ORIGIN, hub.private_key.public_key()
    )
    again = NoteVerifier.parse(text)
    assert again.encode() == text
    assert verify_checkpoint(sign_checkpoint(CP, hub), again) == CP


def test_cosignature(hub: NoteSigner, witness: NoteSigner) -> None:
    note = add_cosignature(sign_checkpoint(CP, hub), witness)
    assert len(parse_checkpoint(note).signatures) == 2
    assert verify_checkpoint(note, hub.verifier) == CP
    assert verify_checkpoint(note, witness.verifier) == CP


def test_wrong_key_fails(hub: NoteSigner, witness: NoteSigner) -> None:
    note = sign_checkpoint(CP, hub)
    with pytest.raises(CheckpointError, match="no signature"):
        verify_checkpoint(note, witness.verifier)
    # Same name, another key: the key hash differs, so no signature line matches.
    impostor = NoteSigner(ORIGIN, generate_key(hub.verifier.suite))
    with pytest.raises(CheckpointError):
        verify_checkpoint(note, impostor.verifier)
    # A line that claims the hub's name and key hash but was signed by another key.
    forged_sig = base64.b64encode(hub.verifier.key_hash + impostor.private_key.sign(CP.body()))
    forged = CP.body().decode() + f"\n\u2014 {ORIGIN} {forged_sig.decode()}\n"
    with pytest.raises(CheckpointError, match="does not verify"):
        verify_checkpoint(forged, hub.verifier)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("\n8\n", "\n9\n"),
        (ORIGIN + "\n", "swiftchain.test/other\n"),
        (base64.b64encode(ROOT).decode(), base64.b64encode(EMPTY_ROOT).decode()),
    ],
)
def test_tampered_body_fails(hub: NoteSigner, old: str, new: str) -> None:
    note = sign_checkpoint(CP, hub)
    tampered = note.replace(old, new, 1)
    assert tampered != note
    with pytest.raises(CheckpointError):
        verify_checkpoint(tampered, hub.verifier)


def test_tampered_signature_fails(hub: NoteSigner) -> None:
    note = sign_checkpoint(CP, hub)
    body, sig_line = note.split("\n\n")
    prefix, sig_b64 = sig_line.rstrip("\n").rsplit(" ", 1)
    raw = bytearray(base64.b64decode(sig_b64))
    raw[10] ^= 1
    bad = f"{body}\n\n{prefix} {base64.b64encode(bytes(raw)).decode()}\n"
    with pytest.raises(CheckpointError, match="does not verify"):
        verify_checkpoint(bad, hub.verifier)


@pytest.mark.parametrize(
    "note",
    [
        "",
        "o\n1\n",
        "o\n1\nAAAA\n\n",
        f"o\n-1\n{base64.b64encode(ROOT).decode()}\n\n\u2014 o AAAAAAAA\n",
        f"o\n01\n{base64.b64encode(ROOT).decode()}\n\n\u2014 o AAAAAAAA\n",
        f"o\n1\n{base64.b64encode(ROOT[:31]).decode()}\n\n\u2014 o AAAAAAAA\n",
        f"o\n1\n{base64.b64encode(ROOT).decode()}\n\n- o AAAAAAAA\n",
        f"o\n1\n{base64.b64encode(ROOT).decode()}\n\n\u2014 o AAA\n",
        f"o\n1\n{base64.b64encode(ROOT).decode()}\n\n\u2014 o !!!!\n",
        f"o\n1\n{base64.b64encode(ROOT).decode()}\n\n\u2014 o AAAAAAAA",
        f" o\n1\n{base64.b64encode(ROOT).decode()}\n\n\u2014 o AAAAAAAA\n",
        "o\ud800\n1\n" + base64.b64encode(ROOT).decode() + "\n\n\u2014 o AAAAAAAA\n",
        "x" * 70_000,
    ],
)
def test_malformed_notes(note: str) -> None:
    with pytest.raises(CheckpointError):
        parse_checkpoint(note)


@pytest.mark.parametrize("value", [None, b"note", 5])
def test_notes_are_text(hub: NoteSigner, value: Any) -> None:
    with pytest.raises(CheckpointError):
        parse_checkpoint(value)
    with pytest.raises(CheckpointError):
        verify_checkpoint(value, hub.verifier)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "name",
        "name+abcd",
        "na me+00000000+AQ==",
        "name+00000000+!!!",
        "name+00000000+" + base64.b64encode(b"\x02" + bytes(32)).decode(),
        "name+00000000+" + base64.b64encode(b"\x01" + bytes(31)).decode(),
        "name+00000000+" + base64.b64encode(b"\x01" + bytes(32)).decode(),
    ],
)
def test_malformed_verifier_keys(text: str) -> None:
    with pytest.raises(CheckpointError):
        NoteVerifier.parse(text)


@pytest.mark.parametrize("value", [None, 5, b"bytes"])
def test_verifier_keys_are_text(value: Any) -> None:
    with pytest.raises(CheckpointError):
        NoteVerifier.parse(value)


@pytest.mark.parametrize(
    "checkpoint",
    [
        Checkpoint("", 1, ROOT),
        Checkpoint("two\nlines", 1, ROOT),
        Checkpoint(" padded", 1, ROOT),
        Checkpoint(5, 1, ROOT),  # type: ignore[arg-type]
        Checkpoint(ORIGIN, -1, ROOT),
        Checkpoint(ORIGIN, True, ROOT),
        Checkpoint(ORIGIN, "1", ROOT),  # type: ignore[arg-type]
        Checkpoint(ORIGIN, 1, ROOT[:31]),
        Checkpoint(ORIGIN, 1, ROOT.hex()),  # type: ignore[arg-type]
        Checkpoint(ORIGIN, 1, ROOT, ("",)),
        Checkpoint(ORIGIN, 1, ROOT, ("a\nb",)),
        Checkpoint(ORIGIN + "\ud800", 1, ROOT),
    ],
)
def test_unparseable_checkpoints_are_not_signed(hub: NoteSigner, checkpoint: Checkpoint) -> None:
    with pytest.raises(CheckpointError):
        sign_checkpoint(checkpoint, hub)


@pytest.mark.parametrize("name", ["", "two words", "plus+sign"])
def test_bad_signer_names_are_refused(hub: NoteSigner, name: str) -> None:
    with pytest.raises(CheckpointError):
        sign_checkpoint(CP, NoteSigner(name, hub.private_key))
    with pytest.raises(CheckpointError):
        add_cosignature(sign_checkpoint(CP, hub), NoteSigner(name, hub.private_key))


def test_bad_signers_and_verifiers_are_named_errors(hub: NoteSigner, witness: NoteSigner) -> None:
    with pytest.raises(CheckpointError):
        sign_checkpoint(CP, None)  # type: ignore[arg-type]
    with pytest.raises(CheckpointError):
        sign_checkpoint(CP, NoteSigner(ORIGIN, None))  # type: ignore[arg-type]
    with pytest.raises(CheckpointError):
        sign_checkpoint(None, hub)  # type: ignore[arg-type]
    with pytest.raises(CheckpointError):
        verify_checkpoint(sign_checkpoint(CP, hub), None)  # type: ignore[arg-type]
    with pytest.raises(CheckpointError):
        add_cosignature("not a note", witness)


# -- fuzzing: only CheckpointError ever escapes --------------------------------------------
@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.text(max_size=300))
def test_fuzz_parse_checkpoint_text(note: str) -> None:
    try:
        parse_checkpoint(note)
    except CheckpointError:
        pass


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.data())
def test_fuzz_mutated_real_notes(hub: NoteSigner, witness: NoteSigner, data: st.DataObject) -> None:
    note = list(add_cosignature(sign_checkpoint(CP, hub), witness))
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(note) - 1))
        char = data.draw(st.characters(codec="utf-8") | st.sampled_from(["\n", " ", "+", "\u2014"]))
        if data.draw(st.booleans()):
            note[at] = char
        else:
            note.insert(at, char)
    text = "".join(note)
    try:
        checkpoint = verify_checkpoint(text, hub.verifier)
    except CheckpointError:
        return
    # A mutation that still verifies touched only the witness's line or trailing bytes.
    assert checkpoint == CP


# -- the two suites side by side ----------------------------------------------------------
def test_the_vkey_names_its_suite(hub: NoteSigner, suite: Suite) -> None:
    vkey = NoteVerifier.parse(hub.verifier.encode())
    assert vkey.suite is suite
    raw = base64.b64decode(hub.verifier.encode().split("+", 2)[2])
    assert raw.startswith(suite.note_type)
    # The key ID: HASH(name || 0x0A || type || public key)[:4], in the suite's hash.
    public = raw[len(suite.note_type) :]
    assert vkey.key_hash == suite.digest(ORIGIN.encode() + b"\n" + suite.note_type + public)[:4]


def test_the_sm2_note_type_is_the_0xff_escape_of_signed_note() -> None:
    assert ED25519_SHA256.note_type == b"\x01"
    assert SM2_SM3.note_type == b"\xffswiftchain.dev/sm2-sm3/note"
    assert SM2_SM3.cosignature_type == b"\xffswiftchain.dev/sm2-sm3/cosignature"


def test_an_sm2_note_and_an_ed25519_line_stand_side_by_side() -> None:
    """An SM2 log's checkpoint cosigned by an Ed25519 key: each verifier finds its line."""
    sm2_hub, _ = SIGNERS[SM2_SM3.name]
    _, ed_witness = SIGNERS[ED25519_SHA256.name]
    note = add_cosignature(sign_checkpoint(CP, sm2_hub), ed_witness)
    assert verify_checkpoint(note, sm2_hub.verifier) == CP
    assert verify_checkpoint(note, ed_witness.verifier) == CP


def test_a_key_of_the_other_suite_under_the_same_name_matches_no_line() -> None:
    sm2_hub, _ = SIGNERS[SM2_SM3.name]
    ed_hub, _ = SIGNERS[ED25519_SHA256.name]
    assert sm2_hub.name == ed_hub.name
    with pytest.raises(CheckpointError, match="no signature"):
        verify_checkpoint(sign_checkpoint(CP, sm2_hub), ed_hub.verifier)
    with pytest.raises(CheckpointError, match="no signature"):
        verify_checkpoint(sign_checkpoint(CP, ed_hub), sm2_hub.verifier)


@pytest.mark.parametrize(
    "raw",
    [
        SM2_SM3.note_type + b"\x04" + b"\x01" * 64,  # not a point on the curve
        SM2_SM3.note_type + b"\x04" * 30,  # too short
        b"\xffswiftchain.dev/sm2-sm3/other" + b"\x04" * 65,  # another 0xff type
    ],
)
def test_malformed_sm2_verifier_keys(raw: bytes) -> None:
    text = f"{ORIGIN}+00000000+{base64.b64encode(raw).decode()}"
    with pytest.raises(CheckpointError):
        NoteVerifier.parse(text)
