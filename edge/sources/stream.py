"""The stream source: NDJSON lines on stdin (or from a file or named pipe).

Each line is one input (a FHIR resource, a Bundle, ``{"type", "payload", ...}`` or a bare
payload of ``default_type``). Lines that arrive together are stored together; each line
is its own submission, so one bad line does not hold back the others. For every line the
sender gets one JSON line back: on stdout ``{"line", "ids", "seqs"}`` once stored, on
stderr ``{"line", "error", "detail", "where"}`` if refused.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from ledger.envelope import MAX_RECORD_BYTES, parse_json
from ledger.errors import InvalidEnvelope

from ..drafts import drafts_from_json
from ..errors import ConfigError, InvalidInput
from ..intake import INLINE_PREPARE, Intake, Stored
from ..logs import log

logger = logging.getLogger("edge.sources.stream")

#: Longest line read; longer ones are refused (and skipped to their end).
MAX_LINE_BYTES = 4 * MAX_RECORD_BYTES


class StreamSource:
    def __init__(
        self,
        intake: Intake,
        *,
        default_type: str | None = None,
        acks: TextIO | None = None,
        errors: TextIO | None = None,
        batch: int = 500,
    ) -> None:
        self.intake = intake
        self.default_type = default_type
        self.acks = acks
        self.errors = errors if errors is not None else sys.stderr
        self.batch = batch
        self.lines = 0
        self.refused = 0
        #: Set when the stream has ended and every line was handled.
        self.finished = asyncio.Event()

    async def run(self, lines: AsyncIterator[bytes | InvalidInput]) -> None:
        """Handle lines until the stream ends, at most ``batch`` of them in progress.

        A line is checked and prepared as it is read and handed to the intake, which stores
        the lines read meanwhile together; its answer is written once it is stored. No task
        per line (measured: a task and its future cost more than checking the line): only a
        line of many records is prepared in a task of its own, on a worker thread."""
        n = 0
        pending: list[asyncio.Future[list[Stored]]] = []
        async with asyncio.TaskGroup() as tg:
            async for line in lines:
                n += 1
                future = self._take(n, line, tg)
                if future is None:
                    continue
                pending.append(future)
                if len(pending) >= self.batch:
                    await _stored(pending)
                    pending.clear()
            await _stored(pending)
        self.finished.set()
        log(logger, logging.INFO, "stream.ended", lines=n, refused=self.refused)

    def _take(
        self, n: int, line: bytes | InvalidInput, tg: asyncio.TaskGroup
    ) -> asyncio.Future[list[Stored]] | None:
        """Check line ``n`` and hand its records to the intake; None if it is blank or was
        refused (and answered) already."""
        if isinstance(line, bytes) and not line.strip():
            return None
        self.lines += 1
        try:
            if isinstance(line, InvalidInput):
                raise line
            try:
                value = parse_json(line, max_bytes=MAX_LINE_BYTES)
            except InvalidEnvelope as exc:
                raise InvalidInput(exc.reason, exc.detail) from None
            drafts = list(drafts_from_json(value, default_type=self.default_type))
            future: asyncio.Future[list[Stored]]
            if len(drafts) > INLINE_PREPARE:
                future = tg.create_task(self.intake.submit(drafts))
            else:
                future = self.intake.enqueue(self.intake.prepare(drafts))
        except InvalidInput as exc:
            self._refused(n, exc)
            return None
        future.add_done_callback(partial(self._answer, n))
        return future

    def _answer(self, n: int, future: asyncio.Future[list[Stored]]) -> None:
        if future.cancelled():
            return
        exc = future.exception()
        if isinstance(exc, InvalidInput):
            self._refused(n, exc)
        elif exc is None and self.acks is not None:
            self._write(self.acks, _ack(n, future.result()))
        # Any other error is raised by run (_stored).

    def _refused(self, n: int, exc: InvalidInput) -> None:
        self.refused += 1
        self._write(
            self.errors, {"line": n, "error": exc.reason, "detail": exc.detail, "where": exc.where}
        )

    @staticmethod
    def _write(out: TextIO, value: dict[str, Any]) -> None:
        out.write(json.dumps(value) + "\n")
        out.flush()


async def _stored(pending: list[asyncio.Future[list[Stored]]]) -> None:
    """Wait for these lines' records to be stored (the futures are left running if this is
    cancelled: what the intake has, it stores); raise what is not a refusal of a line."""
    if not pending:
        return
    await asyncio.wait(pending)
    for future in pending:
        if not future.cancelled():
            exc = future.exception()
            if exc is not None and not isinstance(exc, InvalidInput):
                raise exc


def _ack(n: int, stored: list[Stored]) -> dict[str, Any]:
    ack: dict[str, Any] = {"line": n, "ids": [s.id for s in stored]}
    ack["seqs"] = [s.seq for s in stored]
    before = [s.id for s in stored if s.duplicate]
    if before:
        # Device records relayed before: stored then, under those seqs; nothing stored now.
        ack["relayed_before"] = before
    return ack


async def _read_line(reader: asyncio.StreamReader) -> bytes | InvalidInput | None:
    """One line (without its newline), an InvalidInput for an overlong one, None at EOF."""
    try:
        line = await reader.readuntil(b"\n")
        return line[:-1]
    except asyncio.IncompleteReadError as exc:
        return exc.partial if exc.partial else None
    except asyncio.LimitOverrunError:
        # Skip the rest of the overlong line.
        while True:
            try:
                await reader.readuntil(b"\n")
                break
            except asyncio.LimitOverrunError as more:
                await reader.readexactly(more.consumed)
            except asyncio.IncompleteReadError:
                break
        return _overlong()


def _overlong() -> InvalidInput:
    return InvalidInput("oversize", f"the line is over the {MAX_LINE_BYTES}-byte limit", status=413)


async def reader_lines(reader: asyncio.StreamReader) -> AsyncIterator[bytes | InvalidInput]:
    while (line := await _read_line(reader)) is not None:
        yield line


async def stdin_lines() -> AsyncIterator[bytes | InvalidInput]:
    """Lines of the agent's stdin (a pipe, a socket or a terminal)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=MAX_LINE_BYTES)
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), sys.stdin.buffer
    )
    try:
        async for line in reader_lines(reader):
            yield line
    finally:
        transport.close()


async def file_lines(path: Path, chunk: int = 500) -> AsyncIterator[bytes | InvalidInput]:
    """Lines of a file or named pipe, read on a worker thread ``chunk`` lines at a time."""

    def read(fh: BinaryIO) -> list[bytes | InvalidInput]:
        out: list[bytes | InvalidInput] = []
        while len(out) < chunk:
            line = fh.readline(MAX_LINE_BYTES + 1)
            if not line:
                break
            if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
                while (rest := fh.readline(MAX_LINE_BYTES)) and not rest.endswith(b"\n"):
                    pass
                out.append(_overlong())
                continue
            out.append(line.rstrip(b"\n"))
        return out

    try:
        fh = await asyncio.to_thread(open, path, "rb")
    except OSError as exc:
        raise ConfigError(f"cannot open stream {path}: {exc.strerror}") from None
    try:
        while lines := await asyncio.to_thread(read, fh):
            for line in lines:
                yield line
    finally:
        fh.close()
