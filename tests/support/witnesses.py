"""Witnesses as separate processes (`swiftchain witness serve`) on free loopback ports, and the
trust policy file a hub or an agent reads them from."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ledger.suite import DEFAULT_SUITE, Suite
from tests.support.broker import DIE_WITH_PARENT, free_port

if TYPE_CHECKING:
    from tests.support.hub import ThreadHub

SWIFTCHAIN = str(Path(sys.executable).with_name("swiftchain"))
STARTUP_S = 30.0


def _cli(*args: str) -> str:
    done = subprocess.run([SWIFTCHAIN, *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@dataclass
class WitnessProcess:
    """One witness: its state directory, name, verifier key, port and process."""

    directory: Path
    name: str
    operator: str
    port: int = field(default_factory=free_port)
    vkey: str = ""
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def init(self, log_vkey: str, origin: str, key_suite: Suite = DEFAULT_SUITE) -> None:
        """``witness init`` (a key of ``key_suite``'s kind), ``vkey``, ``add-log``."""
        _cli(
            *("witness", "init", "--dir", str(self.directory), "--name", self.name),
            *("--suite", key_suite.key_kind),
        )
        self.vkey = _cli("witness", "vkey", "--dir", str(self.directory)).strip()
        _cli("witness", "add-log", "--dir", str(self.directory), log_vkey, "--origin", origin)

    def start(self) -> None:
        log = open(self.directory / "witness.log", "ab")
        self.proc = subprocess.Popen(
            [
                *(SWIFTCHAIN, "witness", "serve", "--dir", str(self.directory)),
                *("--port", str(self.port), "--log-level", "WARNING"),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=DIE_WITH_PARENT,
        )
        deadline = time.monotonic() + STARTUP_S
        while True:
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError((self.directory / "witness.log").read_text(errors="replace"))
            if time.monotonic() > deadline:
                raise TimeoutError(f"witness {self.name} not serving after {STARTUP_S}s")
            time.sleep(0.05)

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(30)
            self.proc = None


def write_policy(
    path: Path, log_vkey: str, witnesses: list[WitnessProcess], quorum: int, *, urls: bool = True
) -> Path:
    """A tlog-policy text file: the log, each witness (with its URL for a hub), ``quorum`` of
    them."""
    lines = [f"log {log_vkey}"]
    for w in witnesses:
        lines.append(f"witness {w.name} {w.vkey}" + (f" {w.url}" if urls else ""))
    lines.append(f"group alliance {quorum} " + " ".join(w.name for w in witnesses))
    lines.append("quorum alliance")
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass
class Alliance:
    """A hub whose trust policy names three witnesses of three members (each its own
    process), and the policy files: the hub's (with URLs) and an agent's (without)."""

    hub: ThreadHub
    witnesses: list[WitnessProcess]
    log_vkey: str
    hub_policy: Path
    agent_policy: Path


@contextmanager
def alliance_hub(
    tmp_path: Path,
    mqtt_url: str,
    origin: str,
    *,
    quorum: int = 2,
    suite: Suite = DEFAULT_SUITE,
    witness_suites: tuple[Suite, ...] | None = None,
) -> Iterator[Alliance]:
    """Three witnesses started, then a hub submitting its checkpoints to them (rounds every
    0.05 s); everything stopped on exit. The hub's key (and so its log) is of ``suite``; the
    witnesses' keys of ``witness_suites`` (one each; default the log's)."""
    from ledger.checkpoint import NoteSigner
    from ledger.keys import load_private_key, write_key_pair
    from ledger.store import LedgerWriter
    from tests.support.hub import thread_hub

    hub_dir = tmp_path / "hub"
    hub_dir.mkdir()
    write_key_pair(hub_dir / "hub.key", suite=suite)
    if suite is not DEFAULT_SUITE:
        # The log is made of the key's suite before the hub opens it, so that what the
        # witnesses are tested on does not hang on how a hub creates its log.
        LedgerWriter(hub_dir / "ledger.db", origin=origin, suite=suite).close()
    log_vkey = NoteSigner(origin, load_private_key(hub_dir / "hub.key")).verifier.encode()
    witnesses = [
        WitnessProcess(tmp_path / f"w{i}", f"witness.member{i}.example/w", f"member-{i}")
        for i in range(3)
    ]
    try:
        for w, key_suite in zip(witnesses, witness_suites or (suite,) * 3, strict=True):
            w.init(log_vkey, origin, key_suite)
            w.start()
        hub_policy = write_policy(tmp_path / "policy.txt", log_vkey, witnesses, quorum)
        agent_policy = write_policy(
            tmp_path / "agent-policy.txt", log_vkey, witnesses, quorum, urls=False
        )
        with thread_hub(
            hub_dir,
            mqtt_url,
            origin=origin,
            batch_max_ms=2,
            trust_policy=str(hub_policy),
            witness_interval_s=0.05,
            witness_timeout_s=2,
        ) as hub:
            yield Alliance(hub, witnesses, log_vkey, hub_policy, agent_policy)
    finally:
        for w in witnesses:
            w.kill()


#: An alliance's rounds are quick in tests; every wait of :func:`until` is bounded by this.
WAIT_S = 60.0


def until(what: str, probe: Callable[[], Any]) -> Any:
    """``probe()``'s first truthy answer, polled every 50 ms for at most WAIT_S."""
    deadline = time.monotonic() + WAIT_S
    while True:
        got = probe()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {WAIT_S} s: {what}")
        time.sleep(0.05)
