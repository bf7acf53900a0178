"""What a revoked or rotated-out key can still do, against a live hub on a real Mosquitto:
nothing after a revocation, whatever ``observed_at`` it claims; after a rotation, only
records in flight within the pilot's late-delivery window. A far-future ``observed_at``
is refused at the door (``observed_in_future``), never stored. And the honest side: an
agent that was offline for a week across a rotation still delivers all of its backlog."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path

import pytest

from edge.drafts import Prepared
from edge.outbox import Outbox
from edge.receipts import ProofPolicy, Receipt, ReceiptJudge
from edge.settings import load_settings
from edge.signer import Signer
from ledger.checkpoint import NoteVerifier
from ledger.envelope import parse_record, utc_now
from ledger.keys import load_private_key
from ledger.store import LedgerReader
from tests.support.broker import Mosquitto
from tests.support.edge import drained, running_agent, write_edge_config
from tests.support.hub import MqttPeer, ThreadHub, records_topic, thread_hub
from tests.support.records import PILOT, SOURCE, TYPE, make

from .conftest import AttackTally


def log_size(hub: ThreadHub) -> int:
    return int(hub.get_json("/api/v1/ledger/entries?start=0&end=0")["size"])


def ago(delta: timedelta) -> str:
    return (datetime.now(UTC) - delta).isoformat(timespec="seconds").replace("+00:00", "Z")


async def test_a_revoked_key_lands_no_backdated_record(
    running_hub: ThreadHub, attacks: AttackTally
) -> None:
    # A key registered a year ago, so 90-day-old "observations" are inside its validity.
    key_path, kid = running_hub.register_source(
        PILOT, SOURCE, [TYPE], valid_from=ago(timedelta(days=365))
    )
    key = load_private_key(key_path)
    async with MqttPeer(running_hub.mqtt_url) as peer:
        assert (await peer.send(make(key, 1)))["status"] == "accepted"
        running_hub.revoke_key(kid)
        size = log_size(running_hub)
        backdated = {
            "a minute back": make(key, 2, observed_at=ago(timedelta(minutes=1))),
            "90 days back": make(key, 3, observed_at=ago(timedelta(days=90))),
            "before the key": make(key, 4, observed_at=ago(timedelta(days=400))),
        }
        for name, record in backdated.items():
            receipt = await peer.send(record)
            assert (receipt["status"], receipt.get("reason")) == ("rejected", "key_not_valid"), (
                name,
                receipt,
            )
            assert "revoked" in receipt["detail"]
        attacks.tried("backdated records under a revoked key (MQTT)", len(backdated))
    assert log_size(running_hub) == size


async def test_a_far_future_observed_at_is_refused(
    running_hub: ThreadHub, attacks: AttackTally
) -> None:
    key_path, _ = running_hub.register_source(PILOT, SOURCE, [TYPE])
    key = load_private_key(key_path)
    async with MqttPeer(running_hub.mqtt_url) as peer:
        assert (await peer.send(make(key, 1)))["status"] == "accepted"
        size = log_size(running_hub)
        ahead = {
            "the last second of 9999": "9999-12-31T23:59:59Z",
            "next year": ago(timedelta(days=-365)),
            "an hour ahead": ago(timedelta(hours=-1)),
        }
        for seq, (name, when) in enumerate(ahead.items(), start=2):
            receipt = await peer.send(make(key, seq, observed_at=when))
            assert (receipt["status"], receipt.get("reason")) == (
                "rejected",
                "observed_in_future",
            ), (name, receipt)
        attacks.tried("far-future observed_at (MQTT)", len(ahead))
        assert log_size(running_hub) == size
        # A gateway clock a minute fast is within the default five minutes' skew.
        fast = await peer.send(make(key, 9, observed_at=ago(timedelta(minutes=-1))))
        assert fast["status"] == "accepted"


@pytest.fixture
def strict_hub(tmp_path: Path, hub_broker: Mosquitto) -> Iterator[ThreadHub]:
    """A hub whose air-quality pilot allows no late delivery at all (``PT0S``)."""
    definitions = tmp_path / "pilots"
    definitions.mkdir()
    packaged = resources.files("pilots.definitions") / "air-quality.yaml"
    (definitions / "air-quality.yaml").write_text(
        packaged.read_text() + "\nlate_delivery_window: PT0S\n"
    )
    with thread_hub(
        tmp_path / "hub", hub_broker.url, batch_max_ms=2, pilot_definitions=str(definitions)
    ) as hub:
        yield hub


async def test_a_rotated_out_key_gets_only_its_pilots_window(
    strict_hub: ThreadHub, attacks: AttackTally
) -> None:
    pilot, source, data_type = "air-quality", "aq-station-01", "city.air-quality"
    old_path, _ = strict_hub.register_source(pilot, source, [data_type])
    old = load_private_key(old_path)
    before = utc_now()
    new_path, _ = strict_hub.rotate_key(pilot, source)
    new = load_private_key(new_path)
    topic = records_topic(pilot, source)
    fields = {"pilot": pilot, "source": source, "type": data_type}
    async with MqttPeer(strict_hub.mqtt_url) as peer:
        late = await peer.send(make(old, 1, observed_at=before, **fields), topic)
        assert (late["status"], late.get("reason")) == ("rejected", "key_not_valid"), late
        assert "PT0S" in late["detail"]
        attacks.tried("a rotated-out key past its pilot's window (MQTT)")
        # What the agent does with it: the same record, re-sealed with the new key, lands.
        resealed = await peer.send(make(new, 1, observed_at=before, **fields), topic)
        assert resealed["status"] == "accepted"


async def test_an_agent_offline_for_a_week_delivers_its_backlog_after_a_rotation(
    tmp_path: Path, running_hub: ThreadHub
) -> None:
    """The honest path: the station was cut off for a week; four days ago its operator
    rotated its key (planned). Its outbox holds a week of records sealed with the old key,
    one that landed before the cut but whose receipt was lost, and one the hub refused
    for its key. Started with the new key, the agent re-seals them all and delivers."""
    old_path, old_id = running_hub.register_source(
        PILOT, SOURCE, [TYPE], valid_from=ago(timedelta(days=30))
    )
    old = Signer(PILOT, SOURCE, load_private_key(old_path))
    week = [
        old.seal(Prepared(TYPE, {"pm25": day}, None, None, ago(timedelta(days=7 - day))), day)
        for day in range(1, 8)
    ]
    # Record 1 reached the ledger before the link went down; its receipt never came back.
    async with MqttPeer(running_hub.mqtt_url) as peer:
        assert (await peer.send(parse_record(week[0].wire)))["status"] == "accepted"
    new_path, new_id, public = running_hub.new_key("rotated")
    running_hub.admin(
        "keys/rotate",
        {
            "pilot": PILOT,
            "source": SOURCE,
            "public_key": public,
            "valid_from": ago(timedelta(days=4)),
        },
    )

    config = write_edge_config(
        tmp_path / "edge",
        pilot=PILOT,
        source=SOURCE,
        key_file=new_path,
        broker_url=running_hub.mqtt_url,
        hub_url=running_hub.http_url,
        hub_key=running_hub.log_key,
        publish={"republish_after": 2.0, "republish_max": 4.0},
    )
    settings = load_settings(config)
    box = Outbox(settings.outbox_path)
    try:
        box.store(week)
        # Record 7 was refused for its key on an earlier try: a dead letter.
        judge = ReceiptJudge(NoteVerifier.parse(running_hub.log_key), ProofPolicy("never"))
        refused = Receipt(id=week[6].id, status="rejected", reason="key_not_valid", detail="old")
        box.settle([refused], judge)
        assert box.depth() == 6
    finally:
        box.close()

    async with running_agent(settings) as agent:
        await drained(agent)
    box = Outbox(settings.outbox_path)
    try:
        dead = box.conn.execute("SELECT count(*) FROM dead_letters").fetchone()[0]
    finally:
        box.close()
    assert dead == 0
    with LedgerReader(running_hub.db_path) as ledger:
        rows = ledger.conn.execute(
            "SELECT seq, key FROM records WHERE pilot = ? AND source = ? ORDER BY seq",
            (PILOT, SOURCE),
        ).fetchall()
    assert [seq for seq, _ in rows] == list(range(1, 8))
    assert [key for _, key in rows] == [old_id] + [new_id] * 6
