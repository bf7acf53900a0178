"""`swiftchain demo --once` as a newcomer runs it: a real broker (Mosquitto with per-source
accounts, or the embedded amqtt), the hub, one agent per source, two witnesses run by two
member organisations, the story checked, exit 0 only if every step held, and a ledger that
verifies from the file alone, whose whole size both witnesses cosigned and whose rewrite
each refused."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ledger.keys import Sm2PrivateKey, load_private_key
from ledger.quorum import evaluate
from ledger.store import LedgerReader
from ledger.suite import SM2_SM3
from ledger.verify import verify_ledger
from pilots.trust import load_trust_policy

SWIFTCHAIN = str(Path(sys.executable).with_name("swiftchain"))
#: A small city for a few hours: every story step, well under the 90 s budget.
SMALL = ["--scale", "small", "--hours", "8"]
WITNESSES = {
    "harbour-peoples-hospital": "witness.harbour-peoples-hospital.example/w1",
    "harbour-cdc": "witness.harbour-cdc.example/w1",
}


def run_demo(
    workdir: Path, broker: str, *extra: str, timeout: float = 85
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            *(SWIFTCHAIN, "demo", "--once", "--port", "0"),
            *("--workdir", str(workdir), "--broker", broker, *SMALL, *extra),
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "160"},
    )


def check(result: subprocess.CompletedProcess[str], workdir: Path) -> None:
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "Traceback" not in out + result.stderr
    assert "story steps as expected" in out
    for told in (
        "withdrawn consent",
        "tampering caught at index",
        "all verified",
        "cosignature verifies",  # the member's mirror holds, proves and cosigns the log
    ):
        assert told in out, told
    assert "VERIFIED" in out and "NOT VERIFIED" not in out
    report = verify_ledger(workdir / "hub" / "ledger.db")
    assert report.ok and report.records > 0 and report.erased > 0
    tampered = verify_ledger(workdir / "tampered-copy.db")
    assert not tampered.ok and tampered.first_bad_index is not None
    check_alliance(out, workdir, report.size)


def check_alliance(out: str, workdir: Path, log_size: int) -> None:
    """Both witnesses named and cosigning, the quorum met with its sizes; each witness's own
    state: the whole log cosigned, and the rewrite kept as a refused, inconsistent checkpoint."""
    for operator, name in WITNESSES.items():
        assert f"✔ cosigned {name}, run by {operator}, at http://127.0.0.1:" in out, name
    assert f"Quorum met: 2 of 2 witnesses cosigned size {log_size:,} (log size {log_size:,})" in out
    for operator, name in WITNESSES.items():
        listed = subprocess.run(
            [
                SWIFTCHAIN,
                "witness",
                "logs",
                "--json",
                "--dir",
                str(workdir / "witnesses" / operator),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert listed.returncode == 0, listed.stderr
        (log,) = json.loads(listed.stdout)
        assert log["origin"] == "demo.swiftchain.local/ledger"
        assert log["size"] == log_size, name
        assert log["refused_inconsistent"] == 1, name  # the operator's rewrite, as evidence
    policy = load_trust_policy(workdir / "trust-policy.yaml")
    assert {w.name: w.operator for w in policy.witnesses} == {n: o for o, n in WITNESSES.items()}
    assert policy.quorum == "two-organisations"
    # The newest checkpoint the quorum cosigned, as the hub keeps it for its receipts.
    with LedgerReader(workdir / "hub" / "ledger.db") as reader:
        note = reader.meta("quorum_checkpoint")
    assert note is not None
    quorum = evaluate(policy, note)
    assert quorum.ok and quorum.size == log_size and set(quorum.cosigned) == set(WITNESSES.values())


@pytest.mark.skipif(
    shutil.which("mosquitto") is None and not os.access("/usr/sbin/mosquitto", os.X_OK),
    reason="needs the mosquitto binary",
)
def test_demo_once_with_mosquitto(tmp_path: Path) -> None:
    result = run_demo(tmp_path / "demo", "mosquitto")
    check(result, tmp_path / "demo")
    assert "Mosquitto at mqtt://127.0.0.1:" in result.stdout
    acl = (tmp_path / "demo" / "mosquitto" / "acl").read_text()
    assert "user air-quality.aq-station-01" in acl
    assert "topic write swiftchain/v1/air-quality/aq-station-01/records" in acl


def test_demo_once_with_embedded_broker(tmp_path: Path) -> None:
    result = run_demo(tmp_path / "demo", "embedded")
    check(result, tmp_path / "demo")
    assert "embedded amqtt broker" in result.stdout


def test_demo_once_on_the_national_suite(tmp_path: Path) -> None:
    """``--suite sm2-sm3``: the whole story on SM2 and SM3, every key of the run SM2."""
    broker = (
        "mosquitto"
        if shutil.which("mosquitto") or os.access("/usr/sbin/mosquitto", os.X_OK)
        else "embedded"
    )
    workdir = tmp_path / "demo"
    # SM2 signs and verifies at a fraction of Ed25519's rate: a longer bound.
    result = run_demo(workdir, broker, "--suite", "sm2-sm3", timeout=240)
    check(result, workdir)
    assert "Crypto suite: sm2-sm3" in result.stdout
    with LedgerReader(workdir / "hub" / "ledger.db") as reader:
        assert reader.suite is SM2_SM3
    assert verify_ledger(workdir / "hub" / "ledger.db").suite == "sm2-sm3"
    keys = [
        p
        for p in workdir.rglob("*")
        if p.is_file() and p.read_bytes().startswith(b"-----BEGIN PRIVATE KEY")
    ]
    assert keys, "the run's private keys"
    for path in keys:
        assert isinstance(load_private_key(path), Sm2PrivateKey), path
    # The alliance's trust policy: the log's key and every witness's are SM2 keys.
    policy = load_trust_policy(workdir / "trust-policy.yaml")
    assert [log.verifier.suite for log in policy.logs] == [SM2_SM3]
    assert {w.key.suite for w in policy.witnesses} == {SM2_SM3}
