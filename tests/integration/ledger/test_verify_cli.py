"""Tamper tests on real ledger files, through the real CLI (`swiftchain ledger verify`).

Each test copies one ledger built the way the hub builds it (a registry key, signed records
with bodies in batches, a signed checkpoint after each batch, an erasure), changes one thing
with plain SQL, and checks that verify exits 1 naming the index of the change.

Layout of the base file (42 entries): 0 registry key; 1..20 records; 21 erasure of the body
of 5; 22..41 records. Checkpoints at sizes 11, 21, 22, 32, 42.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import ledger.verify
from ledger.checkpoint import Checkpoint, NoteSigner, parse_checkpoint, sign_checkpoint
from ledger.keys import generate_key
from swiftchain.cli import cli
from tests.support.ledger_builder import ORIGIN, LedgerBuilder

SWIFTCHAIN = Path(sys.executable).parent / "swiftchain"
ERASED = 5


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    path = tmp_path_factory.mktemp("ledger") / "base.db"
    builder = LedgerBuilder(path)
    builder.register_source()
    builder.append_records(20, batch=10)
    builder.erase(ERASED)
    builder.append_records(20, batch=10)
    key = builder.signer.verifier.encode()
    builder.close()
    assert not Path(f"{path}-wal").exists() or Path(f"{path}-wal").stat().st_size == 0
    return path, key


@pytest.fixture
def ledger_file(base: tuple[Path, str], tmp_path: Path) -> Path:
    path = tmp_path / "ledger.db"
    shutil.copy(base[0], path)
    return path


def verify(path: Path, *args: str) -> Any:
    return CliRunner().invoke(cli, ["ledger", "verify", str(path), "--quiet", *args])


def verify_json(path: Path, *args: str) -> dict[str, Any]:
    result = verify(path, "--json", *args)
    report: dict[str, Any] = json.loads(result.stdout)
    report["exit_code"] = result.exit_code
    return report


def tamper(path: Path, change: Callable[[sqlite3.Connection], object]) -> None:
    conn = sqlite3.connect(path)
    try:
        change(conn)
        conn.commit()
    finally:
        conn.close()


def flip(table: str, column: str, key: str, value: int, at: int) -> Callable[..., None]:
    """Change one byte (or one character) of one stored value."""

    def change(conn: sqlite3.Connection) -> None:
        (old,) = conn.execute(f"SELECT {column} FROM {table} WHERE {key} = ?", (value,)).fetchone()
        if isinstance(old, str):
            new: str | bytes = old[:at] + ("A" if old[at] != "A" else "B") + old[at + 1 :]
        else:
            raw = bytearray(old)
            raw[at] ^= 0x01
            new = bytes(raw)
        assert new != old
        conn.execute(f"UPDATE {table} SET {column} = ? WHERE {key} = ?", (new, value))

    return change


def assert_caught(path: Path, index: int) -> None:
    result = verify(path)
    assert result.exit_code == 1, result.output
    assert f"first bad index {index}\n" in result.stderr
    assert "Traceback" not in result.output
    assert verify_json(path)["first_bad_index"] == index


# -- the untouched file and the supported erasure --------------------------------------------
def test_untouched_ledger_verifies(ledger_file: Path, base: tuple[Path, str]) -> None:
    result = verify(ledger_file, "--key", base[1])
    assert result.exit_code == 0, result.output
    assert "OK: every hash, signature and checkpoint verifies." in result.stdout
    report = verify_json(ledger_file)
    assert report["ok"] and report["size"] == 42 and report["records"] == 40
    assert report["signatures"] == 40 and report["erased"] == 1 and report["checkpoints"] == 5


def test_erasing_a_body_the_supported_way_keeps_verify_green(tmp_path: Path) -> None:
    builder = LedgerBuilder(tmp_path / "l.db")
    builder.register_source()
    builder.append_records(8, batch=4)
    builder.erase(3)
    builder.erase(8)
    builder.append_records(2)
    builder.close()
    report = verify_json(tmp_path / "l.db")
    assert report["exit_code"] == 0 and report["ok"], report["problems"]
    assert report["erased"] == 2 and report["bodies"] == 8


# -- one byte of any stored value ------------------------------------------------------------
@pytest.mark.parametrize(
    ("change", "index"),
    [
        (flip("entries", "leaf", "idx", 17, 30), 17),
        (flip("entries", "leaf", "idx", 0, 40), 0),  # the registry entry
        (flip("entries", "leaf", "idx", 21, 5), 21),  # the erasure entry
        (flip("entries", "leaf", "idx", 41, 0), 41),  # the last entry
        (flip("entries", "leaf_hash", "idx", 17, 0), 17),
        (flip("entries", "leaf_hash", "idx", 41, 31), 41),
        # Row 23 closes the level 1, 2 and 3 nodes over 22..23, 20..23 and 16..23.
        (flip("entries", "nodes", "idx", 23, 0), 23),
        (flip("entries", "nodes", "idx", 23, 40), 23),
        (flip("entries", "nodes", "idx", 23, 95), 23),
        (flip("entries", "nodes", "idx", 31, 4 * 32 + 7), 31),  # level 5: all of 0..31
        (flip("entries", "nodes", "idx", 41, 3), 41),
        (flip("entries", "sig", "idx", 17, 10), 17),
        (flip("entries", "sig", "idx", 1, 0), 1),
        (flip("checkpoints", "note", "size", 32, 25), 31),  # the root line of the body
        (flip("checkpoints", "note", "size", 32, 5), 31),  # the origin line
        (flip("checkpoints", "note", "size", 32, -12), 31),  # the signature
        (flip("checkpoints", "root", "size", 32, 0), 31),
        (flip("checkpoints", "root", "size", 11, 31), 10),
        (flip("bodies", "payload", "idx", 17, 3), 17),
        (flip("bodies", "salt", "idx", 17, 3), 17),
        (flip("records", "id", "idx", 17, 3), 17),
        (flip("records", "observed_at", "idx", 17, 3), 17),
    ],
    ids=lambda v: str(v) if isinstance(v, int) else None,
)
def test_one_changed_byte_is_caught_at_its_index(
    ledger_file: Path, change: Callable[..., None], index: int
) -> None:
    tamper(ledger_file, change)
    assert_caught(ledger_file, index)


@pytest.mark.parametrize(
    ("sql", "index"),
    [
        ("UPDATE records SET seq = 999 WHERE idx = 17", 17),
        ("UPDATE records SET subject = 'someone-else-123' WHERE idx = 17", 17),
        ("UPDATE records SET type = 'fhir.Observation' WHERE idx = 17", 17),
        ("UPDATE entries SET kind = 'access' WHERE idx = 17", 17),
        ("UPDATE entries SET sig = NULL WHERE idx = 17", 17),
        ("UPDATE bodies SET payload = 'text' WHERE idx = 17", 17),
        ("DELETE FROM records WHERE idx = 17", 17),
        ("DELETE FROM bodies WHERE idx = 17", 17),  # not the supported erasure
        (
            "INSERT INTO bodies (idx, payload, salt)"
            " SELECT 5, payload, salt FROM bodies WHERE idx = 6",
            5,
        ),
        ("UPDATE meta SET value = 'other.example/log' WHERE key = 'origin'", 10),
    ],
)
def test_changed_rows_are_caught(ledger_file: Path, sql: str, index: int) -> None:
    tamper(ledger_file, lambda conn: conn.execute(sql))
    assert_caught(ledger_file, index)


# -- deleted and reordered rows ----------------------------------------------------------------
@pytest.mark.parametrize("index", [17, 1, 41])
def test_deleted_entry_is_caught(ledger_file: Path, index: int) -> None:
    tamper(ledger_file, lambda conn: conn.execute("DELETE FROM entries WHERE idx = ?", (index,)))
    assert_caught(ledger_file, index)


def test_swapped_leaves_are_caught(ledger_file: Path) -> None:
    def swap(conn: sqlite3.Connection) -> None:
        a, b = (
            conn.execute("SELECT leaf, leaf_hash, sig FROM entries WHERE idx = ?", (i,)).fetchone()
            for i in (12, 13)
        )
        conn.execute("UPDATE entries SET leaf = ?, leaf_hash = ?, sig = ? WHERE idx = 12", b)
        conn.execute("UPDATE entries SET leaf = ?, leaf_hash = ?, sig = ? WHERE idx = 13", a)

    tamper(ledger_file, swap)
    assert_caught(ledger_file, 12)


def test_swapped_leaves_far_apart_are_caught(ledger_file: Path) -> None:
    def swap(conn: sqlite3.Connection) -> None:
        a, b = (
            conn.execute("SELECT leaf FROM entries WHERE idx = ?", (i,)).fetchone() for i in (9, 30)
        )
        conn.execute("UPDATE entries SET leaf = ? WHERE idx = 9", b)
        conn.execute("UPDATE entries SET leaf = ? WHERE idx = 30", a)

    tamper(ledger_file, swap)
    assert_caught(ledger_file, 9)


def test_reordered_rows_are_caught(ledger_file: Path) -> None:
    def reorder(conn: sqlite3.Connection) -> None:
        conn.execute("UPDATE entries SET idx = -1 WHERE idx = 12")
        conn.execute("UPDATE entries SET idx = 12 WHERE idx = 13")
        conn.execute("UPDATE entries SET idx = 13 WHERE idx = -1")

    tamper(ledger_file, reorder)
    assert_caught(ledger_file, 12)


def test_rewritten_tail_is_caught_by_the_signed_checkpoint(ledger_file: Path) -> None:
    """Leaf, leaf hash and every stored node rewritten consistently: only the signed
    checkpoint can tell, and verify names the first entry it no longer vouches for."""
    from ledger.entries import RegistryEntry
    from ledger.hashing import leaf_hash
    from ledger.tree import Frontier

    def rewrite(conn: sqlite3.Connection) -> None:
        (leaf,) = conn.execute("SELECT leaf FROM entries WHERE idx = 0").fetchone()
        value = json.loads(leaf)
        value["actor"] = "mallory"
        new_leaf = RegistryEntry(**value).leaf()
        conn.execute(
            "UPDATE entries SET leaf = ?, leaf_hash = ? WHERE idx = 0",
            (new_leaf, leaf_hash(new_leaf)),
        )
        frontier = Frontier()
        for idx, lh in conn.execute("SELECT idx, leaf_hash FROM entries ORDER BY idx").fetchall():
            nodes = b"".join(frontier.append(lh))
            conn.execute("UPDATE entries SET nodes = ? WHERE idx = ?", (nodes, idx))

    tamper(ledger_file, rewrite)
    assert_caught(ledger_file, 0)


# -- the hub's key ------------------------------------------------------------------------------
def test_file_resigned_with_another_key_fails_when_the_real_key_is_pinned(
    ledger_file: Path, base: tuple[Path, str]
) -> None:
    mallory = NoteSigner(ORIGIN, generate_key())

    def resign(conn: sqlite3.Connection) -> None:
        conn.execute(
            "UPDATE meta SET value = ? WHERE key = 'log_key'", (mallory.verifier.encode(),)
        )
        for size, note in conn.execute("SELECT size, note FROM checkpoints").fetchall():
            cp = parse_checkpoint(note).checkpoint
            conn.execute(
                "UPDATE checkpoints SET note = ? WHERE size = ?",
                (sign_checkpoint(Checkpoint(cp.origin, cp.size, cp.root_hash), mallory), size),
            )

    tamper(ledger_file, resign)
    # Trusting the copy of the key inside the file, the forgery is consistent...
    unpinned = verify_json(ledger_file)
    assert unpinned["ok"] and unpinned["checkpoint_key"].startswith("the file itself")
    # ...pinning the hub's real key exposes it at the first checkpoint.
    result = verify(ledger_file, "--key", base[1])
    assert result.exit_code == 1
    assert "first bad index 10\n" in result.stderr
    assert "no signature by" in result.stderr


def test_key_can_be_given_as_a_file(
    ledger_file: Path, base: tuple[Path, str], tmp_path: Path
) -> None:
    key_file = tmp_path / "hub.vkey"
    key_file.write_text(base[1] + "\n")
    assert verify(ledger_file, "--key", str(key_file)).exit_code == 0


# -- bad input: one line, no traceback, exit 2 ------------------------------------------------
def _one_line_error(result: Any, fragment: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and fragment in lines[0]
    assert "Traceback" not in result.output


def test_missing_file(tmp_path: Path) -> None:
    _one_line_error(verify(tmp_path / "nope.db"), "no ledger at")


def test_directory(tmp_path: Path) -> None:
    _one_line_error(verify(tmp_path), "is a directory")


@pytest.mark.parametrize(
    "content", [b"", b"not a database at all\n" * 50, b"SQLite format 3\x00" + bytes(100)]
)
def test_not_a_ledger(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "x.db"
    path.write_bytes(content)
    _one_line_error(verify(path), "StoreError")


def test_a_sqlite_file_that_is_not_a_ledger(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (x)")
    conn.close()
    _one_line_error(verify(path), "not a Swiftchain ledger")


@pytest.mark.parametrize("key", ["garbage", "name+00000000+AQ==", ""])
def test_wrong_key_text(ledger_file: Path, key: str) -> None:
    _one_line_error(verify(ledger_file, "--key", key), "CheckpointError")


def test_unreadable_key_file(ledger_file: Path, tmp_path: Path) -> None:
    key_file = tmp_path / "k.vkey"
    key_file.write_bytes(b"\xff\xfe\x00")
    _one_line_error(verify(ledger_file, "--key", str(key_file)), "KeyFileError")


def test_a_valid_but_different_key_is_a_failed_check(ledger_file: Path) -> None:
    other = NoteSigner(ORIGIN, generate_key()).verifier.encode()
    result = verify(ledger_file, "--key", other)
    assert result.exit_code == 1 and "first bad index 10\n" in result.stderr


# -- the real console script, and the helper processes of large logs --------------------------
def test_real_console_script(ledger_file: Path, tmp_path: Path) -> None:
    good = subprocess.run(
        [str(SWIFTCHAIN), "ledger", "verify", str(ledger_file)], capture_output=True, text=True
    )
    assert good.returncode == 0 and "OK:" in good.stdout
    tamper(ledger_file, flip("entries", "leaf", "idx", 33, 12))
    bad = subprocess.run(
        [str(SWIFTCHAIN), "ledger", "verify", str(ledger_file)], capture_output=True, text=True
    )
    assert bad.returncode == 1 and "first bad index 33\n" in bad.stderr
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"junk" * 100)
    err = subprocess.run(
        [str(SWIFTCHAIN), "ledger", "verify", str(junk)], capture_output=True, text=True
    )
    assert err.returncode == 2 and "Traceback" not in err.stderr
    assert len(err.stderr.strip().splitlines()) == 1


def test_signatures_checked_in_helper_processes(
    ledger_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ledger.verify, "PROCESS_POOL_FROM", 1)
    monkeypatch.setattr(ledger.verify, "SIGNATURE_CHUNK", 8)
    assert ledger.verify.verify_ledger(ledger_file).ok
    tamper(ledger_file, flip("entries", "sig", "idx", 29, 40))
    report = ledger.verify.verify_ledger(ledger_file)
    assert report.first_bad_index == 29 and report.signatures == 40


def test_non_canonical_signature_spelling_is_caught(ledger_file: Path) -> None:
    def respell(conn: sqlite3.Connection) -> None:
        (sig,) = conn.execute("SELECT sig FROM entries WHERE idx = 17").fetchone()
        # The last character of an 86-character base64url signature carries 4 spare bits.
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        last = alphabet[alphabet.index(sig[-1]) ^ 1]
        conn.execute("UPDATE entries SET sig = ? WHERE idx = 17", (sig[:-1] + last,))

    tamper(ledger_file, respell)
    assert_caught(ledger_file, 17)
