"""Step 1 of docs/hospital-integration.md, as written: ``swiftchain clients add ... --jwks
jwks.json`` in a plain folder. It printed success and wrote a stray ``ledger.db.access``
there, which no running hub reads. Now it refuses, saying which of --config or --url to
give; with --url the running hub knows the client at once."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.support.access import HOSPITAL, HospitalClient
from tests.support.hub import ADMIN_TOKEN, SWIFTCHAIN, ThreadHub


def swiftchain(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWIFTCHAIN_")}
    return subprocess.run(
        [SWIFTCHAIN, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


def test_clients_add_without_a_hub_refuses_and_writes_nothing(
    tmp_path: Path, access_hub: ThreadHub
) -> None:
    folder = tmp_path / "plain"
    folder.mkdir()
    client = HospitalClient(access_hub, "cli-ehr", HOSPITAL)
    (folder / "jwks.json").write_text(json.dumps(client.jwks()))
    step1 = ["clients", "add", "--client-id", "cli-ehr", "--org", HOSPITAL]
    step1 += ["--pilot", "chronic-care", "--jwks", "jwks.json"]

    refused = swiftchain(folder, *step1)
    assert refused.returncode == 1, refused
    assert "--url" in refused.stderr and "--config" in refused.stderr
    assert "may ask for" not in refused.stdout
    assert sorted(p.name for p in folder.iterdir()) == ["jwks.json"]
    assert swiftchain(folder, *step1, "--url", access_hub.http_url).returncode == 1

    done = swiftchain(folder, *step1, "--url", access_hub.http_url, "--token", ADMIN_TOKEN)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["jwks.json"]
    status, body = client.token_request()
    assert status == 200, body
