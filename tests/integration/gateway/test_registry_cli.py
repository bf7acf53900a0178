"""`swiftchain registry` as an operator runs it: straight on the ledger file while no hub
runs, refused (with what to do) while one does, or through the running hub's admin API."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from ledger.keys import write_key_pair
from ledger.verify import verify_ledger
from tests.support.broker import Mosquitto
from tests.support.hub import ADMIN_TOKEN, SWIFTCHAIN, thread_hub


def swiftchain(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SWIFTCHAIN, *args], capture_output=True, text=True, timeout=60)


def test_registry_cli_offline_locked_and_remote(tmp_path: Path, hub_broker: Mosquitto) -> None:
    write_key_pair(tmp_path / "st1.key")
    write_key_pair(tmp_path / "st1-new.key")
    with thread_hub(tmp_path / "hub", hub_broker.url) as hub:
        config = str(hub.config_path)
        # While the hub runs, the file is its alone.
        busy = swiftchain("registry", "--config", config, "org", "add", "city")
        assert busy.returncode == 1
        assert "HubRunningError" in busy.stderr and "--url" in busy.stderr
        remote = ["registry", "--url", hub.http_url, "--token", ADMIN_TOKEN]
        assert swiftchain(*remote, "org", "add", "city", "--name", "City").returncode == 0
        added = swiftchain(
            *remote,
            "source",
            "add",
            "city-air",
            "st1",
            "--org",
            "city",
            "--key-file",
            str(tmp_path / "st1.key.pub"),
            "--types",
            "city.air-quality,city.noise",
        )
        assert added.returncode == 0, added.stderr
        assert "key.add city-air st1" in added.stdout
        refused = swiftchain(*remote, "org", "add", "city")
        assert refused.returncode == 1 and "already registered" in refused.stderr
        assert hub.get_json("/api/v1/registry/sources")["sources"][0]["types"] == [
            "city.air-quality",
            "city.noise",
        ]

    # Hub stopped: changes go straight into the file, under the writer lock.
    rotated = swiftchain(
        "registry",
        "--config",
        config,
        "key",
        "rotate",
        "city-air",
        "st1",
        "--key-file",
        str(tmp_path / "st1-new.key"),
    )
    assert rotated.returncode == 0, rotated.stderr
    listed = json.loads(swiftchain("registry", "--config", config, "list", "--json").stdout)
    assert [k["revoked_at"] is None for k in listed["keys"]] == [False, True]
    assert verify_ledger(hub.db_path).ok
    hub.start()
    try:
        assert len(hub.get_json("/api/v1/registry/keys")["keys"]) == 2
    finally:
        hub.stop()
