"""The watched directory: done/ and failed/, never twice, nothing outside the directory."""

from __future__ import annotations

import json
import os
from pathlib import Path

from edge.sources.directory import DirectorySource
from tests.support.edge import observation, outbox_depth, reading, running_intake, stored_records


def source(intake: object, inbox: Path, **kw: object) -> DirectorySource:
    return DirectorySource(intake, inbox, settle=0, **kw)  # type: ignore[arg-type]


async def test_files_are_stored_and_moved_to_done(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "a.ndjson").write_text("\n".join(json.dumps(reading(i)) for i in range(3)) + "\n")
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": observation()}],
    }
    (inbox / "b.json").write_text(json.dumps(bundle))
    async with running_intake(tmp_path, default_consent="c-1") as intake:
        watcher = source(intake, inbox)
        assert await watcher.scan() == 2
        assert await watcher.scan() == 0
    assert sorted(p.name for p in (inbox / "done").iterdir()) == ["a.ndjson", "b.json"]
    assert outbox_depth(tmp_path / "outbox.db") == 4


async def test_bad_files_go_to_failed_with_a_note_and_store_nothing(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "broken.json").write_text('{"type": "city.parking", ')
    (inbox / "unknown.ndjson").write_text(
        json.dumps(reading(1)) + "\n" + json.dumps({"type": "city.ufo", "payload": {}}) + "\n"
    )
    (inbox / "huge.json").write_text(json.dumps(reading(1)) + " " * 5000)
    bad_fhir = observation()
    del bad_fhir["code"]
    (inbox / "fhir.json").write_text(json.dumps(bad_fhir))
    async with running_intake(tmp_path, default_consent="c-1") as intake:
        await source(intake, inbox, max_file_bytes=4096).scan()
    failed = inbox / "failed"
    notes = {p.name: json.loads(p.read_text()) for p in failed.glob("*.error.json")}
    assert notes["broken.json.error.json"]["error"] == "malformed_json"
    assert notes["unknown.ndjson.error.json"]["error"] == "unknown_type"
    assert notes["unknown.ndjson.error.json"]["where"].startswith("line 2")
    assert notes["huge.json.error.json"]["error"] == "oversize"
    assert notes["fhir.json.error.json"]["error"] == "invalid_fhir"
    assert {"broken.json", "unknown.ndjson", "huge.json", "fhir.json"} <= {
        p.name for p in failed.iterdir()
    }
    assert outbox_depth(tmp_path / "outbox.db") == 0


async def test_a_file_stored_before_a_crash_is_not_stored_again(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    path = inbox / "a.ndjson"
    path.write_text(json.dumps(reading(1)) + "\n")
    async with running_intake(tmp_path) as intake:
        watcher = source(intake, inbox)
        await watcher.scan()
    # The agent died after storing but before moving the file: put it back.
    os.replace(inbox / "done" / "a.ndjson", path)
    async with running_intake(tmp_path) as intake:
        await source(intake, inbox).scan()
    assert outbox_depth(tmp_path / "outbox.db") == 1
    assert not path.exists() and (inbox / "done" / "a.ndjson").exists()


async def test_names_that_are_not_plain_files_are_left_alone(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    outside = tmp_path / "secret.json"
    outside.write_text(json.dumps(reading(1)))
    os.symlink(outside, inbox / "link.json")
    (inbox / ".hidden.json").write_text(json.dumps(reading(1)))
    (inbox / "partial.json.tmp").write_text(json.dumps(reading(1)))
    (inbox / "sub").mkdir()
    (inbox / "sub" / "deep.json").write_text(json.dumps(reading(1)))
    async with running_intake(tmp_path) as intake:
        assert await source(intake, inbox).scan() == 0
    assert outside.exists() and (inbox / "link.json").is_symlink()
    assert outbox_depth(tmp_path / "outbox.db") == 0


async def test_done_never_overwrites(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    async with running_intake(tmp_path) as intake:
        watcher = source(intake, inbox)
        for i in range(2):
            (inbox / "same.json").write_text(json.dumps(reading(i)))
            await watcher.scan()
    assert sorted(p.name for p in (inbox / "done").iterdir()) == ["same.1.json", "same.json"]
    assert len(stored_records(tmp_path / "outbox.db")) == 2
