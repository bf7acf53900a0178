"""The channel between front ends and the sequencer: length-prefixed MessagePack frames
(msgspec) over a stream socket, one message type per frame.

A Unix socket on one machine; the same frames run over TCP when front ends move to other
machines (docs/architecture.md). Every message is a tagged ``msgspec.Struct``; a frame that
does not decode, or is larger than :data:`MAX_FRAME`, ends the connection (``ChannelError``).
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable
from typing import Any

import msgspec

from ledger.sealed import Opening
from ledger.store import Blinded, Entry, NewEntry, RecordColumns

from .errors import ChannelError

#: Frames beyond this are refused: a batch of records is a few MB at most.
MAX_FRAME = 64 * 1024 * 1024
_LENGTH = struct.Struct(">I")

# -- front end -> sequencer ---------------------------------------------------------------


class Hello(msgspec.Struct, tag=True, array_like=True):
    """The first frame of a front end: who it is, and the run's secret."""

    worker: int
    pid: int
    secret: str


class EntryIn(msgspec.Struct, array_like=True):
    """A :class:`ledger.store.NewEntry` on the wire."""

    kind: str
    leaf: bytes
    sig: str | None = None
    record: tuple[str, str, str, int, str, str | None, str | None, str, str] | None = None
    payload: bytes | None = None
    salt: str | None = None
    opening: bytes | None = None
    origin: bytes | None = None
    blinded_for: tuple[str, str] | None = None


class RecordIn(msgspec.Struct, array_like=True):
    """A verified record and the receipts topic its answer goes to."""

    topic: str
    entry: EntryIn


class Records(msgspec.Struct, tag=True, array_like=True):
    items: list[RecordIn]


class BlindIn(msgspec.Struct, array_like=True):
    index: int
    tag: str
    box: bytes


class Job(msgspec.Struct, tag=True, array_like=True):
    """Hub-made entries to commit (``ahead``: registry changes, before the records), decided
    on the log of ``based_on`` entries: refused if an entry committed since then changed
    what ``guard`` names (``registry``, ``consent:<pilot>:<id>``)."""

    job: int
    ahead: bool
    entries: list[EntryIn]
    based_on: int = -1
    guard: list[str] = []
    erase: list[int] = []
    forget: list[int] = []
    blind: list[BlindIn] = []
    #: (pilot, subject, Consent) whose data keys go with the job (a withdrawal with erasure)
    #: and (pilot, data type, day) whose empty keys of days before go (retention's
    #: backstop): ledger.store.LedgerWriter.append's ``erase_scopes`` and ``retire``.
    erase_scopes: list[tuple[str, str, str]] = []
    retire: list[tuple[str, str, str]] = []


class Ack(msgspec.Struct, tag=True, array_like=True):
    """The front end applied every state entry up to ``size``."""

    size: int


class Sync(msgspec.Struct, tag=True, array_like=True):
    """Ask for the committed size (a read barrier: the answer is a :class:`Head`)."""


# -- sequencer -> front end ---------------------------------------------------------------


class StateEntry(msgspec.Struct, array_like=True):
    """A committed entry that changes what front ends know (registry, consent, client,
    access, erasure), with its opening: front ends follow the log through these."""

    index: int
    kind: str
    leaf: bytes
    opening: bytes | None
    blinded: bool


class Head(msgspec.Struct, tag=True, array_like=True):
    """The log as the sequencer has it, after a commit (or on request).

    ``ack``: the front end must answer :class:`Ack` once it applied ``state`` (set when a
    state entry must be in force everywhere before its writer is answered)."""

    size: int
    head_size: int
    root: bytes
    note: str
    persisted_size: int
    cosigned: str | None
    write_failure: str | None
    witnesses: dict[str, Any] | None
    state: list[StateEntry]
    ack: bool
    #: The checkpoint last submitted to the witnesses, with their cosignatures (or None).
    published: str | None = None
    published_size: int = 0
    #: The sequencer is a standby's (gateway/cluster/standby.py): another hub writes the
    #: log, and this hub's front ends only serve the public log until a head says False.
    standby: bool = False


class Receipts(msgspec.Struct, tag=True, array_like=True):
    """Answers for records this front end sent: (topic, status, id, index, leaf_hash,
    reason, detail); accepted and duplicate ones are covered by ``checkpoint``."""

    checkpoint: str | None
    cosigned: str | None
    items: list[tuple[str, str, str | None, int | None, str | None, str | None, str | None]]


class Done(msgspec.Struct, tag=True, array_like=True):
    job: int
    entries: list[tuple[int, str, bytes, bytes, str | None]]


class Failed(msgspec.Struct, tag=True, array_like=True):
    """The job was not committed (nothing of it was written)."""

    job: int
    error: str
    retry: bool
    conflict: bool = False


ToSequencer = Hello | Records | Job | Ack | Sync
ToFront = Head | Receipts | Done | Failed

_encoder = msgspec.msgpack.Encoder()
_to_sequencer = msgspec.msgpack.Decoder(ToSequencer)
_to_front = msgspec.msgpack.Decoder(ToFront)


class FrameWriter:
    """Frames queued on a stream and sent together at the end of the event loop's turn:
    one write per turn, not per message (a write per search's access entry cost a sixth of
    a front end's time). ``before`` runs first at each flush (to queue what it batches)."""

    def __init__(
        self, writer: asyncio.StreamWriter, before: Callable[[], None] = lambda: None
    ) -> None:
        self.writer = writer
        self.before = before
        self.closed = False
        self._out: list[bytes] = []
        self._due = False

    def send(self, message: ToSequencer | ToFront) -> None:
        if self.closed:
            return
        self._out.append(frame(message))
        self.schedule()

    def schedule(self) -> None:
        """Make sure a flush runs at the end of this turn (for what ``before`` batches)."""
        if not self._due:
            self._due = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        self.before()
        self._due = False
        if self._out and not self.closed:
            self.writer.write(b"".join(self._out))
        self._out.clear()

    def close(self) -> None:
        self.closed = True
        self._out.clear()
        self.writer.close()


def frame(message: ToSequencer | ToFront) -> bytes:
    body = _encoder.encode(message)
    return _LENGTH.pack(len(body)) + body


async def _read_body(reader: asyncio.StreamReader) -> bytes | None:
    try:
        prefix = await reader.readexactly(4)
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise ChannelError("the channel closed inside a frame") from None
        return None
    (n,) = _LENGTH.unpack(prefix)
    if n > MAX_FRAME:
        raise ChannelError(f"a frame of {n} bytes is over the limit of {MAX_FRAME}")
    try:
        return await reader.readexactly(n)
    except asyncio.IncompleteReadError:
        raise ChannelError("the channel closed inside a frame") from None


async def read_to_sequencer(reader: asyncio.StreamReader) -> ToSequencer | None:
    """The next message from a front end; None at a clean end of the stream."""
    body = await _read_body(reader)
    if body is None:
        return None
    try:
        return _to_sequencer.decode(body)
    except msgspec.DecodeError as exc:
        raise ChannelError(f"a frame from a front end does not decode: {exc}") from None


async def read_to_front(reader: asyncio.StreamReader) -> ToFront | None:
    """The next message from the sequencer; None at a clean end of the stream."""
    body = await _read_body(reader)
    if body is None:
        return None
    try:
        return _to_front.decode(body)
    except msgspec.DecodeError as exc:
        raise ChannelError(f"a frame from the sequencer does not decode: {exc}") from None


# -- conversions ----------------------------------------------------------------------------


def entry_in(e: NewEntry) -> EntryIn:
    r = e.record
    return EntryIn(
        e.kind,
        e.leaf,
        e.sig,
        (r.id, r.pilot, r.source, r.seq, r.type, r.subject, r.consent, r.observed_at, r.key)
        if r is not None
        else None,
        e.payload,
        e.salt,
        e.opening.encode() if e.opening is not None else None,
        e.origin,
        e.blinded_for,
    )


def new_entry(e: EntryIn) -> NewEntry:
    try:
        opening = Opening.decode(e.opening) if e.opening is not None else None
    except Exception as exc:  # any malformed opening is the sender's bug: refuse the frame
        raise ChannelError(f"an entry's opening does not decode: {exc}") from None
    return NewEntry(
        e.kind,
        e.leaf,
        sig=e.sig,
        record=RecordColumns(*e.record) if e.record is not None else None,
        payload=e.payload,
        salt=e.salt,
        opening=opening,
        origin=e.origin,
        blinded_for=e.blinded_for,
    )


def blind_in(b: Blinded) -> BlindIn:
    return BlindIn(b.index, b.tag, b.box)


def blinded(b: BlindIn) -> Blinded:
    return Blinded(b.index, b.tag, b.box)


def entries_out(stored: list[Entry]) -> list[tuple[int, str, bytes, bytes, str | None]]:
    return [(e.index, e.kind, e.leaf, e.leaf_hash, e.sig) for e in stored]


def entries_back(rows: list[tuple[int, str, bytes, bytes, str | None]]) -> list[Entry]:
    return [Entry(i, kind, leaf, leaf_hash, sig) for i, kind, leaf, leaf_hash, sig in rows]
