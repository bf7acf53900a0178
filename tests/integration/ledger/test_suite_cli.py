"""The CLI on both crypto suites: `keys new --suite` makes key files of either kind, and
`ledger verify`, `copy`, `prove` and `check-proof` work on an sm2-sm3 ledger (SM3 tree and
commitments, SM2 records and checkpoints) as on an ed25519-sha256 one, naming the suite."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from ledger.checkpoint import NoteVerifier
from ledger.keys import key_id, load_private_key, load_public_key, public_key_b64
from ledger.store import LedgerReader
from ledger.suite import SUITES, Suite, suite_named, suite_of
from ledger.tlogproof import parse_proof
from swiftchain.cli import cli
from tests.support.ledger_builder import LedgerBuilder


@pytest.fixture(params=["ed25519-sha256", "sm2-sm3"])
def suite(request: pytest.FixtureRequest) -> Suite:
    return suite_named(request.param)


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


# -- keys new --suite ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["kind", "suite name"])
def test_keys_new_makes_a_key_of_the_suite(tmp_path: Path, suite: Suite, name: str) -> None:
    path = tmp_path / "hub.key"
    given = suite.key_kind if name == "kind" else suite.name
    made = run("keys", "new", str(path), "--suite", given, "--note-name", "ledger.test/log")
    assert made.exit_code == 0, made.output
    key = load_private_key(path)
    pub = load_public_key(tmp_path / "hub.key.pub")
    assert suite_of(key) is suite and suite_of(pub) is suite
    assert public_key_b64(pub) == public_key_b64(key.public_key())
    vkey = NoteVerifier.parse((tmp_path / "hub.vkey").read_text())
    assert vkey.suite is suite and vkey.name == "ledger.test/log"
    assert public_key_b64(vkey.public_key) == public_key_b64(pub)
    # What it prints is the key's: its suite, its id (the suite's hash), its vkey.
    assert f"suite: {suite.name} ({suite.key_kind} key)" in made.output
    assert f"key id: {key_id(pub)}" in made.output
    assert f"public key (base64url): {public_key_b64(pub)}" in made.output
    assert f"verifier key: {vkey.encode()}" in made.output
    shown = run("keys", "show", str(path), "--note-name", "ledger.test/log")
    assert shown.exit_code == 0
    assert f"key id: {key_id(pub)}" in shown.output
    assert f"suite: {suite.name}" in shown.output
    assert f"verifier key: {vkey.encode()}" in shown.output


def test_keys_new_is_ed25519_by_default_and_refuses_an_unknown_suite(tmp_path: Path) -> None:
    assert run("keys", "new", str(tmp_path / "a.key")).exit_code == 0
    assert suite_of(load_private_key(tmp_path / "a.key")) is SUITES["ed25519-sha256"]
    refused = run("keys", "new", str(tmp_path / "b.key"), "--suite", "rsa")
    assert refused.exit_code == 2
    assert "Invalid value for '--suite': 'rsa' is not a crypto suite" in refused.output
    assert "ed25519, sm2, ed25519-sha256, sm2-sm3" in refused.output
    assert not (tmp_path / "b.key").exists() and not (tmp_path / "b.vkey").exists()


# -- ledger verify, copy, prove on a ledger of either suite ---------------------------------


@pytest.fixture
def built(tmp_path: Path, suite: Suite) -> tuple[Path, str]:
    """A ledger of ``suite``: a registered key, signed records with bodies, an erasure,
    checkpoints; and its hub's verifier key."""
    path = tmp_path / "ledger.db"
    builder = LedgerBuilder.of_suite(path, suite)
    builder.register_source()
    builder.append_records(12, batch=5)
    builder.erase(4)
    builder.append_records(3)
    key = builder.signer.verifier.encode()
    builder.close()
    return path, key


def verify_json(path: Path | str, *args: str) -> tuple[int, dict[str, Any]]:
    result = run("ledger", "verify", str(path), "--quiet", "--json", *args)
    report: dict[str, Any] = json.loads(result.stdout)
    return result.exit_code, report


def test_verify_names_the_suite_and_checks_in_it(built: tuple[Path, str], suite: Suite) -> None:
    path, key = built
    code, report = verify_json(path, "--key", key)
    assert code == 0, report["problems"]
    assert report["suite"] == suite.name and report["ok"] is True
    assert report["size"] == 17 and report["signatures"] == 15 and report["bodies"] == 14
    text = run("ledger", "verify", str(path), "--quiet", "--key", key)
    assert text.exit_code == 0, text.output
    assert f"(origin swiftchain.test/log, suite {suite.name})" in text.output
    assert "OK: every hash, signature and checkpoint verifies." in text.output


def test_verify_finds_a_changed_body_and_a_key_of_the_other_suite(
    built: tuple[Path, str], suite: Suite
) -> None:
    path, _ = built
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE bodies SET payload = CAST('{}' AS BLOB) WHERE idx = 7")
    conn.close()
    code, report = verify_json(path)
    assert code == 1 and report["first_bad_index"] == 7 and report["suite"] == suite.name
    (other,) = (s for s in SUITES.values() if s is not suite)
    stranger = LedgerBuilder.of_suite(path.with_name("other.db"), other)
    result = run(
        "ledger", "verify", str(path), "--quiet", "--key", stranger.signer.verifier.encode()
    )
    stranger.close()
    assert result.exit_code in (1, 2) and f"but the log's suite is {suite.name}" in result.output


def test_copy_keeps_the_suite(built: tuple[Path, str], suite: Suite, tmp_path: Path) -> None:
    path, key = built
    copy = tmp_path / "copy.db"
    done = run("ledger", "copy", str(path), str(copy), "--quiet", "--json")
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["ok"] is True
    with LedgerReader(copy) as reader:
        assert reader.suite is suite
    code, report = verify_json(copy, "--key", key)
    assert code == 0 and report["suite"] == suite.name and report["size"] == 17


def test_prove_and_check_a_proof_from_the_ledger(
    built: tuple[Path, str], suite: Suite, tmp_path: Path
) -> None:
    path, key = built
    proof_file, policy = tmp_path / "entry.tlog-proof", tmp_path / "policy.txt"
    policy.write_text(f"log {key}\nquorum none\n")
    made = run("ledger", "prove", "9", "--ledger", str(path), "-o", str(proof_file))
    assert made.exit_code == 0, made.output
    proof = parse_proof(proof_file.read_text())
    assert proof.index == 9
    checked = run("ledger", "check-proof", str(proof_file), "--policy", str(policy))
    assert checked.exit_code == 0, checked.output
    assert "OK: entry 9 is in the log" in checked.output
    # Under a policy naming a log key of the other suite, the proof does not hold.
    (other,) = (s for s in SUITES.values() if s is not suite)
    stranger = LedgerBuilder.of_suite(tmp_path / "other.db", other)
    policy.write_text(f"log {stranger.signer.verifier.encode()}\nquorum none\n")
    stranger.close()
    refused = run("ledger", "check-proof", str(proof_file), "--policy", str(policy))
    assert refused.exit_code == 1
    assert "the log's signature does not verify" in refused.output
