"""Records through a real Mosquitto into a real hub: what an agent would see, on each
crypto suite (``suite_hub``: Ed25519 and SHA-256, or SM2 and SM3)."""

from __future__ import annotations

import asyncio
import base64

from ledger.checkpoint import NoteVerifier, verify_checkpoint
from ledger.envelope import SignedRecord, utc_now
from ledger.keys import generate_key, load_private_key
from ledger.proofs import verify_inclusion
from tests.support.hub import MqttPeer, ThreadHub, records_topic
from tests.support.records import PILOT, SOURCE, TOPIC, TYPE, edit, make


async def test_valid_records_are_accepted_and_provable(suite_hub: ThreadHub) -> None:
    running_hub = suite_hub
    tree = running_hub.suite.tree
    key_path, _ = running_hub.register_source(PILOT, SOURCE, [TYPE])
    key = load_private_key(key_path)
    verifier = NoteVerifier.parse(running_hub.log_key)
    assert verifier.suite is running_hub.suite
    async with MqttPeer(running_hub.mqtt_url) as peer:
        receipts = [await peer.send(make(key, seq)) for seq in range(1, 6)]
    assert [r["status"] for r in receipts] == ["accepted"] * 5
    for r in receipts:
        cp = verify_checkpoint(r["checkpoint"], verifier)
        assert cp.size > r["index"]
        proof = running_hub.get_json(
            f"/api/v1/ledger/proof/inclusion?index={r['index']}&size={cp.size}"
        )
        assert proof["leaf_hash"] == r["leaf_hash"]
        verify_inclusion(
            bytes.fromhex(r["leaf_hash"]),
            r["index"],
            cp.size,
            [bytes.fromhex(h) for h in proof["proof"]],
            cp.root_hash,
            tree,
        )
        page = running_hub.get_json(
            f"/api/v1/ledger/entries?start={r['index']}&end={r['index'] + 1}"
        )
        entry = page["entries"][0]
        assert entry["kind"] == "record"
        assert tree.leaf(base64.b64decode(entry["leaf"])).hex() == r["leaf_hash"]


async def test_every_bad_message_is_rejected_and_changes_nothing(suite_hub: ThreadHub) -> None:
    running_hub = suite_hub
    key_path, _ = running_hub.register_source(PILOT, SOURCE, [TYPE])
    other_path, _ = running_hub.register_source(PILOT, "station-2", [TYPE])
    key, other = load_private_key(key_path), load_private_key(other_path)
    stranger = generate_key(running_hub.suite)
    async with MqttPeer(running_hub.mqtt_url) as peer:
        first = await peer.send(make(key, 1))
        assert first["status"] == "accepted"
        size = running_hub.get_json("/api/v1/ledger/entries?start=0&end=0")["size"]
        good2 = make(key, 2)
        cases: list[tuple[str, bytes, str, str | None]] = [
            (
                "forged signature",
                edit(good2, "sig", sig=make(stranger, 2).sig),
                TOPIC,
                "bad_signature",
            ),
            ("wrong key (another source's)", make(other, 2).to_wire(), TOPIC, "unknown_key"),
            ("unknown key", make(stranger, 2).to_wire(), TOPIC, "unknown_key"),
            (
                "unknown source",
                make(key, 2, source="station-9").to_wire(),
                records_topic(PILOT, "station-9"),
                "unknown_source",
            ),
            (
                "unknown pilot",
                make(key, 2, pilot="mars").to_wire(),
                records_topic("mars", SOURCE),
                "unknown_pilot",
            ),
            (
                "topic spoofing",
                make(key, 2).to_wire(),
                records_topic(PILOT, "station-2"),
                "topic_mismatch",
            ),
            (
                "commitment mismatch",
                edit(good2, "body", payload={"pm25": 999}),
                TOPIC,
                "commitment_mismatch",
            ),
            ("reused seq", make(key, 1).to_wire(), TOPIC, "seq_reused"),
            ("oversize", b"{" + b" " * (300 * 1024) + b"}", TOPIC, "oversize"),
            ("malformed JSON", b'{"header": ', TOPIC, "malformed_json"),
            ("too deep", b"[" * 64 + b"]" * 64, TOPIC, "too_deep"),
            (
                "data type not allowed",
                make(key, 2, type="city.noise").to_wire(),
                TOPIC,
                "type_not_allowed",
            ),
            ("wrong JSON types", edit(good2, "header", seq="2"), TOPIC, "invalid_envelope"),
            (
                "observed in the future",
                make(key, 2, observed_at="9999-12-31T23:59:59Z").to_wire(),
                TOPIC,
                "observed_in_future",
            ),
            (
                "subject without consent",
                edit(good2, "header", subject="pseudonym-1"),
                TOPIC,
                "consent_required",
            ),
        ]
        got = {}
        for name, raw, topic, _ in cases:
            seen = len(peer.receipts)
            await peer.publish(topic, raw)
            await peer.wait_for(seen + 1)
            receipt_topic, receipt = peer.receipts[seen]
            # Answered on the receipts topic of the topic it came in on, never elsewhere.
            assert receipt_topic == topic.replace("/records", "/receipts"), name
            assert receipt["status"] == "rejected", (name, receipt)
            assert isinstance(receipt["detail"], str)
            got[name] = receipt["reason"]
        assert got == {name: reason for name, _, _, reason in cases}
        assert peer.by_id[None][0]["reason"] == "oversize"  # unparseable: id null

        # A replayed record: `duplicate` with the original index.
        replay = await peer.send(
            SignedRecord.model_validate_json(make(key, 1, record_id=first["id"]).to_wire())
        )
        assert (replay["status"], replay["index"]) == ("duplicate", first["index"])

        assert running_hub.get_json("/api/v1/ledger/entries?start=0&end=0")["size"] == size
        # ...and the hub keeps serving.
        assert (await peer.send(make(key, 2)))["status"] == "accepted"

    metrics = running_hub.get_text("/metrics")
    assert 'swiftchain_records_rejected_total{reason="bad_signature"} 1.0' in metrics
    letters = running_hub.get_json("/api/v1/admin/dead-letters?limit=100")["dead_letters"]
    assert {d["reason"] for d in letters} >= {"bad_signature", "oversize", "topic_mismatch"}


async def test_rotation_and_revocation_take_effect(suite_hub: ThreadHub) -> None:
    running_hub = suite_hub
    key_path, old_id = running_hub.register_source(PILOT, SOURCE, [TYPE])
    old = load_private_key(key_path)
    before_rotation = utc_now()
    new_path, new_id = running_hub.rotate_key(PILOT, SOURCE)
    new = load_private_key(new_path)
    async with MqttPeer(running_hub.mqtt_url) as peer:
        # An outbox record observed before the rotation still counts under the old key.
        assert (await peer.send(make(old, 1, observed_at=before_rotation)))["status"] == "accepted"
        late = await peer.send(make(old, 2))
        assert (late["status"], late["reason"]) == ("rejected", "key_not_valid")
        assert (await peer.send(make(new, 3)))["status"] == "accepted"
        running_hub.revoke_key(new_id)
        await asyncio.sleep(0.01)
        assert (await peer.send(make(new, 4)))["reason"] == "key_not_valid"
        running_hub.revoke_source(PILOT, SOURCE)
        assert (await peer.send(make(new, 5, observed_at=before_rotation)))[
            "reason"
        ] == "source_revoked"
    keys = running_hub.get_json(f"/api/v1/registry/keys?pilot={PILOT}&source={SOURCE}")["keys"]
    assert [k["key_id"] for k in keys] == [old_id, new_id]
    assert all(k["revoked_at"] for k in keys)
