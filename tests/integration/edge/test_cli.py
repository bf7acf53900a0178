"""`swiftchain edge` as a user runs it: stdin in, acks out, clean stop on SIGTERM, JSON logs
without health data, and `swiftchain edge status`."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from edge.outbox import Outbox
from ledger.checkpoint import NoteSigner
from ledger.keys import generate_key
from ledger.suite import SUITES, Suite
from tests.support.edge import SWIFTCHAIN, observation, write_edge_config

HUB_KEY = NoteSigner("test.hub/log", generate_key()).verifier.encode()


def stdin_agent(
    tmp_path: Path, broker_url: str, *command: str
) -> tuple[subprocess.Popen[bytes], Path]:
    """``command --config <edge.toml>``: an agent taking records on stdin, acks on stdout."""
    config = write_edge_config(
        tmp_path / "edge",
        pilot="hospital-a",
        source="ward-3",
        broker_url=broker_url,
        hub_key=HUB_KEY,
        stream={"enabled": True},
    )
    proc = subprocess.Popen(
        [*command, "--config", str(config)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    return proc, config


def test_stdin_records_are_acked_then_status_shows_them(tmp_path: Path, broker) -> None:
    proc, config = stdin_agent(tmp_path, broker.url, SWIFTCHAIN, "edge")
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write((json.dumps(observation("MRN-0042")) + "\n").encode())
    proc.stdin.write(b'{"not": "a record"}\n')
    proc.stdin.flush()
    ack = json.loads(proc.stdout.readline())
    assert ack["line"] == 1 and ack["seqs"] == [1]
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0
    lines = stderr.decode().splitlines()
    refused = [json.loads(x) for x in lines if '"error": "unknown_shape"' in x]
    assert refused and refused[0]["line"] == 2
    logs = [json.loads(x) for x in lines if '"event"' in x]
    assert {"agent.started", "mqtt.connected"} <= {entry["event"] for entry in logs}
    assert "MRN-0042" not in stderr.decode()

    status = subprocess.run(
        [SWIFTCHAIN, "edge", "status", "--config", str(config)], capture_output=True, text=True
    )
    assert status.returncode == 0, status.stderr
    assert "pending         1" in status.stdout
    as_json = subprocess.run(
        [SWIFTCHAIN, "edge", "status", "--config", str(config), "--json"],
        capture_output=True,
        text=True,
    )
    assert json.loads(as_json.stdout)["last_seq"] == 1


def test_python_m_edge_stops_cleanly_on_sigterm_without_the_cli(tmp_path: Path, broker) -> None:
    # The lean entry shares the process layer (uvloop, signals) with `swiftchain edge`,
    # and only that of the CLI's package.
    lean = subprocess.run(
        [sys.executable, "-c", "import sys, edge.__main__; print(sorted(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    )
    loaded = set(lean.stdout.strip().strip("[]").replace("'", "").split(", "))
    assert "runtime.process" in loaded
    assert not loaded & {"click", "gateway", "swiftchain.cli", "swiftchain.commands"}
    proc, _ = stdin_agent(tmp_path, broker.url, sys.executable, "-m", "edge")
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write((json.dumps(observation("MRN-0042")) + "\n").encode())
    proc.stdin.flush()
    assert json.loads(proc.stdout.readline())["seqs"] == [1]
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr.decode()[-2000:]
    assert "Traceback" not in stderr.decode()


def test_swiftchain_edge_loads_no_other_part() -> None:
    # The CLI's error messages name every package's errors without importing the packages.
    script = (
        "import sys, click, swiftchain.cli as c;"
        " c.cli.get_command(click.Context(c.cli), 'edge');"
        " print(sorted(sys.modules))"
    )
    found = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    loaded = {
        m.split(".")[0] for m in found.stdout.strip().strip("[]").replace("'", "").split(", ")
    }
    assert "edge" in loaded
    assert not loaded & {"gateway", "pilots", "simulators", "mirror", "witness", "fhir"}


def test_bad_config_is_one_clear_message(tmp_path: Path) -> None:
    config = tmp_path / "edge.toml"
    config.write_text('pilot = "x"\n')
    result = subprocess.run(
        [SWIFTCHAIN, "edge", "--config", str(config)], capture_output=True, text=True
    )
    assert result.returncode == 1
    assert "ConfigError" in result.stderr and "source" in result.stderr
    assert "Traceback" not in result.stderr
    missing = subprocess.run(
        [SWIFTCHAIN, "edge", "status", "--config", str(tmp_path / "nope.toml")],
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 1 and "no config file" in missing.stderr


@pytest.mark.parametrize(
    "order", [("--config", "{config}", "status"), ("status", "--config", "{config}")]
)
def test_status_takes_config_before_or_after_the_verb(
    tmp_path: Path, broker, order: tuple[str, ...]
) -> None:
    config = write_edge_config(
        tmp_path / "edge", pilot="hospital-a", source="ward-3", broker_url=broker.url
    )
    Outbox(config.parent / "outbox.db").close()
    args = [a.format(config=config) for a in order]
    # Run from a folder without an edge.toml: only the given file can be read.
    result = subprocess.run(
        [SWIFTCHAIN, "edge", *args, "--json"], capture_output=True, text=True, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["last_seq"] == 0


@pytest.mark.parametrize(
    "order", [("--config", "{config}", "run"), ("run", "--config", "{config}")]
)
def test_run_takes_config_before_or_after_the_verb(
    tmp_path: Path, broker, order: tuple[str, ...]
) -> None:
    config = write_edge_config(
        tmp_path / "edge",
        pilot="hospital-a",
        source="ward-3",
        broker_url=broker.url,
        hub_key=HUB_KEY,
        stream={"enabled": True},
    )
    args = [a.format(config=config) for a in order]
    proc = subprocess.Popen(
        [SWIFTCHAIN, "edge", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
    )
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write((json.dumps(observation("MRN-0042")) + "\n").encode())
    proc.stdin.flush()
    ack = proc.stdout.readline()
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert ack, stderr.decode()[-2000:]
    assert json.loads(ack)["seqs"] == [1]
    assert proc.returncode == 0


def test_two_different_configs_are_refused(tmp_path: Path) -> None:
    result = subprocess.run(
        [SWIFTCHAIN, "edge", "--config", "a.toml", "status", "--config", "b.toml"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "--config is given twice: a.toml and b.toml" in result.stderr


def test_an_agent_refuses_a_hub_of_another_suite_with_one_message(
    tmp_path: Path, suite: Suite
) -> None:
    other = next(s for s in SUITES.values() if s is not suite)
    config = write_edge_config(
        tmp_path / "edge",
        pilot="hospital-a",
        source="ward-3",
        broker_url="mqtt://127.0.0.1:9",
        hub_key=NoteSigner("test.hub/log", generate_key(other)).verifier.encode(),
        suite=suite,
    )
    done = subprocess.run(
        [SWIFTCHAIN, "edge", "run", "--config", str(config)], capture_output=True, timeout=60
    )
    assert done.returncode == 1
    err = done.stderr.decode()
    assert err.startswith("Error: ConfigError: the hub's log key ([hub] verifier_key)"), err
    assert f"of the {other.name} crypto suite" in err and "Traceback" not in err
