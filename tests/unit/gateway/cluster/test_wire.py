"""The channel's frames: every message round-trips, entries keep every field, and a frame
that is cut, too large or not ours ends the connection with ChannelError."""

from __future__ import annotations

import asyncio
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.cluster.errors import ChannelError
from gateway.cluster.wire import (
    MAX_FRAME,
    Ack,
    BlindIn,
    Done,
    Failed,
    Head,
    Hello,
    Job,
    Receipts,
    RecordIn,
    Records,
    StateEntry,
    Sync,
    blind_in,
    blinded,
    entries_back,
    entries_out,
    entry_in,
    frame,
    new_entry,
    read_to_front,
    read_to_sequencer,
)
from ledger.sealed import Opening
from ledger.store import Blinded, Entry, NewEntry, RecordColumns


def feed(data: bytes) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    return reader


RECORD = NewEntry(
    "record",
    b'{"v":2}',
    sig="c2ln",
    record=RecordColumns(
        "id-1",
        "chronic-care",
        "home-bp",
        7,
        "fhir.Observation",
        "pt-1",
        "c-1",
        "2026-12-01T00:00:00Z",
        "k1",
    ),
    payload=b'{"a":1}',
    salt="c2FsdA",
    opening=Opening("c2FsdA", {"consent": "c-1", "subject": "pt-1"}),
    origin=b'{"header":{}}',
    blinded_for=("chronic-care", "pt-1"),
)


def test_a_record_entry_keeps_every_field() -> None:
    assert new_entry(entry_in(RECORD)) == RECORD
    plain = NewEntry("access", b"{}")
    assert new_entry(entry_in(plain)) == plain


async def test_every_message_round_trips() -> None:
    to_sequencer = [
        Hello(1, 42, "secret"),
        Records([RecordIn("t/receipts", entry_in(RECORD))]),
        Job(3, False, [entry_in(RECORD)], erase=[1], forget=[2], blind=[BlindIn(4, "ab", b"x")]),
        Job(4, True, [], based_on=10, guard=["registry"]),
        Ack(99),
        Sync(),
    ]
    for message in to_sequencer:
        assert await read_to_sequencer(feed(frame(message))) == message
    to_front = [
        Head(
            5,
            5,
            b"r" * 32,
            "note",
            4,
            None,
            None,
            {"quorum": 1},
            [StateEntry(4, "consent", b"{}", b"o", True)],
            True,
        ),
        Receipts("note", None, [("t", "accepted", "id", 3, "ab" * 32, None, None)]),
        Done(3, [(0, "access", b"{}", b"h" * 32, None)]),
        Failed(3, "disk full", True),
        Failed(4, "registry changed meanwhile", True, True),
    ]
    for message in to_front:
        assert await read_to_front(feed(frame(message))) == message


async def test_a_clean_end_is_none_and_a_cut_frame_is_an_error() -> None:
    assert await read_to_sequencer(feed(b"")) is None
    whole = frame(Ack(1))
    for cut in (2, 4, len(whole) - 1):
        with pytest.raises(ChannelError, match="inside a frame"):
            await read_to_sequencer(feed(whole[:cut]))


async def test_a_frame_over_the_limit_is_refused_before_it_is_read() -> None:
    with pytest.raises(ChannelError, match="over the limit"):
        await read_to_front(feed(struct.pack(">I", MAX_FRAME + 1)))


@given(st.binary(max_size=200))
def test_garbage_is_a_channel_error_never_another_exception(body: bytes) -> None:
    async def read() -> None:
        try:
            await read_to_sequencer(feed(struct.pack(">I", len(body)) + body))
        except ChannelError:
            pass

    asyncio.run(read())


async def test_a_message_of_the_other_direction_is_refused() -> None:
    with pytest.raises(ChannelError, match="does not decode"):
        await read_to_sequencer(feed(frame(Ack(1))[:4] + frame(Failed(1, "x", False))[4:]))


def test_a_malformed_opening_is_a_channel_error() -> None:
    bad = entry_in(RECORD)
    bad.opening = b"not an opening"
    with pytest.raises(ChannelError, match="opening"):
        new_entry(bad)


def test_entries_and_blinded_openings_convert_both_ways() -> None:
    stored = [Entry(3, "access", b"{}", b"h" * 32, None), Entry(4, "record", b"{}", b"g" * 32, "s")]
    assert entries_back(entries_out(stored)) == stored
    box = Blinded(7, "tag", b"box")
    assert blinded(blind_in(box)) == box
