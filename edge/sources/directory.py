"""The watched-directory source: ``.json`` and ``.ndjson`` files dropped into a directory.

Each file is one submission: all its records are stored, or none. Then it moves to
``done/``, or to ``failed/`` with ``<name>.error.json`` beside it saying why. A file is never
turned into records twice: its name and SHA-256 are stored with its records in the same
transaction, so a file found again after a crash (stored, not yet moved) just moves on.

Only regular files directly in the directory are read (no subdirectories, no symlinks, no
hidden or temporary names), and they move only to ``done/`` and ``failed/`` under their own
base name, so no file name can make the agent read or write elsewhere.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import json
import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledger.envelope import parse_json
from ledger.errors import InvalidEnvelope

from ..drafts import drafts_from_json
from ..errors import InvalidInput
from ..intake import AlreadyIngested, Intake
from ..logs import log

logger = logging.getLogger("edge.sources.directory")

SUFFIXES = (".json", ".ndjson")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")
#: Largest single NDJSON line (one record's input).
MAX_LINE_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Candidate:
    path: Path
    size: int
    mtime: float


def candidates(inbox: Path, settle: float, now: float) -> list[Candidate]:
    """Files ready to read: regular, not symlinks, safe names, unchanged for ``settle`` s."""
    found = []
    with os.scandir(inbox) as entries:
        for entry in entries:
            if not entry.is_file(follow_symlinks=False):
                continue
            if not _SAFE_NAME.match(entry.name) or not entry.name.endswith(SUFFIXES):
                continue
            st = entry.stat(follow_symlinks=False)
            if now - st.st_mtime < settle:
                continue
            found.append(Candidate(Path(entry.path), st.st_size, st.st_mtime))
    return sorted(found, key=lambda c: (c.mtime, c.path.name))


def parse_file(name: str, raw: bytes) -> list[tuple[str, Any]]:
    """(location, JSON value) of each record input in a file; InvalidInput if malformed."""
    if name.endswith(".ndjson"):
        values = []
        for n, line in enumerate(raw.split(b"\n"), start=1):
            if not line.strip():
                continue
            try:
                values.append((f"line {n}", parse_json(line, max_bytes=MAX_LINE_BYTES)))
            except InvalidEnvelope as exc:
                raise InvalidInput(exc.reason, exc.detail, where=f"line {n}") from None
        if not values:
            raise InvalidInput("empty", "the file holds no records")
        return values
    try:
        return [("", parse_json(raw, max_bytes=len(raw) + 1))]
    except InvalidEnvelope as exc:
        raise InvalidInput(exc.reason, exc.detail) from None


def read_no_follow(path: Path) -> bytes:
    """The file's bytes, refusing a symlink: the scan saw a regular file, but it may have
    been swapped for a link since (time of check to time of use)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise InvalidInput("not_a_file", "the file became a symlink; not read") from None
        raise
    with os.fdopen(fd, "rb") as f:
        return f.read()


def move_into(path: Path, target_dir: Path) -> Path:
    """Move ``path`` into ``target_dir`` under its base name, never overwriting."""
    target_dir.mkdir(parents=True, exist_ok=True)
    name = path.name
    target = target_dir / name
    n = 1
    while target.exists():
        target = target_dir / f"{path.stem}.{n}{path.suffix}"
        n += 1
    os.replace(path, target)
    return target


class DirectorySource:
    def __init__(
        self,
        intake: Intake,
        inbox: Path,
        *,
        done: Path | None = None,
        failed: Path | None = None,
        poll_interval: float = 1.0,
        settle: float = 0.5,
        max_file_bytes: int = 32 * 1024 * 1024,
        default_type: str | None = None,
    ) -> None:
        self.intake = intake
        self.inbox = inbox
        self.done = done or inbox / "done"
        self.failed = failed or inbox / "failed"
        self.poll_interval = poll_interval
        self.settle = settle
        self.max_file_bytes = max_file_bytes
        self.default_type = default_type
        self.files_done = 0
        self.files_failed = 0

    async def run(self) -> None:
        for d in (self.inbox, self.done, self.failed):
            d.mkdir(parents=True, exist_ok=True)
        while True:
            await self.scan()
            await asyncio.sleep(self.poll_interval)

    async def scan(self) -> int:
        """Process every ready file once; return how many were handled."""
        found = await asyncio.to_thread(candidates, self.inbox, self.settle, time.time())
        for candidate in found:
            await self.process(candidate)
        return len(found)

    async def process(self, candidate: Candidate) -> None:
        path = candidate.path
        try:
            if candidate.size > self.max_file_bytes:
                raise InvalidInput(
                    "oversize",
                    f"the file has {candidate.size} bytes, over the"
                    f" {self.max_file_bytes}-byte limit",
                    status=413,
                )
            raw = await asyncio.to_thread(read_no_follow, path)
            if len(raw) > self.max_file_bytes:
                raise InvalidInput("oversize", "the file grew over the size limit", status=413)
            # The outbox's own ingest key (a file is stored once), no part of the log: SHA-256
            # whatever the log's crypto suite.
            key = f"file:{path.name}:{hashlib.sha256(raw).hexdigest()}"
            drafts = [
                draft
                for where, value in parse_file(path.name, raw)
                for draft in drafts_from_json(value, default_type=self.default_type, where=where)
            ]
            stored = await self.intake.submit(drafts, ingest_key=key)
        except FileNotFoundError:
            return  # moved or deleted by someone else meanwhile
        except AlreadyIngested:
            target = await asyncio.to_thread(move_into, path, self.done)
            log(logger, logging.WARNING, "file.seen_before", file=path.name, moved_to=str(target))
            return
        except InvalidInput as exc:
            await asyncio.to_thread(self._fail, path, exc)
            return
        await asyncio.to_thread(move_into, path, self.done)
        self.files_done += 1
        log(logger, logging.INFO, "file.stored", file=path.name, records=len(stored))

    def _fail(self, path: Path, error: InvalidInput) -> None:
        target = move_into(path, self.failed)
        note = {
            "file": path.name,
            "error": error.reason,
            "detail": error.detail,
            "where": error.where,
        }
        (self.failed / f"{target.name}.error.json").write_text(json.dumps(note, indent=2) + "\n")
        self.files_failed += 1
        log(
            logger,
            logging.WARNING,
            "file.failed",
            file=path.name,
            reason=error.reason,
            where=error.where,
        )
