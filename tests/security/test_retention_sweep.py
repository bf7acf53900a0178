"""A hostile body in a real ledger file must not stop the retention sweep.

Records that pass ingest can no longer carry a far-future ``observed_at``
(``observed_in_future``), so the bodies here are planted straight into the file, as a
ledger written before that check, or edited on disk, would hold them. The hub's own parts
(ledger, sequencer, access control) then sweep it for real: every other body due for
erasure is erased, in the same pilot and in the pilots swept after it."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.access.control import AccessControl
from gateway.access.retention import sweep
from gateway.hub import Hub
from gateway.settings import HubSettings
from ledger.datakeys import Scope
from ledger.entries import RegistryEntry
from ledger.envelope import seal, utc_now
from ledger.keys import Ed25519PrivateKey, generate_key, key_id, public_key_b64, write_key_pair
from ledger.keystore import KeyStore
from ledger.store import LedgerReader, NewEntry, RecordColumns
from ledger.verify import verify_ledger
from tests.support.ledger_builder import ORIGIN, LedgerBuilder, record_entry

from .conftest import AttackTally

LONG_AGO = "2000-01-01T00:00:00Z"
FAR_FUTURE = "9999-12-31T23:59:59Z"
#: Packaged pilots, swept in this order: air-quality (P10Y) comes before traffic-flow (P2Y).
AIR = ("air-quality", "aq-station-01", "city.air-quality")
TRAFFIC = ("traffic-flow", "tf-loop-01", "city.traffic-flow")


@dataclass
class Planted:
    """Record ids planted in the ledger file, by what they should become."""

    due: list[str]
    kept: list[str]


class Planter:
    """Writes registry entries and signed records into a ledger file, as the hub would,
    except that ``observed_at`` is whatever the test says."""

    def __init__(
        self, path: Path, hub_key: Ed25519PrivateKey, keys: KeyStore | None = None
    ) -> None:
        self.builder = LedgerBuilder(path, hub_key=hub_key, keys=keys)
        self.keys: dict[tuple[str, str], Ed25519PrivateKey] = {}
        self.seqs: dict[tuple[str, str], int] = {}

    def record(self, where: tuple[str, str, str], observed_at: str) -> str:
        pilot, source, data_type = where
        key = self.keys.get((pilot, source))
        if key is None:
            key = self.keys[(pilot, source)] = generate_key()
            entry = RegistryEntry(
                action="key.add",
                at=utc_now(),
                actor="test",
                pilot=pilot,
                source=source,
                key_id=key_id(key.public_key()),
                public_key=public_key_b64(key.public_key()),
                valid_from="1999-01-01T00:00:00Z",
            )
            self.builder.writer.append([NewEntry("registry", entry.leaf())])
        seq = self.seqs[(pilot, source)] = self.seqs.get((pilot, source), 0) + 1
        if observed_at.endswith("Z"):
            rec = seal(
                pilot=pilot,
                source=source,
                seq=seq,
                type=data_type,
                payload={"n": seq},
                signing_key=key,
                observed_at=observed_at,
            )
            self.builder.writer.append([record_entry(rec)])
            return rec.header.id
        # Not even a time: the records table holds what no envelope would.
        rec = seal(pilot=pilot, source=source, seq=seq, type=data_type, payload={}, signing_key=key)
        h = rec.header
        entry = record_entry(rec)
        columns = RecordColumns(
            h.id, h.pilot, h.source, h.seq, h.type, None, None, observed_at, h.key
        )
        self.builder.writer.append(
            [NewEntry("record", entry.leaf, entry.sig, columns, entry.payload, entry.salt)]
        )
        return h.id

    def close(self) -> None:
        self.builder.checkpoint()
        self.builder.close()


@pytest.fixture
def hub_dir(tmp_path: Path) -> Path:
    return tmp_path / "hub"


def settings_for(directory: Path) -> HubSettings:
    return HubSettings(
        origin=ORIGIN,
        db_path=directory / "ledger.db",
        signing_key=directory / "hub.key",
    )


def plant(directory: Path, bodies: list[tuple[tuple[str, str, str], str, bool]]) -> Planted:
    directory.mkdir(parents=True, exist_ok=True)
    hub_key = write_key_pair(directory / "hub.key")
    planter = Planter(directory / "ledger.db", hub_key)
    planted = Planted([], [])
    for where, observed_at, due in bodies:
        rid = planter.record(where, observed_at)
        (planted.due if due else planted.kept).append(rid)
    planter.close()
    return planted


async def swept(directory: Path) -> int:
    """One sweep by the hub's own parts over the file in ``directory``."""
    settings = settings_for(directory)
    hub = Hub(settings)
    access = AccessControl(settings)
    hub.open()
    try:
        access.open(hub)
        task = asyncio.create_task(hub.sequencer.run())
        try:
            return await sweep(hub, access, datetime.now(UTC))
        finally:
            hub.sequencer.close()
            await task
            access.close()
    finally:
        hub.close()


def bodies_held(directory: Path) -> set[str]:
    with LedgerReader(directory / "ledger.db") as reader:
        rows = reader.conn.execute(
            "SELECT r.id FROM records r JOIN bodies b ON b.idx = r.idx"
        ).fetchall()
    return {str(r[0]) for r in rows}


async def test_a_far_future_body_stops_no_sweep(hub_dir: Path, attacks: AttackTally) -> None:
    planted = plant(
        hub_dir,
        [
            (AIR, LONG_AGO, True),
            (AIR, FAR_FUTURE, False),
            (TRAFFIC, LONG_AGO, True),
            (TRAFFIC, "2001-06-01T00:00:00Z", True),
        ],
    )
    assert await swept(hub_dir) == len(planted.due)
    attacks.tried("a far-future body planted in the ledger file")
    assert bodies_held(hub_dir) == set(planted.kept)
    # The next sweep finds nothing more, and does not fail either.
    assert await swept(hub_dir) == 0
    report = verify_ledger(hub_dir / "ledger.db")
    assert report.ok, report.problems


async def test_one_pilots_bad_row_leaves_the_other_pilots_swept(
    hub_dir: Path, attacks: AttackTally, caplog: pytest.LogCaptureFixture
) -> None:
    planted = plant(
        hub_dir,
        [
            (AIR, "not-a-time", False),
            (TRAFFIC, LONG_AGO, True),
        ],
    )
    with caplog.at_level(logging.ERROR, logger="swiftchain.hub.retention"):
        assert await swept(hub_dir) == 1
    attacks.tried("a body with an unreadable observed_at planted in the ledger file")
    assert bodies_held(hub_dir) == set(planted.kept)
    failed = [r for r in caplog.records if "air-quality city.air-quality" in r.getMessage()]
    assert failed and failed[0].exc_info is not None


def plant_sealed(directory: Path) -> tuple[dict[str, int], list[str], str, int]:
    """Two traffic bodies long due and one not, sealed under the hub's key store (where it
    keeps it by default: beside the ledger), and a key a crash left without data (made,
    then the ledger's commit failed): (key id by record id, due, kept, the empty key's id)."""
    directory.mkdir(parents=True)
    hub_key = write_key_pair(directory / "hub.key")
    with KeyStore.open(directory / "ledger.db.keys") as keys:
        planter = Planter(directory / "ledger.db", hub_key, keys)
        due = [planter.record(TRAFFIC, f"2001-06-0{d}T08:00:00Z") for d in (1, 2)]
        kept = planter.record(TRAFFIC, utc_now())
        empty = keys.key_for(Scope(TRAFFIC[0], None, None, TRAFFIC[2], "2001-05-01"), create=True)
        assert empty is not None
        reader = planter.builder.writer
        sealed_under = {
            rid: int(
                reader.conn.execute(
                    "SELECT b.key_id FROM bodies b JOIN records r ON r.idx = b.idx WHERE r.id = ?",
                    (rid,),
                ).fetchone()[0]
            )
            for rid in (*due, kept)
        }
        planter.close()
    return sealed_under, due, kept, empty.id


async def test_a_sweep_destroys_the_keys_of_what_it_erased_and_the_empty_ones_of_days_past(
    hub_dir: Path,
) -> None:
    sealed_under, due, kept, empty = plant_sealed(hub_dir)
    assert await swept(hub_dir) == 2
    with KeyStore.open(hub_dir / "ledger.db.keys") as keys:
        assert keys.keys([sealed_under[r] for r in due]) == {}
        assert keys.keys([empty]) == {}
        assert list(keys.keys([sealed_under[kept]])) == [sealed_under[kept]]
        report = verify_ledger(hub_dir / "ledger.db", keys=keys)
    assert report.ok and report.erased == 2 and report.bodies == 1, report.problems
