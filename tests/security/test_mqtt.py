"""Hostile MQTT traffic against a live hub on a real Mosquitto: invalid UTF-8, JSON built to
hurt a parser, forged and replayed records, spoofed topics, a flood of garbage. Each is
answered with a ``rejected`` (or ``duplicate``) receipt on its own receipts topic and
leaves the log exactly as it was.

The single-message catalogue (forged signature, wrong or unknown key, unknown source or
pilot, a source's topic used by another, commitment mismatch, reused seq, oversize,
malformed, 64-deep JSON, wrong types, subject without consent, a replayed id) is
tests/integration/gateway/test_ingest.py; the broker's ACLs are
tests/integration/broker/test_mosquitto_acl.py. What follows goes beyond them.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from tests.support.hub import MqttPeer, ThreadHub, records_topic
from tests.support.records import PILOT, SOURCE, TOPIC, TYPE, make

from .conftest import AttackTally


def log_size(hub: ThreadHub) -> int:
    return int(hub.get_json("/api/v1/ledger/entries?start=0&end=0")["size"])


async def refused(peer: MqttPeer, topic: str, raw: bytes) -> dict[str, Any]:
    """Publish ``raw`` and return its receipt, which must be a rejection with a reason."""
    seen = len(peer.receipts)
    await peer.publish(topic, raw)
    await peer.wait_for(seen + 1, wait_s=10)
    receipt_topic, receipt = peer.receipts[seen]
    assert receipt_topic == topic.replace("/records", "/receipts")
    assert receipt["status"] == "rejected", receipt
    assert receipt["reason"] and isinstance(receipt["detail"], str), receipt
    return receipt


def splice(wire: bytes, old: bytes, new: bytes) -> bytes:
    assert old in wire
    return wire.replace(old, new, 1)


async def test_invalid_utf8_and_parser_bombs_are_rejected(
    running_hub: ThreadHub, attacks: AttackTally
) -> None:
    key_path, _ = running_hub.register_source(PILOT, SOURCE, [TYPE])
    from ledger.keys import load_private_key

    key = load_private_key(key_path)
    async with MqttPeer(running_hub.mqtt_url) as peer:
        assert (await peer.send(make(key, 1)))["status"] == "accepted"
        size = log_size(running_hub)
        good = make(key, 2, payload={"station": "x", "pm25": 1})
        wire = good.to_wire()
        nested = b'{"a":' * 5000 + b"1" + b"}" * 5000
        cases: dict[str, bytes] = {
            "bare invalid bytes": b"\xff\xfe\xfd\x00",
            "invalid UTF-8 inside a string": splice(wire, b'"station":"x"', b'"station":"\xff"'),
            "overlong UTF-8 '/'": splice(wire, b'"station":"x"', b'"station":"\xc0\xaf"'),
            "UTF-16 with BOM": wire.decode().encode("utf-16"),
            "lone surrogate escape": splice(wire, b'"station":"x"', b'"station":"\\ud800"'),
            "NUL in a key": splice(wire, b'"station":"x"', b'"sta\\u0000tion":"x"'),
            "5000-deep payload": splice(wire, b'"station":"x"', b'"station":' + nested),
            "huge exponent": splice(wire, b'"pm25":1', b'"pm25":1e999999'),
            "NaN": splice(wire, b'"pm25":1', b'"pm25":NaN'),
            "5 MB message": b'{"header":"' + b"A" * (5 * 1024 * 1024) + b'"}',
            "empty message": b"",
            "JSON array": b"[]",
            "JSON string": b'"header"',
        }
        for name, raw in cases.items():
            receipt = await refused(peer, TOPIC, raw)
            assert receipt.get("index") is None, name
        attacks.tried("invalid UTF-8 / parser bombs (MQTT)", len(cases))
        assert log_size(running_hub) == size
        # The hub still takes the good record.
        assert (await peer.send(good))["status"] == "accepted"


async def test_duplicate_keys_cannot_smuggle_an_unsigned_header(
    running_hub: ThreadHub, attacks: AttackTally
) -> None:
    key_path, _ = running_hub.register_source(PILOT, SOURCE, [TYPE])
    from ledger.keys import load_private_key

    key = load_private_key(key_path)
    good = make(key, 1)
    doc = json.loads(good.to_wire())
    evil = {**doc["header"], "seq": 99, "type": "city.noise"}
    header, body, sig = (json.dumps(doc[k]) for k in ("header", "body", "sig"))
    # A signed header first, an unsigned one after it: whichever a parser keeps, the hub
    # must not commit what the signature does not cover.
    raw = f'{{"header": {header}, "header": {json.dumps(evil)}, "body": {body}, "sig": {sig}}}'
    async with MqttPeer(running_hub.mqtt_url) as peer:
        await refused(peer, TOPIC, raw.encode())
        attacks.tried("duplicate JSON keys (MQTT)")
        assert log_size(running_hub) == 0 or all(
            e["kind"] != "record"
            for e in running_hub.get_json("/api/v1/ledger/entries?start=0&end=100")["entries"]
        )


async def test_replays_add_nothing(running_hub: ThreadHub, attacks: AttackTally) -> None:
    key_path, _ = running_hub.register_source(PILOT, SOURCE, [TYPE])
    running_hub.register_source(PILOT, "station-2", [TYPE])
    from ledger.keys import load_private_key

    key = load_private_key(key_path)
    record = make(key, 1)
    async with MqttPeer(running_hub.mqtt_url) as peer:
        first = await peer.send(record)
        assert first["status"] == "accepted"
        size = log_size(running_hub)
        # The same message twenty times at once: twenty duplicates, the original's index.
        for _ in range(20):
            await peer.publish(TOPIC, record.to_wire())
        await peer.wait_until(lambda: len(peer.by_id.get(record.header.id, [])) >= 21)
        again = peer.by_id[record.header.id][1:]
        assert {(r["status"], r["index"]) for r in again} == {("duplicate", first["index"])}
        # The signed header replayed with another body: the commitment gives it away.
        doc = json.loads(record.to_wire())
        doc["body"]["payload"] = {"pm25": 666}
        receipt = await refused(peer, TOPIC, json.dumps(doc).encode())
        assert receipt["reason"] == "commitment_mismatch"
        # ...with another salt and the same payload: the same.
        doc = json.loads(record.to_wire())
        doc["body"]["salt"] = "A" * 22
        assert (await refused(peer, TOPIC, json.dumps(doc).encode()))["reason"] == (
            "commitment_mismatch"
        )
        # Replayed through another registered source's topic.
        other = records_topic(PILOT, "station-2")
        assert (await refused(peer, other, record.to_wire()))["reason"] == "topic_mismatch"
        attacks.tried("replayed records (MQTT)", 23)
        assert log_size(running_hub) == size
        # The stored body is still the original's.
        stored = running_hub.hub.ledger.reader.body(first["index"])
        assert stored is not None and stored["payload"] == {"pm25": 1}


@pytest.mark.parametrize(
    "topic",
    [
        records_topic("city-air", "station-2"),  # another source of the same pilot
        records_topic("chronic-care", SOURCE),  # the same source name in another pilot
        records_topic("CITY-AIR", SOURCE),  # case games
        records_topic(PILOT, "station-1 "),
        records_topic(PILOT, "station-1%00"),
    ],
)
async def test_spoofed_topics_are_rejected(
    running_hub: ThreadHub, attacks: AttackTally, topic: str
) -> None:
    key_path, _ = running_hub.register_source(PILOT, SOURCE, [TYPE])
    running_hub.register_source(PILOT, "station-2", [TYPE])
    from ledger.keys import load_private_key

    record = make(load_private_key(key_path), 1)
    async with MqttPeer(running_hub.mqtt_url) as peer:
        await refused(peer, topic, record.to_wire())
        attacks.tried("spoofed topics (MQTT)")
        assert log_size(running_hub) == 0 or not any(
            e["kind"] == "record"
            for e in running_hub.get_json("/api/v1/ledger/entries?start=0&end=100")["entries"]
        )
        # The real owner's topic still works: nothing was burnt by the spoof.
        assert (await peer.send(record))["status"] == "accepted"


async def test_topics_outside_the_records_pattern_are_not_read(
    running_hub: ThreadHub, attacks: AttackTally
) -> None:
    key_path, _ = running_hub.register_source(PILOT, SOURCE, [TYPE])
    from ledger.keys import load_private_key

    record = make(load_private_key(key_path), 1)
    async with MqttPeer(running_hub.mqtt_url) as peer:
        size = log_size(running_hub)
        for topic in (
            TOPIC + "/extra",
            "swiftchain/v1/" + PILOT + "/records",
            "swiftchain/v2/" + PILOT + "/" + SOURCE + "/records",
            TOPIC.replace("/records", "/receipts"),  # a forged receipt is not a record
        ):
            await peer.publish(topic, record.to_wire())
        attacks.tried("records on foreign topics (MQTT)", 4)
        await asyncio.sleep(1.0)
        assert log_size(running_hub) == size
        assert (await peer.send(record))["status"] == "accepted"


async def test_a_flood_of_garbage_leaves_the_hub_serving(
    running_hub: ThreadHub, attacks: AttackTally
) -> None:
    key_path, _ = running_hub.register_source(PILOT, SOURCE, [TYPE])
    from ledger.keys import load_private_key

    key = load_private_key(key_path)
    flood = 2000  # bounded: a few seconds of garbage at full speed
    size = log_size(running_hub)
    async with MqttPeer(running_hub.mqtt_url) as peer:
        for i in range(flood):
            peer.publish_nowait(TOPIC, b'{"header": ' + str(i).encode())
        await peer.wait_for(flood, wait_s=60)
        assert {r["status"] for _, r in peer.receipts} == {"rejected"}
        attacks.tried("garbage flood messages (MQTT)", flood)
        assert log_size(running_hub) == size
        assert (await peer.send(make(key, 1)))["status"] == "accepted"
    running_hub.wait_ready()
    letters = running_hub.get_json("/api/v1/admin/dead-letters?limit=5")
    assert letters["dead_letters"]
