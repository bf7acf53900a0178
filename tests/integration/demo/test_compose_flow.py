"""The compose deployment's order of things, run here without Docker: register a scenario's
sources into a stopped hub's ledger (`replay --register-into`), generate Mosquitto's
accounts from that registry (`broker-config generate`), then replay through a broker that
admits only those accounts, every agent with its own derived password. And the alliance:
compose.yaml's own witness and policy scripts, run with their volumes as folders here, give
witnesses that serve and a trust policy under which a hub's quorum is met."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from gateway.registry.mosquitto import derive_password
from ledger.quorum import evaluate
from ledger.verify import verify_ledger
from pilots.trust import load_trust_policy
from simulators.build import build_scenario
from simulators.scenario import RecordEvent, write_scenario
from swiftchain.cli import cli
from tests.support.broker import Mosquitto, free_port
from tests.support.hub import ADMIN_TOKEN, ThreadHub, _handle, thread_hub

SWIFTCHAIN = str(Path(sys.executable).with_name("swiftchain"))
COMPOSE = Path(__file__).resolve().parents[3] / "compose.yaml"
WITNESSES = ("witness-hospital", "witness-cdc")
#: Bounds on a hang, not speed checks.
WAIT_S = 60.0

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


def _script(service: str) -> str:
    compose = yaml.safe_load(COMPOSE.read_text())
    command = compose["services"][service]["command"]
    assert command[:2] == ["sh", "-ec"], service
    return str(command[2])


def _local(script: str, mounts: dict[str, Path], names: dict[str, str] | None = None) -> str:
    """A compose script as it runs here: each volume's mount point a folder, `$$` as `$`,
    and (``names``) service URLs as loopback ones."""
    pattern = "|".join(re.escape(m) for m in mounts)
    script = re.sub(rf"(?<![\w.-])({pattern})(?=[/\s\"']|$)", lambda m: str(mounts[m[1]]), script)
    for old, new in (names or {}).items():
        script = script.replace(old, new)
    return script.replace("$$", "$")


def _sh(script: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{Path(SWIFTCHAIN).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(
        ["sh", "-ec", script], capture_output=True, text=True, timeout=120, env=env
    )
    assert done.returncode == 0, script + done.stdout + done.stderr
    return done


def test_the_alliance_scripts_give_witnesses_and_a_policy_the_hub_meets(
    tmp_path: Path, hub_broker: Mosquitto
) -> None:
    data, alliance = tmp_path / "data", tmp_path / "alliance"
    data.mkdir()
    alliance.mkdir()
    # init's part: the hub's key and its public verifier key on the alliance volume.
    init = [
        line
        for line in _script("init").splitlines()
        if "/data/hub.key ||" in line or "/alliance/hub.vkey" in line
    ]
    assert len(init) == 2, init
    _sh(_local("\n".join(init), {"/data": data, "/alliance": alliance}))

    ports = {name: free_port() for name in WITNESSES}
    urls = {f"http://{name}:7380": f"http://127.0.0.1:{ports[name]}" for name in WITNESSES}
    served: list[subprocess.Popen[bytes]] = []
    try:
        for name in WITNESSES:
            home = tmp_path / name
            home.mkdir()
            script = _local(_script(name), {"/witness": home, "/alliance": alliance})
            setup, serve = script.rsplit("\n", 2)[0], script.rstrip().rsplit("\n", 1)[1]
            assert serve.startswith("exec swiftchain witness serve"), serve
            _sh(setup)
            again = _sh(setup)  # a restart: the key kept, the log already witnessed
            assert "already witnessing" in again.stdout
            words = serve.split()[1:]
            words[words.index("--host") + 1] = "127.0.0.1"
            words[words.index("--port") + 1] = str(ports[name])
            served.append(
                subprocess.Popen(
                    [SWIFTCHAIN, *words[1:]],
                    stdout=(home / "witness.log").open("ab"),
                    stderr=subprocess.STDOUT,
                )
            )
        for name in WITNESSES:
            _healthy(f"http://127.0.0.1:{ports[name]}/healthz")
        _sh(_local(_script("alliance-policy"), {"/alliance": alliance}, urls))
        policy_path = alliance / "trust-policy.yaml"
        policy = load_trust_policy(policy_path)
        assert {w.operator for w in policy.witnesses} == {"harbour-peoples-hospital", "harbour-cdc"}
        with thread_hub(
            data,
            hub_broker.url,
            origin="swiftchain.compose/ledger",
            trust_policy=str(policy_path),
            witness_interval_s=0.05,
            witness_timeout_s=2,
        ) as hub:
            hub.register_source("air-quality", "aq-station-90", ["city.air-quality"])
            state = _until_quorum(hub)
            note = hub.get_text("/api/v1/ledger/checkpoint")
        assert state["quorum_met"], state
        assert [w["reachable"] for w in state["witnesses"]] == [True, True]
        assert evaluate(policy, note).ok
    finally:
        for proc in served:
            proc.kill()
            proc.wait(30)


def _healthy(url: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        assert time.monotonic() < deadline, f"{url} not serving within {WAIT_S} s"
        time.sleep(0.05)


def _until_quorum(hub: ThreadHub) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_S
    while True:
        status, body = hub.request("GET", "/readyz")
        witnesses = body.get("witnesses", {}) if status == 200 else {}
        if witnesses.get("quorum_met") or time.monotonic() > deadline:
            return dict(witnesses)
        time.sleep(0.05)
