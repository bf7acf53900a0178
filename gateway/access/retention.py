"""Erasing bodies past their pilot's retention: a periodic task. Each body deleted is an
``erasure`` entry (reason ``retention``) appended in the same transaction that deletes it,
so ``ledger verify`` stays green and every hash stays on the log. The writer destroys a
day's data key once the sweep has erased the last value under it; after each sweep of a
pilot's data type, the backstop destroys the keys of that type left holding nothing for
days wholly past retention (a crash between the key store's commit and the ledger's leaves
such a key: docs/storage.md, "Erasure by destroying keys")."""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import UTC, datetime

from ledger.datakeys import first_day_kept
from ledger.entries import ErasureEntry
from ledger.envelope import utc_now
from ledger.store import NewEntry
from pilots import DataType

from ..hub import Hub
from ..registry.state import parse_time
from .control import AccessControl

log = logging.getLogger("swiftchain.hub.retention")

ACTOR = "hub-retention"
_DAY = re.compile(r"\d{4}-\d\d-\d\d")
CHUNK = 1000


async def sweep(hub: Hub, access: AccessControl, now: datetime | None = None) -> int:
    """Erase every body past retention now; returns how many were erased.

    Each pilot's data type is swept on its own: a row that cannot be judged (or a commit
    that fails) is logged and leaves only that type's bodies for the next sweep, never the
    other pilots' bodies past their retention."""
    now = now or datetime.now(UTC)
    total = 0
    for pilot in access.pilots.values():
        for data_type in pilot.data_types:
            try:
                total += await _sweep_type(hub, pilot.id, data_type, now)
            except Exception:
                log.exception(
                    "retention sweep of %s %s failed; sweeping the others",
                    pilot.id,
                    data_type.id,
                )
    if total:
        log.info("erased %d bodies past retention", total)
    return total


async def _sweep_type(hub: Hub, pilot: str, data_type: DataType, now: datetime) -> int:
    total = await _erase_due(hub, pilot, data_type, now)
    try:
        await _backstop(hub, pilot, data_type, now)
    except Exception:
        # The erasures are committed; the keys wait for the next sweep.
        log.exception("retention backstop of %s %s failed", pilot, data_type.id)
    return total


async def _backstop(hub: Hub, pilot: str, data_type: DataType, now: datetime) -> None:
    """Retire the keys of ``data_type`` for days wholly past retention and before the oldest
    body still held (none of them holds a value the log still has: the writer checks that
    again in the commit). Listed here, destroyed by the writer, the one process that may."""
    keys = hub.ledger.reader.keys
    if keys is None:
        return
    day = first_day_kept(data_type.retention.until, now)
    oldest = hub.ledger.reader.oldest_bodies(pilot, data_type.id, 1)
    if oldest and _DAY.fullmatch(held := oldest[0].observed_at[:10]):
        # (A body whose time is no time, planted in the file, dates nothing.)
        day = min(day, held)
    if keys.ids_of(pilot, data_type.id, day):
        await hub.sequencer.append([], retire=[(pilot, data_type.id, day)])


async def _erase_due(hub: Hub, pilot: str, data_type: DataType, now: datetime) -> int:
    total = 0
    while True:
        held = hub.ledger.reader.oldest_bodies(pilot, data_type.id, CHUNK)
        due = []
        for body in held:
            if data_type.retention.until(parse_time(body.observed_at)) > now:
                break  # oldest first: the rest are not due either
            due.append(body)
        if not due:
            return total
        stamp = utc_now()
        suite = hub.ledger.reader.suite
        entries = []
        for body in due:
            leaf, opening = ErasureEntry(
                at=stamp, actor=ACTOR, index=body.index, record=body.record, reason="retention"
            ).sealed(suite=suite)
            entries.append(NewEntry("erasure", leaf, opening=opening))
        await hub.sequencer.append(entries, erase=[body.index for body in due])
        total += len(due)
        if len(due) < len(held) or len(held) < CHUNK:
            return total


async def run(hub: Hub, access: AccessControl) -> None:
    """Sweep at start, then every ``retention_interval_s``."""
    while True:
        try:
            await sweep(hub, access)
        except Exception:
            log.exception("retention sweep failed; retrying next interval")
        await asyncio.sleep(hub.settings.retention_interval_s)
