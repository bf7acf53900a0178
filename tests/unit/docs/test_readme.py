"""Every ``swiftchain`` command in README.md's code blocks runs as written: in order, in an
empty folder, through a shell and the installed console script, each exiting 0. What one
line writes (``hub.key``, ``hub.vkey``, ``ledger.db``) is what the next line reads."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .pages import code_blocks, read, shell_commands

#: The console script next to this interpreter (the project's venv).
BIN = Path(sys.executable).parent
#: A bound on one command, so a hung command fails the test instead of stalling the suite.
COMMAND_TIMEOUT_S = 120


def readme_commands() -> list[str]:
    return [
        command
        for lang, body in code_blocks(read("README.md"))
        if lang in ("sh", "bash", "shell", "console")
        for command in shell_commands(body)
        if command.startswith("swiftchain ")
    ]


def test_the_readme_has_swiftchain_commands() -> None:
    assert len(readme_commands()) >= 3


def test_every_readme_command_runs_as_written(tmp_path: Path) -> None:
    assert (BIN / "swiftchain").exists(), "install the project (make venv) to get the script"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWIFTCHAIN_")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    outputs = []
    for command in readme_commands():
        done = subprocess.run(
            ["bash", "-c", command],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_S,
        )
        assert done.returncode == 0, f"README: `{command}` exited {done.returncode}:\n{done.stderr}"
        assert "Traceback" not in done.stdout + done.stderr, command
        outputs.append(done.stdout)
    # The audit story the README tells: the key is pinned, and the ledger verifies under it.
    assert (tmp_path / "hub.vkey").is_file()
    assert any("OK:" in out and "(key: given)" in out for out in outputs)
