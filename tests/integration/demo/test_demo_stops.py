"""`swiftchain demo` stopped every way a user or a supervisor stops it (SIGTERM, Ctrl-C's
SIGINT, SIGKILL): its Mosquitto and its two witnesses go with it, and no process of the run
survives."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

SWIFTCHAIN = str(Path(sys.executable).with_name("swiftchain"))
#: Bounds on a hang (a busy machine is slow to start Python), not speed checks.
START_S, STOP_S = 120.0, 60.0

pytestmark = pytest.mark.skipif(
    shutil.which("mosquitto") is None and not os.access("/usr/sbin/mosquitto", os.X_OK),
    reason="needs the mosquitto binary",
)


def processes_of(workdir: Path) -> dict[int, str]:
    """Live processes (not zombies) whose command line names the demo's folder."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue  # gone meanwhile
        if str(workdir) in cmdline and state != "Z":
            found[int(entry.name)] = cmdline
    return found


def wait_until(condition: object, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"{what}: not within {within}s"
        time.sleep(0.1)


@pytest.mark.parametrize(
    "how", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL], ids=lambda s: s.name
)
def test_the_demo_takes_its_children_down(tmp_path: Path, how: signal.Signals) -> None:
    workdir = tmp_path / "demo"
    demo = subprocess.Popen(
        [
            *(SWIFTCHAIN, "demo", "--port", "0", "--workdir", str(workdir)),
            *("--broker", "mosquitto", "--scale", "small", "--hours", "8"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "COLUMNS": "160"},
    )
    try:

        def children_run() -> bool:
            assert demo.poll() is None, demo.stderr.read() if demo.stderr else ""
            running = processes_of(workdir).values()
            return any("mosquitto.conf" in c for c in running) and (
                sum("witness serve" in c for c in running) == 2
            )

        wait_until(children_run, START_S, "the demo's Mosquitto and witnesses running")
        children = {p: c for p, c in processes_of(workdir).items() if p != demo.pid}
        demo.send_signal(how)
        code = demo.wait(STOP_S)
        wait_until(lambda: not processes_of(workdir), STOP_S, f"children gone after {how.name}")
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait(STOP_S)
        for pid in processes_of(workdir):  # never leave one behind, even on failure
            os.kill(pid, signal.SIGKILL)
    assert code == (-signal.SIGKILL if how == signal.SIGKILL else 0), code
    assert any("mosquitto" in c for c in children.values()), children
    assert sum("witness serve" in c for c in children.values()) == 2, children
