"""An outside auditor who trusts nothing but the hub's published key checks everything
from the HTTP API alone, with the ledger's pure functions: leaf hashes, the tree root under
the signed checkpoint, inclusion and consistency proofs, and every record signature
against the public registry."""

from __future__ import annotations

import base64
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ledger.checkpoint import NoteVerifier, verify_checkpoint
from ledger.envelope import check_signature, seal
from ledger.hashing import leaf_hash
from ledger.keys import load_private_key, public_key_from_b64
from ledger.proofs import verify_consistency, verify_inclusion
from ledger.tree import Frontier
from tests.support.broker import Mosquitto
from tests.support.hub import MqttPeer, ThreadHub, thread_hub


def get(base: str, path: str) -> Any:
    with urllib.request.urlopen(base + path, timeout=10) as resp:
        raw = resp.read()
        return (
            json.loads(raw)
            if resp.headers.get_content_type() == "application/json"
            else raw.decode()
        )


def audit(base: str, pinned_key: str) -> dict[str, int]:
    verifier = NoteVerifier.parse(pinned_key)
    assert get(base, "/api/v1/ledger/key").strip() == pinned_key
    cp = verify_checkpoint(get(base, "/api/v1/ledger/checkpoint"), verifier)
    entries: list[dict[str, Any]] = []
    while len(entries) < cp.size:
        page = get(
            base,
            f"/api/v1/ledger/entries?start={len(entries)}&end={min(cp.size, len(entries) + 7)}",
        )
        entries += page["entries"]
    frontier = Frontier()
    keys: dict[str, dict[str, Any]] = {}
    public = {k["key_id"]: k for k in get(base, "/api/v1/registry/keys")["keys"]}
    signatures = 0
    for i, e in enumerate(entries):
        assert e["index"] == i
        leaf = base64.b64decode(e["leaf"])
        lh = leaf_hash(leaf)
        assert lh.hex() == e["leaf_hash"]
        frontier.append(lh)
        body = json.loads(leaf)
        if e["kind"] == "registry" and body["action"] == "key.add":
            keys[body["key_id"]] = body
            assert public[body["key_id"]]["public_key"] == body["public_key"]
        elif e["kind"] == "record":
            key = keys[body["key"]]  # registered on the log before the record
            assert (key["pilot"], key["source"]) == (body["pilot"], body["source"])
            check_signature(leaf, e["sig"], public_key_from_b64(key["public_key"]))
            signatures += 1
        proof = get(base, f"/api/v1/ledger/proof/inclusion?index={i}&size={cp.size}")
        verify_inclusion(lh, i, cp.size, [bytes.fromhex(h) for h in proof["proof"]], cp.root_hash)
    assert frontier.root() == cp.root_hash
    return {"size": cp.size, "signatures": signatures}


@pytest.fixture
def running_hub(tmp_path: Path, hub_broker: Mosquitto) -> Iterator[ThreadHub]:
    """A hub that takes records about a person without a Consent: the auditor checks the
    log's shape, not the consent gate (no pilot of the hub defines the health records)."""
    with thread_hub(tmp_path / "hub", hub_broker.url, batch_max_ms=2, enforce_consent=False) as h:
        yield h


async def test_an_outside_auditor_needs_only_http(running_hub: ThreadHub) -> None:
    pinned = running_hub.log_key
    key_a, _ = running_hub.register_source("city-air", "station-1", ["city.air-quality"])
    key_b, _ = running_hub.register_source("health", "ward-3", ["fhir.Observation"])
    a, b = load_private_key(key_a), load_private_key(key_b)
    async with MqttPeer(running_hub.mqtt_url) as peer:
        for seq in range(1, 8):
            r = await peer.send(
                seal(
                    pilot="city-air",
                    source="station-1",
                    seq=seq,
                    type="city.air-quality",
                    payload={"v": seq},
                    signing_key=a,
                )
            )
            assert r["status"] == "accepted"
        first = audit(running_hub.http_url, pinned)
        old_note = get(running_hub.http_url, "/api/v1/ledger/checkpoint")
        for seq in range(1, 5):
            r = await peer.send(
                seal(
                    pilot="health",
                    source="ward-3",
                    seq=seq,
                    type="fhir.Observation",
                    payload={
                        "resourceType": "Observation",
                        "subject": {"reference": "Patient/patient-pseudonym-1"},
                    },
                    subject="patient-pseudonym-1",
                    consent="consent-1",
                    signing_key=b,
                )
            )
            assert r["status"] == "accepted"
    second = audit(running_hub.http_url, pinned)
    assert first["signatures"] == 7 and second["signatures"] == 11
    # The log only grew: the old checkpoint is a prefix of the new one.
    verifier = NoteVerifier.parse(pinned)
    old = verify_checkpoint(old_note, verifier)
    new = verify_checkpoint(get(running_hub.http_url, "/api/v1/ledger/checkpoint"), verifier)
    proof = get(
        running_hub.http_url, f"/api/v1/ledger/proof/consistency?first={old.size}&second={new.size}"
    )
    verify_consistency(
        old.size, new.size, [bytes.fromhex(h) for h in proof["proof"]], old.root_hash, new.root_hash
    )
