"""Proofs a hospital keeps, end to end: a real hub takes records over MQTT; `swiftchain
ledger prove` writes a tlog-proof from its public API (and from its file); `swiftchain
ledger check-proof` verifies it offline against a trust policy; the hub's own route serves
the same proof; a tampered proof and a proof without the quorum fail with the reason; and
`swiftchain ledger verify --policy` fails on a file whose newest checkpoint lacks it.

The hub does not collect cosignatures yet, so the tests cosign its checkpoints themselves
with ledger.cosignature (what a witness runs), as the hub will publish them.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ledger.cosignature import CosignerSigner
from ledger.keys import load_private_key
from ledger.store import LedgerReader
from ledger.tlogproof import parse_proof
from swiftchain.cli import cli
from tests.support.cosigners import cosigned, witness
from tests.support.hub import SWIFTCHAIN, MqttPeer, ThreadHub
from tests.support.ledger_builder import LedgerBuilder
from tests.support.records import PILOT, SOURCE, TYPE, make

WITNESSES = {
    "cdc": witness("witness.harbour-cdc.example"),
    "hospital": witness("witness.harbour-peoples-hospital.example"),
    "clinic": witness("witness.seaview-clinic.example"),
}
OPERATORS = {
    "cdc": "harbour-cdc",
    "hospital": "harbour-peoples-hospital",
    "clinic": "seaview-clinic",
}


def write_policy(path: Path, log_key: str, quorum: str = "two-organisations") -> Path:
    lines = ["log:", f"  key: {log_key}", "witnesses:"]
    for name, w in WITNESSES.items():
        lines += [
            f"  - name: {name}",
            f"    key: {w.verifier.encode()}",
            f"    operator: {OPERATORS[name]}",
        ]
    lines += [
        "groups:",
        "  - name: two-organisations",
        "    threshold: 2",
        f"    members: [{', '.join(OPERATORS.values())}]",
        f"quorum: {quorum}",
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def run(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args))


def cosign_proof(text: str, signers: list[CosignerSigner]) -> str:
    """The proof with its checkpoint cosigned by ``signers`` (as the hub will serve it)."""
    head, _, note = text.partition("\n\n")
    return head + "\n\n" + cosigned(note, signers)


@pytest.fixture
def hub_with_records(running_hub: ThreadHub) -> ThreadHub:
    key_path, _ = running_hub.register_source(PILOT, SOURCE, [TYPE])
    key = load_private_key(key_path)

    async def publish() -> list[dict[str, Any]]:
        async with MqttPeer(running_hub.mqtt_url) as peer:
            return [await peer.send(make(key, seq)) for seq in range(1, 6)]

    import asyncio

    receipts = asyncio.run(publish())
    assert [r["status"] for r in receipts] == ["accepted"] * 5
    running_hub.receipts = receipts  # type: ignore[attr-defined]
    return running_hub


def test_prove_from_a_hub_and_check_offline(hub_with_records: ThreadHub, tmp_path: Path) -> None:
    hub = hub_with_records
    index = hub.receipts[-1]["index"]  # type: ignore[attr-defined]
    policy = write_policy(tmp_path / "alliance.yaml", hub.log_key)
    proof_file = tmp_path / f"entry-{index}.tlog-proof"

    result = run("ledger", "prove", str(index), "--hub", hub.http_url, "-o", str(proof_file))
    assert result.exit_code == 0, result.output
    text = proof_file.read_text()
    assert text.startswith("c2sp.org/tlog-proof@v1\nextra ")
    assert f"\nindex {index}\n" in text

    # As served today (no cosignatures): the inclusion and the log hold, the quorum does not.
    result = run("ledger", "check-proof", str(proof_file), "--policy", str(policy))
    assert result.exit_code == 1
    assert "quorum two-organisations not met: 0 of the 2 needed of 3" in result.stderr

    # Cosigned by two organisations' witnesses: it holds, offline.
    proof_file.write_text(cosign_proof(text, [WITNESSES["cdc"], WITNESSES["clinic"]]))
    result = run("ledger", "check-proof", str(proof_file), "--policy", str(policy))
    assert result.exit_code == 0, result.output
    assert f"OK: entry {index} is in the log" in result.stdout
    assert "record" in result.stdout and f"({PILOT}/{SOURCE})" in result.stdout

    # And with the leaf the hospital holds.
    leaf = tmp_path / "leaf.json"
    leaf.write_bytes(parse_proof(text).extra or b"")
    result = run(
        "ledger", "check-proof", str(proof_file), "--policy", str(policy), "--leaf", str(leaf)
    )
    assert result.exit_code == 0, result.output
    other = tmp_path / "other.json"
    other.write_bytes(b'{"kind":"record"}')
    result = run(
        "ledger", "check-proof", str(proof_file), "--policy", str(policy), "--leaf", str(other)
    )
    assert result.exit_code == 1 and "this proof proves another leaf" in result.stderr

    # One organisation's two witnesses are not two organisations.
    same_org = cosign_proof(text, [WITNESSES["hospital"]])
    proof_file.write_text(same_org)
    result = run("ledger", "check-proof", str(proof_file), "--policy", str(policy), "--json")
    report = json.loads(result.stdout)
    assert result.exit_code == 1 and report["ok"] is False
    assert report["checkpoint"]["cosigned"] == ["hospital"]


def test_a_tampered_proof_fails(hub_with_records: ThreadHub, tmp_path: Path) -> None:
    hub = hub_with_records
    policy = write_policy(tmp_path / "alliance.yaml", hub.log_key)
    good = cosign_proof(
        run("ledger", "prove", "3", "--hub", hub.http_url).stdout,
        [WITNESSES["cdc"], WITNESSES["hospital"]],
    )
    path = tmp_path / "p.tlog-proof"
    path.write_text(good)
    assert run("ledger", "check-proof", str(path), "--policy", str(policy)).exit_code == 0
    head = good.split("\n")
    for n, why in ((2, "index"), (3, "inclusion")):
        lines = list(head)
        lines[n] = (
            "index 2" if n == 2 else lines[n][:-3] + ("A" if lines[n][-3] != "A" else "B") + "="
        )
        path.write_text("\n".join(lines))
        result = run("ledger", "check-proof", str(path), "--policy", str(policy))
        assert result.exit_code == 1, why
        assert "REFUSED" in result.stderr
    path.write_text(good.replace("c2sp.org/tlog-proof@v1", "c2sp.org/tlog-proof@v0"))
    result = run("ledger", "check-proof", str(path), "--policy", str(policy))
    assert result.exit_code == 1 and "is not a tlog-proof" in result.stderr


def test_the_hub_route_serves_the_same_proof(hub_with_records: ThreadHub, tmp_path: Path) -> None:
    hub = hub_with_records
    served = hub.get_text("/api/v1/ledger/proof/tlog?index=2")
    assert served == run("ledger", "prove", "2", "--hub", hub.http_url).stdout
    status, body = hub.request("GET", "/api/v1/ledger/proof/tlog?index=999")
    assert status == 400 and body["error"] == "bad_parameter"
    assert "not under the latest checkpoint" in body["detail"]
    for query in ("", "?index=x", "?index=-1"):
        status, body = hub.request("GET", f"/api/v1/ledger/proof/tlog{query}")
        assert status == 400 and body["error"] == "bad_parameter", query


def test_prove_from_the_ledger_file(hub_with_records: ThreadHub, tmp_path: Path) -> None:
    hub = hub_with_records
    policy = write_policy(tmp_path / "alliance.policy.yaml", hub.log_key, quorum="none")
    out = tmp_path / "p.tlog-proof"
    # The hub stores its newest checkpoint at most once a second while the log grows.
    for _ in range(300):
        with LedgerReader(hub.db_path) as reader:
            head = reader.latest_checkpoint()
        if head is not None and head.size > 1:
            break
        time.sleep(0.1)
    result = run("ledger", "prove", "1", "--ledger", str(hub.db_path), "-o", str(out))
    assert result.exit_code == 0, result.output
    assert run("ledger", "check-proof", str(out), "--policy", str(policy)).exit_code == 0


def test_prove_usage_and_errors(tmp_path: Path) -> None:
    result = run("ledger", "prove", "1")
    assert result.exit_code == 2 and "exactly one of --ledger PATH or --hub URL" in result.output
    result = run("ledger", "prove", "1", "--hub", "http://127.0.0.1:9")
    assert result.exit_code == 1 and "cannot reach the hub" in result.stderr
    result = run("ledger", "prove", "1", "--ledger", str(tmp_path / "none.db"))
    assert result.exit_code == 1 and result.stderr.startswith("Error: ")
    result = run("ledger", "check-proof", str(tmp_path / "x"), "--policy", str(tmp_path / "y"))
    assert result.exit_code == 2 and "trust policy cannot be used" in result.stderr


@pytest.fixture
def ledger_file(tmp_path: Path) -> tuple[Path, LedgerBuilder]:
    path = tmp_path / "ledger.db"
    builder = LedgerBuilder(path)
    builder.register_source()
    builder.append_records(12, batch=4)
    builder.close()
    return path, builder


def cosign_newest_checkpoint(path: Path, signers: list[CosignerSigner]) -> None:
    """What the hub will store once witnesses answer: the newest note with their lines."""
    conn = sqlite3.connect(path)
    try:
        size, note = conn.execute(
            "SELECT size, note FROM checkpoints ORDER BY size DESC LIMIT 1"
        ).fetchone()
        conn.execute(
            "UPDATE checkpoints SET note = ? WHERE size = ?", (cosigned(note, signers), size)
        )
        conn.commit()
    finally:
        conn.close()


def test_verify_policy_fails_without_the_quorum(
    ledger_file: tuple[Path, LedgerBuilder], tmp_path: Path
) -> None:
    path, builder = ledger_file
    policy = write_policy(tmp_path / "alliance.yaml", builder.signer.verifier.encode())
    cosign_newest_checkpoint(path, [WITNESSES["clinic"]])
    result = run("ledger", "verify", str(path), "--quiet", "--policy", str(policy))
    assert result.exit_code == 1
    assert "OK: every hash, signature and checkpoint verifies." in result.stdout
    assert "NO QUORUM: the newest checkpoint does not meet the trust policy:" in result.stderr
    assert "quorum two-organisations not met: 1 of the 2 needed of 3" in result.stderr
    assert "missing: harbour-cdc, harbour-peoples-hospital" in result.stderr

    report = json.loads(
        run("ledger", "verify", str(path), "--quiet", "--json", "--policy", str(policy)).stdout
    )
    assert report["ok"] is False and report["problem_count"] == 0
    assert report["quorum"]["cosigned"] == ["clinic"]


def test_verify_policy_passes_with_the_quorum(
    ledger_file: tuple[Path, LedgerBuilder], tmp_path: Path
) -> None:
    path, builder = ledger_file
    policy = write_policy(tmp_path / "alliance.yaml", builder.signer.verifier.encode())
    cosign_newest_checkpoint(path, [WITNESSES["clinic"], WITNESSES["hospital"]])
    result = run("ledger", "verify", str(path), "--quiet", "--policy", str(policy))
    assert result.exit_code == 0, result.output
    assert "OK: the newest checkpoint meets the trust policy's quorum." in result.stdout
    # A proof from the file carries the stored, cosigned checkpoint.
    out = tmp_path / "p.tlog-proof"
    assert run("ledger", "prove", "5", "--ledger", str(path), "-o", str(out)).exit_code == 0
    assert run("ledger", "check-proof", str(out), "--policy", str(policy)).exit_code == 0


def test_verify_policy_with_another_log_key_fails(
    ledger_file: tuple[Path, LedgerBuilder], tmp_path: Path
) -> None:
    path, _ = ledger_file
    from ledger.checkpoint import NoteSigner
    from ledger.keys import generate_key
    from tests.support.ledger_builder import ORIGIN

    policy = write_policy(tmp_path / "a.yaml", NoteSigner(ORIGIN, generate_key()).verifier.encode())
    cosign_newest_checkpoint(path, list(WITNESSES.values()))
    result = run("ledger", "verify", str(path), "--quiet", "--policy", str(policy))
    assert result.exit_code == 1 and "the log's signature does not verify" in result.stderr


def test_pilot_check_validates_a_policy(tmp_path: Path) -> None:
    policy = write_policy(
        tmp_path / "alliance.yaml", LedgerBuilder(tmp_path / "x.db").signer.verifier.encode()
    )
    result = run("pilot", "check", str(policy), "pilots/definitions/air-quality.yaml")
    assert result.exit_code == 0, result.output
    assert (
        f"ok       {policy}: trust policy (1 log, 3 witnesses, 4 groups, quorum " in result.stdout
    )
    broken = tmp_path / "broken.yaml"
    broken.write_text(policy.read_text().replace("threshold: 2", "threshold: 5"))
    result = run("pilot", "check", str(broken))
    line = broken.read_text().split("\n").index("    threshold: 5") + 1
    assert result.exit_code == 1
    assert (
        f"{broken}:{line}:16: groups[0].threshold: group two-organisations: threshold 5"
        in result.stderr
    )


def test_the_console_script_runs_check_proof(tmp_path: Path) -> None:
    # The real entry point (not CliRunner): the exit status a shell script sees.
    proc = subprocess.run(
        [
            SWIFTCHAIN,
            "ledger",
            "check-proof",
            str(tmp_path / "missing"),
            "--policy",
            str(tmp_path / "p"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2 and "Error:" in proc.stderr
