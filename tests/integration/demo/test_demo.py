"""`swiftchain demo --once` as a newcomer runs it: a real broker (Mosquitto with per-source
accounts, or the embedded amqtt), the hub, one agent per source, the story checked, exit 0
only if every step held, and a ledger that verifies from the file alone."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ledger.verify import verify_ledger

SWIFTCHAIN = str(Path(sys.executable).with_name("swiftchain"))
#: A small city for a few hours: every story step, well under the 90 s budget.
SMALL = ["--scale", "small", "--hours", "8"]


def run_demo(workdir: Path, broker: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            *(SWIFTCHAIN, "demo", "--once", "--port", "0"),
            *("--workdir", str(workdir), "--broker", broker, *SMALL),
        ],
        capture_output=True,
        text=True,
        timeout=85,
        env={**os.environ, "COLUMNS": "160"},
    )


def check(result: subprocess.CompletedProcess[str], workdir: Path) -> None:
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "Traceback" not in out + result.stderr
    assert "story steps as expected" in out
    for told in ("withdrawn consent", "tampering caught at index", "all verified"):
        assert told in out, told
    assert "VERIFIED" in out and "NOT VERIFIED" not in out
    report = verify_ledger(workdir / "hub" / "ledger.db")
    assert report.ok and report.records > 0 and report.erased > 0
    tampered = verify_ledger(workdir / "tampered-copy.db")
    assert not tampered.ok and tampered.first_bad_index is not None


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
