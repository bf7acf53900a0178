"""c2sp.org/tlog-proof@v1: the spec's example, round trips, and every field of a good proof
tampered with once — each one refused, by the parser or by the verifier."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from functools import cache

import pytest

from ledger.checkpoint import Checkpoint, NoteSigner, sign_checkpoint
from ledger.errors import ProofError
from ledger.hashing import leaf_hash, node_hash
from ledger.keys import generate_key
from ledger.policy import parse_policy
from ledger.tlogproof import (
    HEADER,
    MAX_INCLUSION,
    TlogProof,
    assemble_proof,
    format_proof,
    parse_proof,
    verify_proof,
)
from ledger.tree import largest_power_of_two_below
from tests.support.cosigners import T, cosigned, policy_text, witness

ORIGIN = "example.com/fancylog"
LOG = NoteSigner(ORIGIN, generate_key())
W = {n: witness(f"{n}.example") for n in ("witness1", "witness2", "witness3")}
POLICY = parse_policy(policy_text(LOG, W, "group two 2 witness1 witness2 witness3", quorum="two"))

SIZE = 11
LEAVES = [
    json.dumps({"kind": "record", "id": f"r{i}", "pilot": "air-quality", "source": "s1"}).encode()
    for i in range(SIZE)
]
HASHES = [leaf_hash(leaf) for leaf in LEAVES]


@cache
def mth(start: int, end: int) -> bytes:
    if end - start == 1:
        return HASHES[start]
    k = largest_power_of_two_below(end - start)
    return node_hash(mth(start, start + k), mth(start + k, end))


def path(m: int, start: int, end: int) -> list[bytes]:
    """RFC 9162 2.1.3.1 PATH(m, D[start:end])."""
    if end - start == 1:
        return []
    k = largest_power_of_two_below(end - start)
    if m < k:
        return [*path(m, start, start + k), mth(start + k, end)]
    return [*path(m - k, start + k, end), mth(start, start + k)]


NOTE = cosigned(
    sign_checkpoint(Checkpoint(ORIGIN, SIZE, mth(0, SIZE)), LOG),
    [W["witness1"], W["witness2"], W["witness3"]],
)


def proof_of(index: int, *, extra: bool = True, note: str = NOTE) -> TlogProof:
    return TlogProof(index, tuple(path(index, 0, SIZE)), note, LEAVES[index] if extra else None)


GOOD = format_proof(proof_of(6))


# c2sp.org/tlog-proof, the example at the top (its signature lines elided there).
SPEC_HEAD = """c2sp.org/tlog-proof@v1
extra YWdlLXYxLjIuMS1kYXJ3aW4tYXJtNjQudGFyLmd6kYXJ3aW4tYXJ
index 73894
gSKyXoYZUgZ6jduWYrkDOARinOMGJveXjgMkBTcdPlQ=
B95lDa8R83lS8n0eG+o0buTxRKQTYFi//1U8anccXmA=
EKNzoDWG8LGC0Yp9o+sv3qllpMP9uHQ9B20KNL+Q1zs=
RoopEkOdqkYqMB4MJXrbt/hMjOxsVn0IrWjpz1ZMMes=
AHCioX9nLjsrse6YhjRRmk1WUEirVOLLRoOQ6vfO5vk=
"""
SPEC_BODY = "example.com/fancylog\n109482\nsFodV/vSp5O8n9a8QpW6PRY97tfOSW5bsc2Xl/EQi08=\n"


def test_the_spec_example() -> None:
    # The example's checkpoint, signed by a key of ours in place of the elided signatures.
    root = base64.b64decode("sFodV/vSp5O8n9a8QpW6PRY97tfOSW5bsc2Xl/EQi08=")
    note = cosigned(sign_checkpoint(Checkpoint(ORIGIN, 109482, root), LOG), W.values())
    assert note.startswith(SPEC_BODY + "\n— example.com/fancylog ")
    text = SPEC_HEAD + "\n" + note
    proof = parse_proof(text)
    assert proof.index == 73894
    assert proof.extra is not None and proof.extra.startswith(b"age-v1.2.1-darwin-arm64.tar.gz")
    assert len(proof.inclusion) == 5
    assert proof.inclusion[0] == base64.b64decode("gSKyXoYZUgZ6jduWYrkDOARinOMGJveXjgMkBTcdPlQ=")
    assert proof.checkpoint == note
    assert format_proof(proof) == text
    # The example's five hashes are illustrative (a tree of 109482 needs 17): the checkpoint
    # verifies, its inclusion proof is refused for what it is.
    report = verify_proof(proof, POLICY)
    assert report.checkpoint.ok and not report.ok
    assert report.reasons() == [
        "the inclusion proof is not one for index 73894: inclusion proof is too short"
    ]


@pytest.mark.parametrize("index", range(SIZE))
def test_every_entry_proves(index: int) -> None:
    text = format_proof(proof_of(index))
    assert parse_proof(text) == proof_of(index)
    report = verify_proof(text, POLICY, now=T)
    assert report.ok, report.reasons()
    assert report.leaf == LEAVES[index] and report.leaf_from == "extra"
    assert verify_proof(text, POLICY, leaf=LEAVES[index]).ok


def test_round_trips() -> None:
    for proof in (proof_of(0), proof_of(10, extra=False), TlogProof(0, (), NOTE, b"")):
        assert parse_proof(format_proof(proof)) == proof
        assert parse_proof(format_proof(proof).encode()) == proof


def test_a_one_entry_log_has_an_empty_inclusion_proof() -> None:
    note = sign_checkpoint(Checkpoint(ORIGIN, 1, HASHES[0]), LOG)
    text = format_proof(TlogProof(0, (), cosigned(note, W.values()), LEAVES[0]))
    assert text.startswith(f"{HEADER}\nextra ") and "\nindex 0\n\n" in text
    assert verify_proof(text, POLICY).ok


def test_the_given_leaf_must_be_the_proven_one() -> None:
    report = verify_proof(GOOD, POLICY, leaf=LEAVES[5])
    assert not report.ok
    assert "is not entry 6: this proof proves another leaf" in report.reasons()[0]


def test_without_extra_the_leaf_is_needed() -> None:
    text = format_proof(proof_of(3, extra=False))
    report = verify_proof(text, POLICY)
    assert not report.ok and "carries no leaf" in report.reasons()[0]
    assert verify_proof(text, POLICY, leaf=LEAVES[3]).ok
    assert not verify_proof(text, POLICY, leaf=LEAVES[4]).ok


def test_the_quorum_is_checked() -> None:
    thin = cosigned(sign_checkpoint(Checkpoint(ORIGIN, SIZE, mth(0, SIZE)), LOG), [W["witness2"]])
    report = verify_proof(format_proof(proof_of(6, note=thin)), POLICY)
    assert not report.ok
    assert report.reasons()[0].startswith("quorum two not met: 1 of the 2 needed")


def lines_of(text: str) -> list[str]:
    return text.split("\n")


def replace_line(n: int, new: str) -> Callable[[str], str]:
    def change(text: str) -> str:
        lines = lines_of(text)
        lines[n] = new
        return "\n".join(lines)

    return change


def flip_b64(line: str, at: int) -> str:
    c = line[at]
    return line[:at] + ("A" if c != "A" else "B") + line[at + 1 :]


def tamper_hash(n: int) -> Callable[[str], str]:
    return lambda text: replace_line(3 + n, flip_b64(lines_of(text)[3 + n], 5))(text)


HASH_LINES = len(path(6, 0, SIZE))
CP = 3 + HASH_LINES + 1  # the checkpoint's first line


def _other_leaf_extra(text: str) -> str:
    return replace_line(1, "extra " + base64.b64encode(LEAVES[5]).decode())(text)


def _spare_bits(text: str) -> str:
    # A hash's last base64 character carries two spare bits: another spelling, same bytes.
    line = lines_of(text)[3]
    last = line[-2]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    twin = alphabet[alphabet.index(last) ^ 1]
    return replace_line(3, line[:-2] + twin + "=")(text)


TAMPERS: dict[str, Callable[[str], str]] = {
    "header": replace_line(0, "c2sp.org/tlog-proof@v2"),
    "extra, another leaf": _other_leaf_extra,
    "extra, one byte": lambda t: replace_line(
        1, "extra " + base64.b64encode(LEAVES[6].replace(b"r6", b"r7")).decode()
    )(t),
    "extra, not base64": replace_line(1, "extra ***"),
    "index + 1": replace_line(2, "index 7"),
    "index - 1": replace_line(2, "index 5"),
    "index, leading zero": replace_line(2, "index 06"),
    "index, beyond the tree": replace_line(2, "index 11"),
    "index, huge": replace_line(2, f"index {2**64}"),
    "index line missing": lambda t: t.replace("index 6\n", ""),
    **{f"hash {n}": tamper_hash(n) for n in range(HASH_LINES)},
    "hash, spare bits": _spare_bits,
    "hash removed": lambda t: "\n".join(lines_of(t)[:3] + lines_of(t)[4:]),
    "hash added": lambda t: "\n".join([*lines_of(t)[:4], *lines_of(t)[3:]]),
    "hash, short": replace_line(3, base64.b64encode(b"x" * 31).decode()),
    "hashes swapped": lambda t: "\n".join(
        [*lines_of(t)[:3], lines_of(t)[4], lines_of(t)[3], *lines_of(t)[5:]]
    ),
    "blank line removed": lambda t: t.replace("\n\n", "\n", 1),
    "origin": lambda t: t.replace(ORIGIN + "\n", "example.com/otherlog\n", 1),
    "size": replace_line(CP + 1, str(SIZE + 1)),
    "root": lambda t: replace_line(CP + 2, flip_b64(lines_of(t)[CP + 2], 3))(t),
    "extension line added": lambda t: replace_line(CP + 2, lines_of(t)[CP + 2] + "\nextra")(t),
    "log signature": lambda t: replace_line(CP + 4, flip_b64(lines_of(t)[CP + 4], 40))(t),
    "log signature removed": lambda t: "\n".join(lines_of(t)[: CP + 4] + lines_of(t)[CP + 5 :]),
    "a cosignature": lambda t: replace_line(CP + 5, flip_b64(lines_of(t)[CP + 5], 60))(t),
    "cosignature timestamp": lambda t: replace_line(CP + 6, flip_b64(lines_of(t)[CP + 6], 30))(t),
    "two cosignatures removed": lambda t: "\n".join(lines_of(t)[: CP + 5] + lines_of(t)[CP + 7 :]),
    "CRLF": lambda t: t.replace("\n", "\r\n"),
    "trailing text": lambda t: t + "junk",
    "not UTF-8": lambda t: t.replace("index", "ind\udcffex"),
}


@pytest.mark.parametrize("field", sorted(TAMPERS))
def test_every_tampered_field_is_refused(field: str) -> None:
    tampered = TAMPERS[field](GOOD)
    assert tampered != GOOD
    try:
        raw = tampered.encode("utf-8", "surrogateescape")
        report = verify_proof(raw, POLICY, now=T)
    except ProofError:
        return
    assert not report.ok, f"{field} was not noticed"
    assert report.reasons()


def test_tamper_table_starts_from_a_good_proof() -> None:
    assert verify_proof(GOOD, POLICY).ok
    assert lines_of(GOOD)[CP] == ORIGIN and lines_of(GOOD)[CP + 4].startswith("— " + ORIGIN)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "starts with the line c2sp.org/tlog-proof@v1"),
        (f"{HEADER}\r\nindex 0\n\n", "Windows line ends"),
        (f"{HEADER}\nindex 0\n", "no empty line before the checkpoint"),
        (f"{HEADER}\nextra AA==\n\n{NOTE}", "line 3: expected 'index <decimal>'"),
        (f"{HEADER}\nindex x\n\n{NOTE}", "line 2: index 'x'"),
        (f"{HEADER}\nindex 0\nnot a hash\n\n{NOTE}", "line 3: inclusion proof hash"),
        (f"{HEADER}\nindex 0\n\nnot a note", "the checkpoint after the empty line"),
        (f"{HEADER}\nindex 0\n" + "AA==\n" * (MAX_INCLUSION + 1) + "\n" + NOTE, "more than 64"),
    ],
)
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(ProofError, match=message.replace("(", r"\(").replace("|", r"\|")):
        parse_proof(text)


def test_size_and_type_limits() -> None:
    with pytest.raises(ProofError, match="at most"):
        parse_proof("x" * 300_000)
    with pytest.raises(ProofError, match="at most"):
        parse_proof(b"x" * 300_000)
    with pytest.raises(ProofError, match="UTF-8"):
        parse_proof(b"\xff")
    with pytest.raises(ProofError, match="text"):
        parse_proof(42)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("proof", "message"),
    [
        (TlogProof(-1, (), NOTE), "index -1"),
        (TlogProof(True, (), NOTE), "index True"),  # type: ignore[arg-type]
        (TlogProof(0, (b"x",), NOTE), "inclusion hash 0"),
        (TlogProof(0, (b"x" * 32,) * 65, NOTE), "at most 64"),
        (TlogProof(0, (), NOTE, "text"), "extra data is bytes"),  # type: ignore[arg-type]
        (TlogProof(0, (), "no note"), "not a signed note"),
    ],
)
def test_format_refuses_what_parse_would_not_read(proof: TlogProof, message: str) -> None:
    with pytest.raises(ProofError, match=message):
        format_proof(proof)


def test_report_as_dict_and_summary() -> None:
    report = verify_proof(GOOD, POLICY, now=T)
    d = report.as_dict()
    assert d["ok"] is True and d["index"] == 6 and d["leaf_hash"] == HASHES[6].hex()
    assert d["inclusion_ok"] is True and d["reasons"] == []
    lines = report.summary()
    assert lines[0] == f"entry 6 of {ORIGIN}"
    assert "  entry          record r6 (air-quality/s1)" in lines
    assert f"  inclusion      ok in the tree of {SIZE}" in lines


def test_verify_bad_leaf_type() -> None:
    with pytest.raises(ProofError, match="a leaf is bytes"):
        verify_proof(GOOD, POLICY, leaf="text")  # type: ignore[arg-type]


def test_sha256_is_of_the_leaf_with_its_prefix() -> None:
    # RFC 9162 2.1.1: the proven hash is SHA-256(0x00 || leaf), not SHA-256(leaf).
    assert HASHES[0] == hashlib.sha256(b"\x00" + LEAVES[0]).digest()


def test_assemble_checks_before_it_hands_out() -> None:
    text = assemble_proof(NOTE, 6, path(6, 0, SIZE), LEAVES[6])
    assert text == GOOD
    with pytest.raises(ProofError, match="do not lead to the root signed at size 11"):
        assemble_proof(NOTE, 6, path(6, 0, SIZE), LEAVES[5])
    with pytest.raises(ProofError, match="outside a tree of size 11"):
        assemble_proof(NOTE, 11, [], LEAVES[0])
    with pytest.raises(ProofError, match="not a signed note"):
        assemble_proof("junk", 0, [], LEAVES[0])
    with pytest.raises(ProofError, match="a leaf is bytes"):
        assemble_proof(NOTE, 0, [], "leaf")  # type: ignore[arg-type]
