"""A real Mosquitto on a free loopback port, for tests that must crash or restart a broker."""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


def _die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that has Linux kill the child when the test process dies (a killed
    or timed-out pytest must not leave brokers, hubs and agents running on a shared machine)."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def preexec() -> None:
        prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


#: Pass as ``preexec_fn`` to every ``subprocess.Popen`` a test starts.
DIE_WITH_PARENT = _die_with_parent()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


@dataclass
class Mosquitto:
    """One mosquitto process; ``stop``/``start`` keep the same port and persistence file."""

    workdir: Path
    port: int = field(default_factory=free_port)
    extra_config: str = ""
    config_text: str | None = None
    """A whole configuration to use instead of the default anonymous one."""
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        conf = self.workdir / "mosquitto.conf"
        # Run as root (CI, these machines), Mosquitto would drop to the `mosquitto` user, who
        # cannot read pytest's private temporary folders.
        as_user = "user root\n" if os.geteuid() == 0 else ""
        default = (
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "persistence true\n"
            f"persistence_location {self.workdir}/\n"
            "max_queued_messages 100000\n"
            "max_inflight_messages 1000\n"
            f"{self.extra_config}\n"
        )
        conf.write_text(as_user + (self.config_text or default))
        self.proc = subprocess.Popen(
            [binary, "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=open(self.workdir / "mosquitto.log", "ab"),
            preexec_fn=DIE_WITH_PARENT,
        )
        wait_for_port(self.port)

    def stop(self, kill: bool = False) -> None:
        if self.proc is None:
            return
        if kill:
            self.proc.kill()
        else:
            # SIGTERM makes Mosquitto write its persistence file first: on a loaded machine
            # that took over 10 s, so wait longer, then kill rather than fail the test's teardown.
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc.wait(timeout=30)
        self.proc = None
