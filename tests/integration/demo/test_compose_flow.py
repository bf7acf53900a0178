"""The compose deployment's order of things, run here without Docker: register a scenario's
sources into a stopped hub's ledger (`replay --register-into`), generate Mosquitto's
accounts from that registry (`broker-config generate`), then replay through a broker that
admits only those accounts, every agent with its own derived password."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from gateway.registry.mosquitto import derive_password
from ledger.verify import verify_ledger
from simulators.build import build_scenario
from simulators.scenario import RecordEvent, write_scenario
from swiftchain.cli import cli
from tests.support.broker import Mosquitto, free_port
from tests.support.hub import ADMIN_TOKEN, ThreadHub, _handle

SWIFTCHAIN = str(Path(sys.executable).with_name("swiftchain"))

pytestmark = pytest.mark.skipif(
    shutil.which("mosquitto") is None and not Path("/usr/sbin/mosquitto").exists(),
    reason="needs the mosquitto binary",
)


def swiftchain(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_registered_offline_then_replayed_through_per_source_accounts(tmp_path: Path) -> None:
    scenario = build_scenario(seed=3, hours=2, scale="small")
    path = tmp_path / "scenario.ndjson"
    write_scenario(path, scenario)
    secret_file = tmp_path / "broker.secret"
    swiftchain("broker-config", "secret", str(secret_file))
    secret = bytes.fromhex(secret_file.read_text().strip())

    port = free_port()
    broker = Mosquitto(tmp_path / "mosquitto", port=port)
    broker.workdir.mkdir()
    hub: ThreadHub = _handle(
        ThreadHub,
        tmp_path / "hub",
        broker.url,
        batch_max_ms=2,
        mqtt_username="hub",
        mqtt_password=derive_password(secret, "hub"),
    )
    work = tmp_path / "replay"
    told = swiftchain(
        "replay", str(path), "--workdir", str(work), "--register-into", str(hub.config_path)
    )
    assert "registered" in told
    swiftchain(
        *("broker-config", "generate", "--config", str(hub.config_path)),
        *("--secret-file", str(secret_file), "--out", str(broker.workdir / "conf")),
        *("--bind", "127.0.0.1", "--port", str(port)),
        *("--persistence", str(broker.workdir / "data")),
    )
    (broker.workdir / "data").mkdir()
    broker.config_text = (broker.workdir / "conf" / "mosquitto.conf").read_text()
    broker.start()
    try:
        hub.start()
        result = subprocess.run(
            [
                *(SWIFTCHAIN, "replay", str(path), "--quiet", "--workdir", str(work)),
                *("--hub", hub.http_url, "--broker", broker.url, "--admin-token", ADMIN_TOKEN),
                *("--broker-secret-file", str(secret_file)),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stdout + result.stderr
    finally:
        hub.stop()
        broker.stop()
    records = sum(isinstance(e, RecordEvent) for e in scenario.events)
    report = verify_ledger(hub.db_path)
    assert report.ok and report.records == records
