"""`swiftchain keys new|show` on real files: 0600 keys, no silent overwrite, one-line errors."""

from __future__ import annotations

import stat
from pathlib import Path

from click.testing import CliRunner, Result

from ledger.keys import key_id, load_private_key
from swiftchain.cli import cli


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["keys", *args])


def test_new_then_show(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "hub.key"
    result = run("new", str(path))
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    kid = key_id(load_private_key(path).public_key())
    assert f"key id: {kid}" in result.output
    shown = run("show", str(path), "--note-name", "swiftchain.test/log")
    assert shown.exit_code == 0
    assert "verifier key: swiftchain.test/log+" in shown.output


def test_new_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    path = tmp_path / "hub.key"
    assert run("new", str(path)).exit_code == 0
    before = path.read_bytes()
    again = run("new", str(path))
    assert again.exit_code == 1
    assert "refusing to overwrite" in again.output
    assert "Traceback" not in again.output
    assert path.read_bytes() == before
    assert run("new", str(path), "--force").exit_code == 0
    assert path.read_bytes() != before


def test_show_bad_files_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "junk.key").write_text("junk")
    for target in (tmp_path / "junk.key", tmp_path / "missing.key"):
        result = run("show", str(target))
        assert result.exit_code == 1
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: KeyFileError")
