"""`swiftchain broker-config`: from a registry on the log to a Mosquitto that enforces it."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import aiomqtt
from click.testing import CliRunner

from gateway.registry.mosquitto import derive_password
from swiftchain.cli import cli
from tests.support.broker import Mosquitto, free_port
from tests.support.hub import write_hub_config


def run(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def password_of(secret: Path, pilot: str, source: str) -> tuple[str, str]:
    out = run(
        "broker-config",
        "password",
        "--secret-file",
        str(secret),
        "--pilot",
        pilot,
        "--source",
        source,
    )
    fields = dict(line.split(": ", 1) for line in out.strip().splitlines())
    return fields["username"], fields["password"]


async def test_generated_config_runs_on_mosquitto_and_fences_each_source(tmp_path: Path) -> None:
    config = write_hub_config(tmp_path / "hub", mqtt_url="mqtt://127.0.0.1:1")
    for n in ("01", "02"):
        run("keys", "new", str(tmp_path / f"s{n}.key"))
    run("registry", "--config", str(config), "org", "add", "city-env-bureau")
    for n in ("01", "02"):
        run(
            "registry", "--config", str(config), "source", "add", "air-quality",
            f"aq-station-{n}", "--org", "city-env-bureau",
            "--key-file", str(tmp_path / f"s{n}.key.pub"), "--types", "city.air-quality",
        )  # fmt: skip
    secret = tmp_path / "broker.secret"
    run("broker-config", "secret", str(secret))
    assert stat.S_IMODE(os.stat(secret).st_mode) == 0o600
    out_dir = tmp_path / "mosquitto"
    port = free_port()
    run(
        "broker-config", "generate", "--config", str(config), "--secret-file", str(secret),
        "--out", str(out_dir), "--port", str(port), "--bind", "127.0.0.1",
        "--persistence", str(tmp_path / "data"),
    )  # fmt: skip
    assert stat.S_IMODE(os.stat(out_dir / "passwd").st_mode) == 0o600
    assert "aq-station-02" in (out_dir / "acl").read_text()

    broker = Mosquitto(tmp_path, port=port, config_text=(out_dir / "mosquitto.conf").read_text())
    broker.start()
    try:
        # The hub's own password is derived like every source's.
        hub_user, hub_pw = "hub", derive_password(bytes.fromhex(secret.read_text().strip()), "hub")
        s1_user, s1_pw = password_of(secret, "air-quality", "aq-station-01")
        async with aiomqtt.Client("127.0.0.1", port, username=hub_user, password=hub_pw) as hub:
            await hub.subscribe("swiftchain/v1/+/+/records", qos=1)
            async with aiomqtt.Client("127.0.0.1", port, username=s1_user, password=s1_pw) as s1:
                await s1.publish("swiftchain/v1/air-quality/aq-station-01/records", b"ok", qos=1)
                await s1.publish("swiftchain/v1/air-quality/aq-station-02/records", b"no", qos=1)
            got = []
            try:
                async with asyncio.timeout(1.5):
                    async for m in hub.messages:
                        got.append(str(m.topic))
            except TimeoutError:
                pass
        assert got == ["swiftchain/v1/air-quality/aq-station-01/records"]
    finally:
        broker.stop()


def test_a_bad_secret_file_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "secret"
    bad.write_text("not hex")
    result = CliRunner().invoke(
        cli,
        ["broker-config", "password", "--secret-file", str(bad), "--pilot", "p", "--source", "s"],
    )
    assert result.exit_code == 1
    assert "is not a hex broker secret" in result.output
