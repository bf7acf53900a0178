"""A hub's crypto suite end to end, through a real Mosquitto: an ``sm2-sm3`` hub takes SM2
records and receipts them under SM2 checkpoints of its SM3 tree, its API's proofs verify with
SM3, records and keys of the other suite are refused with a reason, the offline verifier
passes its ledger; and a hub whose key is of another suite than its ledger's does not start.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ledger.canonical import canonical_json
from ledger.checkpoint import NoteVerifier, verify_checkpoint
from ledger.envelope import SignedRecord
from ledger.errors import ProofError
from ledger.hashing import SHA256_TREE, SM3_TREE
from ledger.keys import (
    PrivateKey,
    Sm2PrivateKey,
    b64url_decode,
    b64url_encode,
    generate_key,
    key_id,
    load_private_key,
    raw_public,
    write_key_pair,
)
from ledger.policy import parse_policy
from ledger.proofs import verify_consistency, verify_inclusion
from ledger.suite import ED25519_SHA256, SM2_SM3, Suite
from ledger.tlogproof import verify_proof
from ledger.tree import root_of
from ledger.verify import verify_ledger
from tests.support.broker import Mosquitto
from tests.support.hub import STARTUP_S, MqttPeer, ThreadHub, process_hub, thread_hub
from tests.support.records import PILOT, SOURCE, TOPIC, TYPE, make


@pytest.fixture
def sm2_hub(tmp_path: Path, hub_broker: Mosquitto) -> Iterator[ThreadHub]:
    with thread_hub(tmp_path / "hub", hub_broker.url, suite=SM2_SM3, batch_max_ms=2) as hub:
        yield hub


def resigned(record: SignedRecord, key: PrivateKey, **header: Any) -> bytes:
    """``record`` with ``header`` members changed and its header signed again by ``key``."""
    doc = json.loads(record.to_wire())
    doc["header"].update(header)
    changed = SignedRecord.model_validate(doc)
    doc["sig"] = b64url_encode(key.sign(changed.header.canonical()))
    return json.dumps(doc).encode()


async def test_an_sm2_hub_logs_sm2_records_in_an_sm3_tree(sm2_hub: ThreadHub) -> None:
    hub = sm2_hub
    info = hub.get_json("/api/v1/ledger")
    assert info["suite"] == "sm2-sm3" and info["origin"] == "test.swiftchain/ledger"
    assert info["log_key"] == hub.log_key
    verifier = NoteVerifier.parse(hub.log_key)
    assert verifier.suite is SM2_SM3

    key_path, kid = hub.register_source(PILOT, SOURCE, [TYPE])
    key = load_private_key(key_path)
    assert isinstance(key, Sm2PrivateKey)
    # The key id is SM3's (docs/wire.md, "Crypto suites"); the registry serves the point.
    assert kid == SM3_TREE.digest(raw_public(key.public_key()))[:8].hex()
    (listed,) = hub.get_json(f"/api/v1/registry/keys?pilot={PILOT}&source={SOURCE}")["keys"]
    assert listed["key_id"] == kid and len(b64url_decode(listed["public_key"])) == 65

    async with MqttPeer(hub.mqtt_url) as peer:
        first = [await peer.send(make(key, seq)) for seq in range(1, 4)]
        second = [await peer.send(make(key, seq)) for seq in range(4, 8)]
    receipts = first + second
    assert [r["status"] for r in receipts] == ["accepted"] * 7, receipts
    earlier = verify_checkpoint(first[-1]["checkpoint"], verifier)
    for r in receipts:
        assert verify_checkpoint(r["checkpoint"], verifier).size > r["index"]

    # The latest checkpoint signs the SM3 tree of every leaf the API serves.
    checkpoint = verify_checkpoint(hub.get_text("/api/v1/ledger/checkpoint"), verifier)
    assert info["size"] < checkpoint.size == hub.get_json("/api/v1/ledger")["checkpoint_size"]
    page = hub.get_json(f"/api/v1/ledger/entries?start=0&end={checkpoint.size}")
    leaves = [base64.b64decode(e["leaf"]) for e in page["entries"]]
    assert len(leaves) == checkpoint.size
    assert checkpoint.root_hash == root_of([SM3_TREE.leaf(leaf) for leaf in leaves], SM3_TREE)
    assert checkpoint.root_hash != root_of([SHA256_TREE.leaf(leaf) for leaf in leaves])

    size, root = checkpoint.size, checkpoint.root_hash
    for r in receipts:
        leaf_hash = bytes.fromhex(r["leaf_hash"])
        assert (
            leaf_hash
            == SM3_TREE.leaf(leaves[r["index"]])
            == bytes.fromhex(page["entries"][r["index"]]["leaf_hash"])
        )
        proof = hub.get_json(f"/api/v1/ledger/proof/inclusion?index={r['index']}&size={size}")
        hashes = [bytes.fromhex(h) for h in proof["proof"]]
        verify_inclusion(leaf_hash, r["index"], size, hashes, root, SM3_TREE)
        with pytest.raises(ProofError):
            verify_inclusion(leaf_hash, r["index"], size, hashes, root, SHA256_TREE)

    assert 0 < earlier.size < size
    answer = hub.get_json(f"/api/v1/ledger/proof/consistency?first={earlier.size}&second={size}")
    hashes = [bytes.fromhex(h) for h in answer["proof"]]
    verify_consistency(earlier.size, size, hashes, earlier.root_hash, root, SM3_TREE)
    with pytest.raises(ProofError):
        verify_consistency(earlier.size, size, hashes, earlier.root_hash, root, SHA256_TREE)

    # A tlog-proof from the API verifies offline with the log's key (and so its suite).
    index = receipts[2]["index"]
    text = hub.get_text(f"/api/v1/ledger/proof/tlog?index={index}")
    policy = parse_policy(f"log {hub.log_key}\nquorum none\n")
    report = verify_proof(text, policy)
    assert report.ok, report.reasons()
    assert verify_proof(text, policy, leaf=leaves[index]).ok
    assert not verify_proof(text, policy, leaf=leaves[index - 1]).ok

    # The whole ledger verifies offline: SM2 signatures, SM3 tree and commitments.
    hub.stop()
    report_ledger = verify_ledger(hub.ledger_location)
    assert report_ledger.ok, report_ledger.problems
    assert report_ledger.suite == "sm2-sm3"
    assert report_ledger.records == report_ledger.signatures == 7
    with hub.key_store() as keys:
        opened = verify_ledger(hub.ledger_location, keys=keys)
    assert opened.ok and opened.unopened == 0 and opened.bodies == 7, opened


async def test_an_sm2_hub_refuses_records_of_the_other_suite(sm2_hub: ThreadHub) -> None:
    hub = sm2_hub
    key_path, _ = hub.register_source(PILOT, SOURCE, [TYPE])
    key = load_private_key(key_path)
    ed25519 = generate_key(ED25519_SHA256)
    before = hub.get_json("/api/v1/ledger")["size"]
    async with MqttPeer(hub.mqtt_url) as peer:
        # An agent on the other suite: its Ed25519 key's id is no key this registry holds.
        refused = await peer.send(make(ed25519, 1))
        assert (refused["status"], refused["reason"]) == ("rejected", "unknown_key")
        assert key_id(ed25519.public_key()) in refused["detail"]
        assert "sm2-sm3" in refused["detail"]

        # Signed with Ed25519 under the registered SM2 key's id: no SM2 signature of it.
        forged = resigned(make(key, 2), ed25519)
        seen = len(peer.receipts)
        await peer.publish(TOPIC, forged)
        await peer.wait_for(seen + 1)
        assert peer.receipts[seen][1]["reason"] == "bad_signature", peer.receipts[seen]

        # A good SM2 signature over a SHA-256 commitment (the other suite's hash).
        record = make(key, 3)
        salt = b64url_decode(record.body.salt)
        sha256 = hashlib.sha256(salt + canonical_json(record.body.payload)).hexdigest()
        seen = len(peer.receipts)
        await peer.publish(TOPIC, resigned(record, key, commitment=sha256))
        await peer.wait_for(seen + 1)
        assert peer.receipts[seen][1]["reason"] == "commitment_mismatch", peer.receipts[seen]

        assert hub.get_json("/api/v1/ledger")["size"] == before
        assert (await peer.send(make(key, 4)))["status"] == "accepted"


def test_a_source_key_of_the_other_suite_is_refused(suite_hub: ThreadHub, suite: Suite) -> None:
    hub = suite_hub
    mine = suite
    other = SM2_SM3 if mine is ED25519_SHA256 else ED25519_SHA256
    _, _, public = hub.new_key("other", suite=other)
    hub.add_org()
    body = {"pilot": PILOT, "source": SOURCE, "org": "test-org", "types": [TYPE]}
    status, answer = hub.request(
        "POST", "/api/v1/admin/registry/sources", {**body, "public_key": public}
    )
    assert status == 409, answer
    assert answer["error"] == "key_suite_mismatch"
    assert mine.name in answer["detail"] and other.name in answer["detail"]
    # Nothing was written; a key of the log's suite registers, and then rotating to a key
    # of the other suite is refused the same way.
    assert hub.get_json(f"/api/v1/registry/sources?pilot={PILOT}")["sources"] == []
    hub.register_source(PILOT, SOURCE, [TYPE])
    status, answer = hub.request(
        "POST",
        "/api/v1/admin/registry/keys/rotate",
        {"pilot": PILOT, "source": SOURCE, "public_key": public},
    )
    assert (status, answer["error"]) == (409, "key_suite_mismatch"), answer
    assert len(hub.get_json(f"/api/v1/registry/keys?pilot={PILOT}")["keys"]) == 1
    assert hub.get_json("/api/v1/ledger")["suite"] == suite.name


def test_a_hub_whose_key_is_of_another_suite_than_its_ledger_does_not_start(
    tmp_path: Path, hub_broker: Mosquitto, suite: Suite
) -> None:
    """The hub key's suite is the log's: with another kind of key than the one that made the
    ledger, ``swiftchain hub`` stops at once, naming both suites."""
    made, other = suite, (SM2_SM3 if suite is ED25519_SHA256 else ED25519_SHA256)
    with thread_hub(tmp_path / "hub", hub_broker.url, suite=made) as first:
        first.register_source(PILOT, SOURCE, [TYPE])
    hub = process_hub(tmp_path / "hub", hub_broker.url, workers=0)
    write_key_pair(hub.signing_key_path, overwrite=True, suite=other)
    hub.start(wait=False)
    assert hub.proc is not None
    code = hub.proc.wait(STARTUP_S)
    hub.proc = None
    log = hub.log_text()
    assert code != 0, log
    assert f"is an {made.name} log" in log and f"of suite {other.name}" in log, log
    assert "use the hub key that made the log" in log
    # The ledger is as it was: of its first suite still.
    assert verify_ledger(hub.ledger_location).suite == made.name
