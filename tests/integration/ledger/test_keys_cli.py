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


def test_new_writes_the_verifier_key_of_a_hub_with_the_default_origin(tmp_path: Path) -> None:
    from gateway.settings import HubSettings
    from ledger.checkpoint import NoteSigner, NoteVerifier

    path = tmp_path / "hub.key"
    result = run("new", str(path))
    assert result.exit_code == 0, result.output
    vkey = (tmp_path / "hub.vkey").read_text()
    origin = HubSettings.model_fields["origin"].default
    assert vkey == NoteSigner(origin, load_private_key(path)).verifier.encode() + "\n"
    assert NoteVerifier.parse(vkey).name == origin
    assert f"verifier key: {vkey.strip()}" in result.output


def test_new_names_the_verifier_key_after_the_hub_origin_given(tmp_path: Path) -> None:
    assert run("new", str(tmp_path / "log"), "--note-name", "ledger.example/zone").exit_code == 0
    assert (tmp_path / "log.vkey").read_text().startswith("ledger.example/zone+")
    refused = run("new", str(tmp_path / "x.key"), "--note-name", "two words")
    assert refused.exit_code == 2 and "--note-name" in refused.output
    assert not (tmp_path / "x.key").exists() and not (tmp_path / "x.vkey").exists()


def test_new_refuses_to_overwrite_a_verifier_key(tmp_path: Path) -> None:
    (tmp_path / "hub.vkey").write_text("kept\n")
    again = run("new", str(tmp_path / "hub.key"))
    assert again.exit_code == 1 and "refusing to overwrite" in again.output
    assert not (tmp_path / "hub.key").exists()
    assert (tmp_path / "hub.vkey").read_text() == "kept\n"
