"""The intake: durable group commit, seq without gaps, all-or-nothing submissions."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from edge.drafts import Draft
from edge.errors import InvalidInput
from edge.intake import AlreadyIngested
from edge.outbox import Outbox
from ledger.envelope import utc_now
from tests.support.edge import outbox_depth, running_intake, stored_records


def air(i: int = 0) -> dict[str, object]:
    return {"station": "st-1", "observed_at": utc_now(), "pm25": float(i)}


async def test_concurrent_submissions_get_consecutive_seqs(tmp_path: Path) -> None:
    async with running_intake(tmp_path) as intake:
        results = await asyncio.gather(
            *[intake.submit([Draft("city.air-quality", air(i))]) for i in range(300)]
        )
    seqs = sorted(s.seq for r in results for s in r)
    assert seqs == list(range(1, 301))
    assert outbox_depth(tmp_path / "outbox.db") == 300


async def test_seq_continues_after_a_restart(tmp_path: Path) -> None:
    async with running_intake(tmp_path) as intake:
        await intake.submit([Draft("city.air-quality", air())] * 3)
    async with running_intake(tmp_path) as intake:
        (again,) = await intake.submit([Draft("city.air-quality", air())])
    assert again.seq == 4


async def test_one_bad_record_refuses_the_whole_submission(tmp_path: Path) -> None:
    async with running_intake(tmp_path) as intake:
        with pytest.raises(InvalidInput) as err:
            await intake.submit(
                [Draft("city.air-quality", air()), Draft("city.air-quality", {"pm25": 1})]
            )
        (ok,) = await intake.submit([Draft("city.air-quality", air())])
    assert err.value.reason == "invalid_payload"
    assert ok.seq == 1  # nothing was stored, no seq was used
    assert outbox_depth(tmp_path / "outbox.db") == 1


async def test_a_submission_that_cannot_be_sealed_fails_alone(tmp_path: Path) -> None:
    async with running_intake(tmp_path) as intake:
        bad = intake.submit([Draft("city.air-quality", air(), observed_at="2026-13-01T00:00:00Z")])
        good = intake.submit([Draft("city.air-quality", air())])
        results = await asyncio.gather(bad, good, return_exceptions=True)
    assert isinstance(results[0], InvalidInput)
    assert [s.seq for s in results[1]] == [1]  # type: ignore[union-attr]


async def test_an_ingest_key_is_stored_once(tmp_path: Path) -> None:
    async with running_intake(tmp_path) as intake:
        await intake.submit([Draft("city.air-quality", air())], ingest_key="file:x:1")
        with pytest.raises(AlreadyIngested):
            await intake.submit([Draft("city.air-quality", air())], ingest_key="file:x:1")
    assert outbox_depth(tmp_path / "outbox.db") == 1


async def test_big_bundles_are_validated_off_the_loop(tmp_path: Path) -> None:
    async with running_intake(tmp_path) as intake:
        stored = await intake.submit([Draft("city.air-quality", air(i)) for i in range(500)])
    assert len(stored) == 500
    records = stored_records(tmp_path / "outbox.db")
    assert [r["header"]["seq"] for r in records] == list(range(1, 501))
    box = Outbox(tmp_path / "outbox.db")
    assert box.last_seq() == 500
    box.close()
