"""Path traversal at the edge's file source: nothing outside the watched directory is ever
read, however the file names or links are made, including a file swapped for a symlink
between the scan that found it and the read (a time-of-check/time-of-use race).

Names that are not plain files (symlinks, hidden, temporary, subdirectories) are
tests/integration/edge/test_directory_source.py; moves never overwriting is there too.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from edge.sources.directory import Candidate, DirectorySource, candidates
from tests.support.edge import outbox_depth, reading, running_intake

from .conftest import AttackTally


async def test_a_file_swapped_for_a_symlink_after_the_scan_is_not_read(
    tmp_path: Path, attacks: AttackTally
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    secret = tmp_path / "secret.json"
    secret_text = json.dumps(reading(3))
    secret.write_text(secret_text)
    (inbox / "innocent.json").write_text(json.dumps(reading(1)))
    async with running_intake(tmp_path) as intake:
        watcher = DirectorySource(intake, inbox, settle=0)
        (found,) = candidates(inbox, 0, 1e12)
        # The race: between the scan and the read, the file becomes a link to a secret.
        os.unlink(found.path)
        os.symlink(secret, found.path)
        await watcher.process(Candidate(found.path, found.size, found.mtime))
    attacks.tried("file source: symlink swapped in after the scan")
    assert outbox_depth(tmp_path / "outbox.db") == 0
    assert secret.read_text() == secret_text


async def test_traversal_names_are_never_followed(tmp_path: Path, attacks: AttackTally) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "x.json").write_text(json.dumps(reading(7)))
    names = ["..json", "...json", "-x.json", " .json", "a\nb.json", "x.json.", "x.JSON~"]
    for name in names:
        (inbox / name).write_text(json.dumps(reading(1)))
    os.symlink(outside, inbox / "dir.json")  # a directory link with a reader's suffix
    os.link(outside / "x.json", inbox / "hard.json")  # a hard link is the same file: fine
    async with running_intake(tmp_path) as intake:
        await DirectorySource(intake, inbox, settle=0).scan()
    attacks.tried("file source: traversal names and links", len(names) + 2)
    # Only the hard link (a regular file in the directory) was read.
    assert outbox_depth(tmp_path / "outbox.db") == 1
    assert (outside / "x.json").exists() and not list(outside.glob("*.1.json"))
