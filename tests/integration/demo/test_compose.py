"""compose.yaml without a Docker engine: its services, volumes and images are what the
deployment needs, and every `swiftchain` command in it names real verbs and options
(each one's --help runs through click)."""

from __future__ import annotations

import importlib
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from click.testing import CliRunner

from swiftchain.cli import cli

ROOT = Path(__file__).resolve().parents[3]
COMPOSE = ROOT / "compose.yaml"
AGENTS = ("agent-air", "agent-traffic", "agent-home-bp")
#: The witnesses and the member organisation that runs each.
WITNESSES = {"witness-hospital": "harbour-peoples-hospital", "witness-cdc": "harbour-cdc"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    value = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(value, dict)
    return value


def _command_lines(service: dict[str, Any]) -> list[list[str]]:
    """Every `swiftchain ...` invocation of a service, as argument lists."""
    command = service.get("command")
    if command is None:
        return []
    if isinstance(command, str):
        command = shlex.split(command)
    if command[0] == "swiftchain":
        return [list(command)]
    if command[:2] == ["sh", "-ec"]:
        found = []
        for line in command[2].splitlines():
            for match in re.finditer(r"swiftchain(?: [^|;)&>]+)?", line):
                if match.start() > 0 and line[match.start() - 1] not in " ($":
                    continue  # part of a path or a word, not a command
                words = shlex.split(match.group(0).replace("$$", "$"))
                if len(words) > 1 and not words[1].startswith(("/", "$")):
                    found.append(words)
        return found
    return []


def _resolve(words: list[str]) -> tuple[list[str], click.Command]:
    """The verb path of ``words`` (after `swiftchain`), checking every option on the way."""
    command: click.Command = cli
    path: list[str] = []
    args = words[1:]
    i = 0
    ctx = click.Context(cli)
    while i < len(args):
        word = args[i]
        if word.startswith("--"):
            name = word.split("=", 1)[0]
            option = next((p for p in command.params if name in p.opts), None)
            assert option is not None, f"`swiftchain {' '.join(path)}` has no option {name}"
            takes_value = isinstance(option, click.Option) and not option.is_flag
            i += 2 if takes_value and "=" not in word else 1
            continue
        if isinstance(command, click.Group):
            sub = command.get_command(ctx, word)
            assert sub is not None, f"`swiftchain {' '.join(path)}` has no verb {word!r}"
            command = sub
            path.append(word)
        i += 1
    return path, command


def test_services_and_images(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"init", "mosquitto", "hub", "replayer", *AGENTS} <= set(services)
    assert services["mosquitto"]["image"].startswith("eclipse-mosquitto")
    for name in ("init", "hub", "replayer", *AGENTS):
        assert services[name]["build"] == "."
    init_done = {"condition": "service_completed_successfully"}
    assert services["mosquitto"]["depends_on"]["init"] == init_done
    assert services["hub"]["ports"] == ["127.0.0.1:8080:8080"]
    for name in (*AGENTS, "replayer"):
        assert services[name]["depends_on"]["hub"] == {"condition": "service_healthy"}


def test_every_database_has_a_named_volume(compose: dict[str, Any]) -> None:
    declared = set(compose["volumes"])
    used: dict[str, set[str]] = {}
    for name, service in compose["services"].items():
        for mount in service.get("volumes", []):
            volume, target = mount.split(":")[:2]
            assert volume in declared, f"{name} mounts undeclared volume {volume}"
            used.setdefault(name, set()).add(target)
    assert declared == {
        m.split(":")[0] for s in compose["services"].values() for m in s.get("volumes", [])
    }
    assert "/data" in used["hub"]  # ledger.db, its access and dead-letter files
    assert "/mosquitto/data" in used["mosquitto"]
    for agent in AGENTS:
        assert "/outbox" in used[agent]  # each agent's own outbox database
    for witness in WITNESSES:
        assert "/witness" in used[witness]  # each witness's own key and state
    mounts = {
        m.split(":")[0]
        for w in WITNESSES
        for m in compose["services"][w]["volumes"]
        if m.split(":")[1] == "/witness"
    }
    assert len(mounts) == len(WITNESSES), "two witnesses share a state volume"
    assert "/replay" in used["replayer"]  # the replayer's outboxes


def test_every_swiftchain_command_is_real(compose: dict[str, Any]) -> None:
    seen = set()
    for service in compose["services"].values():
        for words in _command_lines(service):
            path, _ = _resolve(words)
            seen.add(" ".join(path))
            result = CliRunner().invoke(cli, [*path, "--help"])
            assert result.exit_code == 0, (path, result.output)
    assert {
        "hub",
        "edge run",
        "replay",
        "simulate",
        "keys new",
        "registry source add",
        "broker-config secret",
        "broker-config generate",
        "broker-config password",
        "witness init",
        "witness add-log",
        "witness vkey",
        "witness serve",
    } <= seen


def test_the_witnesses_and_the_trust_policy(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, operator in WITNESSES.items():
        witness = services[name]
        assert witness["build"] == "."
        assert witness["depends_on"]["init"] == {"condition": "service_completed_successfully"}
        script = witness["command"][2]
        # A key made on first start only (init refuses a witness directory anyway), then the
        # hub's log witnessed by its verifier key, then served.
        assert "test -f /witness/witness.key || swiftchain witness init" in script
        assert f"--name witness.{operator}.example/w1" in script
        assert script.index("witness add-log") < script.index("exec swiftchain witness serve")
        assert "/alliance/hub.vkey" in script
        assert "/healthz" in " ".join(witness["healthcheck"]["test"])
    policy = services["alliance-policy"]
    assert policy["restart"] == "no"
    for name in WITNESSES:
        assert policy["depends_on"][name] == {"condition": "service_healthy"}
    script = policy["command"][2]
    for name, operator in WITNESSES.items():
        assert f"operator: {operator}" in script and f"url: http://{name}:7380" in script
    assert "quorum: two-organisations" in script
    hub = services["hub"]
    assert hub["depends_on"]["alliance-policy"] == {"condition": "service_completed_successfully"}
    assert "alliance:/alliance:ro" in hub["volumes"]
    init = services["init"]["command"][2]
    assert 'trust_policy = "/alliance/trust-policy.yaml"' in init
    assert "cp /data/hub.vkey /alliance/hub.vkey" in init


def test_a_members_mirror_follows_the_hub_with_its_key_pinned(compose: dict[str, Any]) -> None:
    mirror = compose["services"]["mirror"]
    assert mirror["depends_on"]["hub"] == {"condition": "service_healthy"}
    assert (
        "alliance:/alliance:ro" in mirror["volumes"] and "mirror-data:/mirror" in mirror["volumes"]
    )
    script = mirror["command"][2]
    # Made once (init refuses a mirror directory anyway), the hub's key from the alliance
    # volume, then followed and served.
    assert "test -f /mirror/mirror.key || swiftchain mirror init" in script
    assert "--log-key /alliance/hub.vkey" in script and "--hub http://hub:8080" in script
    assert script.index("mirror init") < script.index("exec swiftchain mirror run")
    assert "/healthz" in " ".join(mirror["healthcheck"]["test"])
    assert "mirror-data" in compose["volumes"]


def test_broker_accounts_come_from_the_registry(compose: dict[str, Any]) -> None:
    script = compose["services"]["init"]["command"][2]
    generate = script.index("swiftchain broker-config generate")
    assert script.index("swiftchain replay") < generate  # the scenario's sources first
    assert script.rindex("swiftchain registry") < generate
    assert "--broker-secret-file" in compose["services"]["replayer"]["command"]


def test_dockerfile_builds_the_package() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert text.startswith("#") and "FROM python:3.11-slim" in text
    assert "pip install ." in text
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".venv" in ignored and ".git" in ignored
    # Every package the distribution includes is copied in (a new one was once left out).
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"
    ]["find"]["include"]
    copied = set(re.findall(r"(?m)^COPY (\w+) \1$", text))
    assert {name.rstrip("*") for name in packages} <= copied


def test_every_python_import_in_it_resolves() -> None:
    # `python -c "from X import Y"` lines are checked by no type checker: a module moved in
    # the code once left compose.yaml importing a path that no longer existed.
    imports = re.findall(r"from ([\w.]+) import (\w+)", COMPOSE.read_text())
    assert imports
    for module, name in imports:
        assert hasattr(importlib.import_module(module), name), f"{module}.{name}"
