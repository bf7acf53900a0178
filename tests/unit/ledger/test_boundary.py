"""The ledger's tables are ledger/'s alone: no other package writes SQL on them or reaches
for a reader's connection; they call the reader's named queries (``ledger.queries``)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PACKAGES = ("gateway", "swiftchain", "edge", "pilots", "simulators")

LEDGER_SQL = re.compile(r"\b(FROM|JOIN|INTO|UPDATE)\s+(entries|records|bodies|checkpoints)\b")
READER_CONNECTION = re.compile(r"\b_?(reader|writer)\.conn\b")

#: The one exception, and why: the demo's forger edits a copy of the ledger file behind the
#: ledger's back (no API of the ledger's would write it), for the verifier to catch.
FORGER = ("swiftchain/demo/story.py", "UPDATE entries SET leaf")
#: And the hub's lease on PostgreSQL, which lives on its writer's session (ledger.lease): it
#: reads the session's backend and hears of its reconnections, and writes no SQL through it.
LEASE = (
    "gateway/hub_ledger.py",
    ("writer.conn is not None", "writer.conn.backend_pid()", "writer.conn.on_reconnect."),
)


def _sources() -> list[tuple[str, str]]:
    files = sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))
    assert len(files) > 50, "the source tree was not found"
    return [(p.relative_to(ROOT).as_posix(), p.read_text(encoding="utf-8")) for p in files]


def test_no_sql_on_the_ledgers_tables_outside_ledger() -> None:
    found = [
        f"{name}: {match.group(0)}"
        for name, text in _sources()
        for match in LEDGER_SQL.finditer(text)
        if not (name == FORGER[0] and text.startswith(FORGER[1], match.start()))
    ]
    assert found == []


def test_no_code_outside_ledger_uses_a_readers_connection() -> None:
    found = [
        f"{name}: {match.group(0)}"
        for name, text in _sources()
        for match in READER_CONNECTION.finditer(text)
        if not (name == LEASE[0] and text.startswith(LEASE[1], match.start()))
    ]
    assert found == []
