"""Hubs serving ledgers built directly (tests/support/ledger_builder.py) and mirrors
following them: in this process (an aiohttp app on a free port) or as a
``swiftchain mirror run`` subprocess (to kill -9 it)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ledger.keys import generate_key, load_private_key, write_key_pair
from ledger.suite import DEFAULT_SUITE, Suite
from mirror.config import init_mirror

from .broker import DIE_WITH_PARENT, free_port
from .hub import SWIFTCHAIN, ThreadHub, write_hub_config
from .ledger_builder import ORIGIN, LedgerBuilder

#: Bound on any wait for a mirror (catching up is a few seconds; this bounds a hang).
WAIT_S = 120.0


def build_hub_dir(
    directory: Path, records: int, ledger: str | None = None, suite: Suite = DEFAULT_SUITE
) -> LedgerBuilder:
    """A hub directory whose ledger (``ledger.db``, or the PostgreSQL database at the URL
    ``ledger``) of ``suite`` holds a registered source and ``records`` records with a
    checkpoint every 1000, signed with the hub's own ``hub.key``; the builder is returned
    closed (reopen one on the same ledger to append a different history)."""
    directory.mkdir(parents=True, exist_ok=True)
    write_key_pair(directory / "hub.key", suite=suite)
    builder = LedgerBuilder(
        ledger or directory / "ledger.db",
        hub_key=load_private_key(directory / "hub.key"),
        source_key=generate_key(suite),
    )
    builder.register_source()
    builder.append_records(records)
    if records == 0:
        builder.checkpoint()
    builder.close()
    return builder


@contextmanager
def built_hub(
    directory: Path, mqtt_url: str, port: int | None = None, **settings: Any
) -> Iterator[ThreadHub]:
    """A hub serving ``directory``'s ledger (or the one its ``ledger_url`` setting names);
    on ``port`` (to restart it where a mirror expects it) or a free one."""
    port = port or free_port()
    config = write_hub_config(
        directory, mqtt_url=mqtt_url, http_port=port, origin=ORIGIN, batch_max_ms=2, **settings
    )
    (directory / "keys").mkdir(exist_ok=True)
    hub = ThreadHub(config, f"http://127.0.0.1:{port}", mqtt_url, directory / "keys")
    hub.start()
    try:
        yield hub
    finally:
        hub.stop()


def get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            raw, status, ctype = resp.read(), resp.status, resp.headers.get_content_type()
    except urllib.error.HTTPError as exc:
        raw, status, ctype = exc.read(), exc.code, exc.headers.get_content_type()
    return status, (json.loads(raw) if ctype == "application/json" else raw.decode())


def wait_for(check: Callable[[], bool], what: str, timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not {what} after {timeout}s")
        time.sleep(0.05)


def make_mirror(directory: Path, hub: ThreadHub, name: str = "test.mirror/m1") -> Path:
    init_mirror(directory, hub.http_url, hub.log_key, name)
    return directory


class MirrorProcess:
    """``swiftchain mirror run --dir D`` as a child process on a free port."""

    def __init__(self, directory: Path, poll_s: float = 0.1) -> None:
        self.directory = directory
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.poll_s = poll_s
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = open(self.directory / "mirror.log", "ab")
        self.proc = subprocess.Popen(
            [
                SWIFTCHAIN,
                "mirror",
                "run",
                "--dir",
                str(self.directory),
                "--port",
                str(self.port),
                "--poll-s",
                str(self.poll_s),
                "--max-backoff-s",
                "1",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            preexec_fn=DIE_WITH_PARENT,
        )
        wait_for(self._answers, "listening")

    def _answers(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"mirror exited: {self.log_text()[-1500:]}")
        try:
            return get(self.url + "/healthz")[0] == 200
        except OSError:
            return False

    def status(self) -> dict[str, Any]:
        code, body = get(self.url + "/api/v1/mirror")
        assert code == 200, body
        assert isinstance(body, dict)
        return body

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(60)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)
            self.proc = None

    def log_text(self) -> str:
        return (self.directory / "mirror.log").read_text(errors="replace")


def restore(backup: Path, live: Path) -> None:
    """Put an old copy of a ledger file back in place (its WAL and shared memory gone)."""
    for suffix in ("-wal", "-shm"):
        Path(str(live) + suffix).unlink(missing_ok=True)
    shutil.copyfile(backup, live)
