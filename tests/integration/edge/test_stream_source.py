"""The NDJSON stream source: an ack or an error line for every input line."""

from __future__ import annotations

import io
import json
from pathlib import Path

from edge.sources.stream import MAX_LINE_BYTES, StreamSource, file_lines
from tests.support.edge import outbox_depth, reading, running_intake


async def test_every_line_gets_an_ack_or_an_error(tmp_path: Path) -> None:
    lines = [
        json.dumps(reading(1)),
        "{broken",
        "",
        json.dumps({"type": "city.ufo", "payload": {}}),
        json.dumps(reading(2)),
        "x" * (MAX_LINE_BYTES + 10),
        json.dumps(reading(3)),
    ]
    path = tmp_path / "in.ndjson"
    path.write_text("\n".join(lines) + "\n")
    acks, errors = io.StringIO(), io.StringIO()
    async with running_intake(tmp_path) as intake:
        stream = StreamSource(intake, acks=acks, errors=errors)
        await stream.run(file_lines(path))
    acked = [json.loads(x) for x in acks.getvalue().splitlines()]
    refused = [json.loads(x) for x in errors.getvalue().splitlines()]
    assert sorted(a["line"] for a in acked) == [1, 5, 7]
    assert sorted(a["seqs"][0] for a in acked) == [1, 2, 3]
    assert {(e["line"], e["error"]) for e in refused} == {
        (2, "malformed_json"),
        (4, "unknown_type"),
        (6, "oversize"),
    }
    assert outbox_depth(tmp_path / "outbox.db") == 3


async def test_default_type_for_bare_payloads(tmp_path: Path) -> None:
    path = tmp_path / "in.ndjson"
    path.write_text(json.dumps(reading(4)["payload"]) + "\n")
    async with running_intake(tmp_path) as intake:
        stream = StreamSource(intake, default_type="city.parking", acks=io.StringIO())
        await stream.run(file_lines(path))
    assert outbox_depth(tmp_path / "outbox.db") == 1
