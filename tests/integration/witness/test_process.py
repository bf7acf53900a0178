"""`swiftchain witness` as an operator runs it: init (key 0600), add-log (never re-keyed),
logs, serve; a kill -9 of the server and a restart keep every cosigned size."""

from __future__ import annotations

import base64
import json
import os
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp

from ledger.checkpoint import NoteSigner
from ledger.cosignature import CosignerVerifier, attach_cosignatures, verify_cosignatures
from ledger.keys import generate_key
from ledger.suite import Suite
from tests.support.broker import DIE_WITH_PARENT, free_port, wait_for_port
from tests.support.ledger_builder import ORIGIN
from witness.store import origin_sha256

from .conftest import HubLog

SWIFTCHAIN = str(Path(sys.executable).with_name("swiftchain"))


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SWIFTCHAIN, "witness", *args], capture_output=True, text=True, timeout=60
    )


@contextmanager
def serving(home: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        [SWIFTCHAIN, "witness", "serve", "--dir", str(home), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=DIE_WITH_PARENT,
    )
    try:
        wait_for_port(port, timeout=30)
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=30)


def test_the_commands(tmp_path: Path, hub_log: HubLog, suite: Suite) -> None:
    home = tmp_path / "w"
    made = run("init", "--dir", str(home), "--name", "witness.city.test/w1")
    assert made.returncode == 0, made.stderr
    vkey = made.stdout.split("verifier key: ")[1].strip()
    assert CosignerVerifier.parse(vkey).name == "witness.city.test/w1"
    # An Ed25519 key unless told otherwise, whatever the logs it will witness.
    assert CosignerVerifier.parse(vkey).suite.key_kind == "ed25519"
    assert stat.S_IMODE((home / "witness.key").stat().st_mode) == 0o600
    assert run("vkey", "--dir", str(home)).stdout.strip() == vkey

    again = run("init", "--dir", str(home), "--name", "x.test/w")
    assert again.returncode == 1 and "already a witness directory" in again.stderr

    log_vkey = hub_log.signer.verifier.encode()
    added = run("add-log", "--dir", str(home), log_vkey)
    assert added.returncode == 0 and f"witnessing {ORIGIN} ({suite.name} log" in added.stdout
    same = run("add-log", "--dir", str(home), log_vkey)
    assert same.returncode == 0 and "nothing changed" in same.stdout
    other = NoteSigner(ORIGIN, generate_key(suite)).verifier.encode()
    refused = run("add-log", "--dir", str(home), other)
    assert refused.returncode == 1 and "never replaces a log's key" in refused.stderr
    bad = run("add-log", "--dir", str(home), "not-a-vkey")
    assert bad.returncode == 1 and "not a log's verifier key" in bad.stderr
    cosigner = run("add-log", "--dir", str(home), vkey)
    assert cosigner.returncode == 1 and "not a log's verifier key" in cosigner.stderr

    listed = json.loads(run("logs", "--dir", str(home), "--json").stdout)
    assert listed == [
        {
            "origin": ORIGIN,
            "origin_sha256": origin_sha256(ORIGIN),
            "suite": suite.name,
            "keys": [log_vkey],
            "size": 0,
            "root": base64.b64encode(suite.tree.empty_root).decode(),
            "cosigned_at": None,
            "refused_inconsistent": 0,
        }
    ]
    text = run("logs", "--dir", str(home)).stdout
    assert f"{ORIGIN} ({suite.name}): never cosigned" in text and log_vkey in text
    if suite.name == "ed25519-sha256":
        assert listed[0]["root"] == "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="  # SHA-256()

    missing = run("serve", "--dir", str(tmp_path / "nowhere"))
    assert missing.returncode == 1 and "witness init" in missing.stderr
    os.chmod(home / "witness.key", 0o640)
    unsafe = run("serve", "--dir", str(home))
    assert unsafe.returncode == 1 and "chmod 600" in unsafe.stderr


async def test_kill_9_and_restart_keep_the_state(tmp_path: Path, hub_log: HubLog) -> None:
    home = tmp_path / "w"
    assert run("init", "--dir", str(home), "--name", "witness.city.test/w1").returncode == 0
    assert run("add-log", "--dir", str(home), hub_log.signer.verifier.encode()).returncode == 0
    vkey = CosignerVerifier.parse(run("vkey", "--dir", str(home)).stdout)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # A session per server life: a kept-alive connection dies with the killed process.
    async with aiohttp.ClientSession() as session:
        with serving(home, port) as proc:
            hub_log.grow(11)
            async with session.post(f"{url}/add-checkpoint", data=hub_log.request(0)) as r:
                assert r.status == 200
                first = await r.text()
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        assert verify_cosignatures(attach_cosignatures(hub_log.note, first), [vkey])

    async with aiohttp.ClientSession() as session:
        with serving(home, port) as proc:
            hub_log.grow(4)
            # The restarted witness still knows 12: a request from 0 is a 409 naming it.
            async with session.post(f"{url}/add-checkpoint", data=hub_log.request(0)) as r:
                assert (r.status, await r.text()) == (409, "12\n")
                assert r.headers["Content-Type"] == "text/x.tlog.size"
            async with session.get(f"{url}/{origin_sha256(ORIGIN)}/checkpoint") as r:
                assert r.status == 200
                latest = await r.text()
            assert latest.split("\n")[1] == "12" and latest.endswith(first)
            async with session.post(f"{url}/add-checkpoint", data=hub_log.request(12)) as r:
                assert r.status == 200
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
    listed = json.loads(run("logs", "--dir", str(home), "--json").stdout)
    assert listed[0]["size"] == 16


def test_init_makes_a_key_of_the_suite_asked_for(tmp_path: Path) -> None:
    for kind in ("sm2", "sm2-sm3", "ed25519", "ed25519-sha256"):
        home = tmp_path / kind
        made = run("init", "--dir", str(home), "--name", "witness.city.test/w1", "--suite", kind)
        assert made.returncode == 0, made.stderr
        vkey = CosignerVerifier.parse(made.stdout.split("verifier key: ")[1].strip())
        assert kind in (vkey.suite.name, vkey.suite.key_kind)
        assert CosignerVerifier.parse(run("vkey", "--dir", str(home)).stdout) == vkey
    bad = run("init", "--dir", str(tmp_path / "x"), "--name", "w.test/w", "--suite", "rsa")
    assert bad.returncode == 2 and "'rsa' is not a crypto suite" in bad.stderr
    assert not (tmp_path / "x").exists()
