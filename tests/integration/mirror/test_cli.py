"""`swiftchain mirror` from the outside: bad input is one clear line, a second init and a
second runner on one directory are refused, status reads a stopped mirror."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from mirror.errors import MirrorConfigError
from mirror.store import MirrorStore
from swiftchain.cli import cli
from tests.support.ledger_builder import LedgerBuilder


def run(*args: str) -> tuple[int, str]:
    done = CliRunner().invoke(cli, list(args))
    return done.exit_code, done.output


def test_init_status_and_bad_input(tmp_path: Path) -> None:
    builder = LedgerBuilder(tmp_path / "hub.db")
    vkey = builder.signer.verifier.encode()
    (tmp_path / "hub.vkey").write_text(vkey + "\n")
    d = str(tmp_path / "m")
    code, out = run("mirror", "init", "--dir", d, "--hub", "nope", "--log-key", vkey)
    assert code == 1 and "Error: MirrorConfigError: --hub 'nope'" in out
    code, out = run("mirror", "init", "--dir", d, "--hub", "http://h:1", "--log-key", "x+y+z")
    assert code == 1 and "not a signed-note verifier key" in out
    code, out = run("mirror", "status", "--dir", d)
    assert code == 1 and "no mirror in" in out
    code, out = run(
        "mirror", "init", "--dir", d, "--hub", "http://h:1", "--log-key", str(tmp_path / "hub.vkey")
    )
    assert code == 0 and "cosigner key" in out, out
    code, out = run("mirror", "init", "--dir", d, "--hub", "http://h:1", "--log-key", vkey)
    assert code == 1 and "already holds a mirror" in out
    code, out = run("mirror", "status", "--dir", d, "--json")
    assert code == 0 and json.loads(out)["stored"] == 0
    code, out = run("mirror", "run", "--dir", d, "--poll-s", "0")
    assert code == 2 and "--poll-s" in out

    store = MirrorStore(tmp_path / "m" / "ledger.db", builder.signer.verifier)
    try:
        code, out = run("mirror", "status", "--dir", d)
        assert code == 0 and "entries held   0" in out
        with pytest.raises(MirrorConfigError, match="another mirror is running"):
            MirrorStore(tmp_path / "m" / "ledger.db", builder.signer.verifier)
    finally:
        store.close()
