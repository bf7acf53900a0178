"""The trust policy's text form (c2sp.org/tlog-policy): every rule of the spec, each broken
once, with the line it is reported on; the spec's example policy (its elided keys filled
with real ones); and format_policy round trips."""

from __future__ import annotations

import pytest

from ledger.checkpoint import NoteSigner
from ledger.errors import LedgerError, PolicyError
from ledger.keys import generate_key
from ledger.policy import (
    NONE,
    Group,
    PolicyBuilder,
    TrustPolicy,
    format_policy,
    parse_policy,
)
from tests.support.cosigners import policy_text, witness

LOG = NoteSigner("example.com/log", generate_key())
W = {name: witness(f"{name.lower()}.example/w") for name in ("X1", "X2", "X3", "Y1", "Y2", "Y3")}


def vkey(name: str) -> str:
    return W[name].verifier.encode()


# c2sp.org/tlog-policy, "Example policy", with <vkey> filled in.
SPEC_EXAMPLE = f"""log {LOG.verifier.encode()}

witness X1 {vkey("X1")}
witness X2 {vkey("X2")}
witness X3 {vkey("X3")}
group X-witnesses 2 X1 X2 X3

witness Y1 {vkey("Y1")}
witness Y2 {vkey("Y2")}
witness Y3 {vkey("Y3")}
group Y-witnesses any Y1 Y2 Y3

group X-and-Y all X-witnesses Y-witnesses
quorum X-and-Y
"""


def problems(text: str | bytes) -> list[tuple[int | None, str]]:
    with pytest.raises(PolicyError) as caught:
        parse_policy(text)
    return caught.value.problems


def only(text: str | bytes) -> tuple[int | None, str]:
    found = problems(text)
    assert len(found) == 1, found
    return found[0]


def test_the_spec_example_policy() -> None:
    policy = parse_policy(SPEC_EXAMPLE)
    assert [log.origin for log in policy.logs] == ["example.com/log"]
    assert [w.name for w in policy.witnesses] == ["X1", "X2", "X3", "Y1", "Y2", "Y3"]
    assert policy.groups == (
        Group("X-witnesses", 2, ("X1", "X2", "X3")),
        Group("Y-witnesses", 1, ("Y1", "Y2", "Y3"), "any"),
        Group("X-and-Y", 2, ("X-witnesses", "Y-witnesses"), "all"),
    )
    assert policy.quorum == "X-and-Y"
    assert policy.witness("Y2") is not None and policy.witness("Y2").key == W["Y2"].verifier  # type: ignore[union-attr]
    assert policy.describe_quorum() == (
        "X-and-Y: all of (X-witnesses: 2 of (X1, X2, X3), Y-witnesses: any of (Y1, Y2, Y3))"
    )


def test_format_round_trips() -> None:
    policy = parse_policy(SPEC_EXAMPLE)
    text = format_policy(policy)
    assert parse_policy(text) == policy
    assert format_policy(parse_policy(text)) == text


def test_urls_comments_tabs_and_blank_lines() -> None:
    text = (
        "# the alliance\n"
        f"\t log {LOG.verifier.encode()}  https://hub.example/ \n"
        "   # indented comment\n"
        "\n \t \n"
        f"witness\tX1\t{vkey('X1')}\thttps://x1.example/\n"
        "quorum X1"  # no final newline
    )
    policy = parse_policy(text)
    assert policy.logs[0].url == "https://hub.example/"
    assert policy.witnesses[0].url == "https://x1.example/"
    assert policy.quorum == "X1"
    assert parse_policy(format_policy(policy)) == policy


def test_quorum_none_needs_no_witnesses() -> None:
    policy = parse_policy(f"log {LOG.verifier.encode()}\nquorum none\n")
    assert policy.quorum == NONE and policy.witnesses == ()


def test_a_policy_may_list_no_log() -> None:
    assert parse_policy(policy_text(None, {"X1": W["X1"]}, quorum="X1")).logs == ()


def test_logs_and_witnesses_in_any_order() -> None:
    text = f"witness X1 {vkey('X1')}\nlog {LOG.verifier.encode()}\nquorum X1\n"
    assert parse_policy(text).logs[0].origin == "example.com/log"


def test_numeric_thresholds_from_one_to_n() -> None:
    for k in (1, 2, 3):
        text = policy_text(
            None, {n: W[n] for n in ("X1", "X2", "X3")}, f"group g {k} X1 X2 X3", quorum="g"
        )
        assert parse_policy(text).groups[0].threshold == k


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("frobnicate X\nquorum none\n", 1, "unknown keyword 'frobnicate'"),
        ("log\nquorum none\n", 1, "log <vkey> [<url>]"),
        (f"log {LOG.verifier.encode()} u1 u2\nquorum none\n", 1, "log <vkey> [<url>]"),
        ("witness X1\nquorum none\n", 1, "witness <name> <vkey> [<url>]"),
        (f"witness X1 {vkey('X1')} u extra\nquorum none\n", 1, "witness <name> <vkey>"),
        (f"witness X1 {vkey('X1')}\ngroup g 1\nquorum g\n", 2, "group <name> all|any|<k>"),
        ("quorum\n", 1, "quorum <name>"),
        ("quorum a b\n", 1, "quorum <name>"),
        ("log not-a-key\nquorum none\n", 1, "verifier key reads"),
        (f"witness X1 {LOG.verifier.encode()}\nquorum none\n", 1, "not a cosigner key"),
        (f"log {vkey('X1')}\nquorum none\n", 1, "not an Ed25519 (type 0x01) key"),
        (f"log {LOG.verifier.encode()} bad\turl\x01\nquorum none\n", 1, "control character"),
        ("quorum none\r\n", 1, "Windows line ends"),
        ("quorum none\nquorum none\n", 2, "a second quorum line"),
        ("quorum X1\n", 1, "quorum 'X1' is not a witness or group defined before it"),
        ("# nothing\n", 2, "no quorum"),
        ("", 1, "no quorum"),
    ],
)
def test_line_errors(text: str, line: int, message: str) -> None:
    got_line, got = only(text)
    assert got_line == line
    assert message in got


def ws(*names: str) -> str:
    return "".join(f"witness {n} {vkey(n)}\n" for n in names)


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        # Duplicate vkeys: the same public key, even under another key name and ID.
        (
            ws("X1") + f"witness X1b {W['X1'].verifier.encode()}\nquorum none\n",
            2,
            "same public key as witness X1",
        ),
        (
            ws("X1")
            + "witness X1c "
            + type(W["X1"].verifier)("other.name/w", W["X1"].verifier.public_key).encode()
            + "\nquorum none\n",
            2,
            "same public key as witness X1",
        ),
        (
            f"log {LOG.verifier.encode()}\n"
            f"log {NoteSigner('other.example/log', LOG.private_key).verifier.encode()}\n"
            "quorum none\n",
            2,
            "duplicate logs",
        ),
        (ws("X1") + f"witness X1 {vkey('X2')}\nquorum none\n", 2, "'X1' is already defined"),
        (ws("X1") + "group X1 any X1\nquorum none\n", 2, "'X1' is already defined"),
        (f"witness none {vkey('X1')}\nquorum none\n", 1, "'none' is predefined"),
        (ws("X1") + "group none any X1\nquorum none\n", 2, "'none' is predefined"),
        (ws("X1") + "group g any X1 none\nquorum g\n", 2, "'none' cannot be a group member"),
        (ws("X1") + "group g any X1 X9\nquorum g\n", 2, "'X9' is not a witness or group defined"),
        # Forward references are refused (this also rules out cycles).
        ("group g any X1\n" + ws("X1") + "quorum g\n", 1, "'X1' is not a witness or group"),
        (ws("X1") + "quorum X1\n" + ws("X2"), 1, None),  # quorum before a witness: fine
        (ws("X1", "X2") + "group g any X1 X2 X1\nquorum g\n", 3, "lists X1 twice"),
        (
            ws("X1", "X2", "X3") + "group a any X1 X2\ngroup b any X1 X3\nquorum b\n",
            5,
            "X1 is already a member of group a",
        ),
        (ws("X1", "X2") + "group g 0 X1 X2\nquorum g\n", 3, "threshold '0' is not all, any"),
        (ws("X1", "X2") + "group g 3 X1 X2\nquorum g\n", 3, "threshold 3 is not between 1 and"),
        (ws("X1", "X2") + "group g 02 X1 X2\nquorum g\n", 3, "threshold '02'"),
        (ws("X1", "X2") + "group g two X1 X2\nquorum g\n", 3, "threshold 'two'"),
        (ws("X1", "X2") + "group g -1 X1 X2\nquorum g\n", 3, "threshold '-1'"),
        (ws("X1") + "group g ALL X1\nquorum g\n", 2, "threshold 'ALL'"),
    ],
)
def test_rules_of_the_spec(text: str, line: int, message: str | None) -> None:
    if message is None:
        parse_policy(text)
        return
    got_line, got = only(text)
    assert (got_line, message in got) == (line, True), got


def test_every_problem_is_listed_with_its_line() -> None:
    text = f"witness A junk\nwitness B {vkey('X1')}\ngroup g 3 B\nquorum zz\nfoo\n"
    found = problems(text)
    assert [line for line, _ in found] == [1, 3, 4, 5]
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, file="alliance.policy")
    assert str(caught.value).startswith("4 problems:\n  alliance.policy:1: ")


def test_one_mistake_one_message() -> None:
    # The refused witness A is not reported again where the group and the quorum name it.
    text = f"witness A junk\nwitness B {vkey('X1')}\ngroup g any A B\nquorum g\n"
    assert problems(text) == [(1, problems("witness A junk\nquorum none")[0][1])]


def test_not_utf8_and_oversize() -> None:
    assert "not UTF-8" in only(b"quorum \xff\n")[1]
    assert "larger than" in only(b"#" * (300 * 1024))[1]
    assert "larger than" in only("#" * (300 * 1024))[1]


def test_non_ascii_names_are_opaque() -> None:
    # "K" and the Kelvin sign are different names (tlog-policy, "Character set").
    text = ws("X1", "X2").replace(" X1 ", " K ").replace(" X2 ", " \u212a ") + "quorum \u212a\n"
    policy = parse_policy(text)
    assert [w.name for w in policy.witnesses] == ["K", "\u212a"]


def test_policy_error_is_a_ledger_error() -> None:
    assert issubclass(PolicyError, LedgerError)
    with pytest.raises(PolicyError, match="a policy is text"):
        parse_policy(42)  # type: ignore[arg-type]


def test_builder_rules_without_text() -> None:
    b = PolicyBuilder()
    b.add_witness("a", W["X1"].verifier)
    b.add_witness("b", W["X2"].verifier, operator="harbour-cdc")
    with pytest.raises(PolicyError, match="no quorum"):
        b.build()
    with pytest.raises(PolicyError, match="lists no members"):
        b.add_group("g", "any", [])
    with pytest.raises(PolicyError, match="threshold 'some'"):
        b.add_group("g", "some", ["a"])  # type: ignore[arg-type]
    with pytest.raises(PolicyError, match="threshold True"):
        b.add_group("g", True, ["a"])  # bool is not a threshold
    with pytest.raises(PolicyError, match="whitespace"):
        b.add_witness("a b", W["X3"].verifier)
    with pytest.raises(PolicyError, match="URL"):
        b.add_witness("c", W["X3"].verifier, url="http://x y")
    b.add_group("g", "all", ["a", "b"])
    b.set_quorum("g")
    policy = b.build()
    assert isinstance(policy, TrustPolicy)
    assert policy.witness("b").operator == "harbour-cdc"  # type: ignore[union-attr]
    assert policy.group("g") == Group("g", 2, ("a", "b"), "all")
    assert policy.witness("zz") is None and policy.group("zz") is None
    assert "# b is operated by harbour-cdc" in format_policy(policy)


def test_implementation_limits_are_generous() -> None:
    # tlog-policy recommends at least 32 logs, 32 witnesses and 32 groups.
    many = {f"w{i}": witness(f"w{i}.example") for i in range(40)}
    groups = [f"group g{i} any w{i}" for i in range(40)]
    logs = "".join(
        f"log {NoteSigner(f'log{i}.example', generate_key()).verifier.encode()}\n"
        for i in range(40)
    )
    policy = parse_policy(logs + policy_text(None, many, *groups, quorum="g0"))
    assert (len(policy.logs), len(policy.witnesses), len(policy.groups)) == (40, 40, 40)
