"""The hub's parts on each crypto suite: the registry takes keys of the log's suite only, the
ingest checks commitments in its hash, the ledger opens in the hub key's suite (and a hub
whose key is of another suite than its ledger's refuses to start), the dashboard reads
openings in it, and a Consent's hash on the log is the suite's."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from gateway.access.consents import consent_bytes
from gateway.dashboard.tally import LogTally, consent_states, fold
from gateway.errors import ConfigError, RegistryError
from gateway.hub_ledger import open_ledger
from gateway.ingest.checks import Rejected, precheck, verify
from gateway.registry.changes import plan_key_rotate
from gateway.registry.state import Registry, parse_time
from gateway.settings import HubSettings
from ledger.canonical import canonical_json
from ledger.entries import AccessEntry, ConsentEntry, RegistryEntry
from ledger.envelope import MAX_RECORD_BYTES, seal
from ledger.keys import PrivateKey, generate_key, key_id, public_key_b64, write_key_pair
from ledger.queries import TailEntry
from ledger.store import SUITE_META, LedgerReader
from ledger.suite import ED25519_SHA256, SM2_SM3, Suite
from pilots import consent_hash, parse_consent
from tests.support.access import consent_document
from tests.support.registry import apply_all, registry_with

TOPIC = "swiftchain/v1/city-air/station-1/records"
RECEIVED = parse_time("2026-03-01T10:00:05Z")


def other_than(suite: Suite) -> Suite:
    return SM2_SM3 if suite is ED25519_SHA256 else ED25519_SHA256


def record_of(key: PrivateKey, seq: int = 1) -> bytes:
    return seal(
        pilot="city-air",
        source="station-1",
        seq=seq,
        type="city.air-quality",
        payload={"pm25": 4.2},
        signing_key=key,
        observed_at="2026-03-01T10:00:00Z",
    ).to_wire()


def checked(registry: Registry, raw: bytes) -> None:
    verify(precheck(TOPIC, raw, registry, max_bytes=MAX_RECORD_BYTES, received_at=RECEIVED))


def test_the_registry_takes_keys_of_its_suite_only(suite: Suite) -> None:
    mine = suite
    key = generate_key(mine)
    registry = registry_with(key, mine)
    (registered,) = registry.keys.values()
    assert registered.key_id == key_id(key.public_key())
    assert mine.owns(registered.public_key)
    signature = key.sign(b"header")
    assert registered.verifier.is_valid(signature, b"header")

    stranger = generate_key(other_than(mine)).public_key()
    with pytest.raises(RegistryError) as refused:
        plan_key_rotate(
            registry,
            pilot="city-air",
            source="station-1",
            public_key=public_key_b64(stranger),
            actor="test",
        )
    assert refused.value.code == "key_suite_mismatch"
    assert mine.name in refused.value.detail and other_than(mine).name in refused.value.detail


def test_a_key_entry_of_another_suite_registers_nothing() -> None:
    """Not one this hub plans; a log's verifier refuses it too: no record is accepted under
    it."""
    registry = Registry(suite=SM2_SM3)
    ed25519 = generate_key(ED25519_SHA256).public_key()
    entry = RegistryEntry(
        action="key.add",
        at="2026-01-01T00:00:00Z",
        actor="elsewhere",
        pilot="city-air",
        source="station-1",
        key_id=key_id(ed25519),
        public_key=public_key_b64(ed25519),
    )
    apply_all(registry, [entry])
    assert registry.keys == {} and registry.applied == 0


def test_ingest_checks_signatures_and_commitments_in_the_logs_suite(suite: Suite) -> None:
    mine = suite
    key = generate_key(mine)
    registry = registry_with(key, mine)
    checked(registry, record_of(key))
    # A key of the other suite is no key of this registry's, whichever it is.
    with pytest.raises(Rejected) as unknown:
        checked(registry, record_of(generate_key(other_than(mine))))
    assert unknown.value.reason == "unknown_key" and mine.name in unknown.value.detail
    # The same key registered on a log of the other suite (as a test only can): the
    # signature holds, the commitment in the other hash does not.
    elsewhere = Registry(registry.orgs, registry.sources, registry.keys, suite=other_than(mine))
    with pytest.raises(Rejected) as mismatch:
        checked(elsewhere, record_of(key))
    assert mismatch.value.reason == "commitment_mismatch"


def test_a_new_ledger_takes_the_hub_keys_suite_and_keeps_it(tmp_path: Path, suite: Suite) -> None:
    mine = suite
    write_key_pair(tmp_path / "hub.key", suite=mine)
    settings = HubSettings(db_path=tmp_path / "ledger.db", signing_key=tmp_path / "hub.key")
    ledger = open_ledger(settings)
    try:
        assert ledger.suite is mine and ledger.verifier.suite is mine
        assert ledger.registry.suite is mine
        assert ledger.writer.meta(SUITE_META) == mine.name
        assert ledger.writer.current_root() == mine.tree.empty_root
    finally:
        ledger.close()

    # Another kind of hub key: the hub refuses to start, naming both suites.
    write_key_pair(tmp_path / "hub.key", overwrite=True, suite=other_than(mine))
    with pytest.raises(ConfigError) as refused:
        open_ledger(settings)
    message = str(refused.value)
    assert f"is an {mine.name} log" in message
    assert f"{other_than(mine).key_kind} key, of suite {other_than(mine).name}" in message
    with LedgerReader(settings.db_path) as reader:
        assert reader.suite is mine and reader.size() == 0


def test_the_dashboard_opens_leaves_in_the_logs_suite(suite: Suite) -> None:
    mine = suite
    access = AccessEntry(
        at="2026-05-04T08:00:00Z",
        client="hospital-a-ehr",
        org="hospital-a",
        pilot="chronic-care",
        purpose="TREAT",
        type="fhir.Observation",
        subject="pt-7f3a9c21",
        decision="allow",
        reason="consent",
        request="GET /fhir/Observation",
    )
    leaf, opening = access.sealed(suite=mine)
    assert opening is not None
    row = TailEntry(0, "access", leaf, mine.tree.leaf(leaf), 0.0, opening=opening.encode())
    tally = LogTally(suite=mine)
    fold(tally, [row])
    assert tally.access[-1].subject is not None and tally.access[-1].reason == "consent"
    # Read in the other suite's hash the opening does not open: nobody named.
    blind = LogTally(suite=other_than(mine))
    fold(blind, [row])
    assert blind.access[-1].subject is None

    grant = ConsentEntry(
        action="grant",
        at="2026-05-04T08:00:00Z",
        actor="hospital-a",
        pilot="chronic-care",
        consent="c-1",
        subject="pt-7f3a9c21",
        status="active",
        resource_hash="0" * 64,
    )
    sealed, held = grant.sealed(suite=mine)
    assert held is not None
    assert consent_states([(0, sealed)], {0: held}, mine) == {"active": 1}
    assert consent_states([(0, sealed)], {0: held}, other_than(mine)) == {}


def test_a_consents_hash_is_the_logs_suites() -> None:
    consent = parse_consent(consent_document("c-bp-1", "pt-7f3a9c21", sources=["home-bp"]))
    sha, stored = consent_bytes(consent)
    assert sha == consent_hash(consent) == consent_bytes(consent, ED25519_SHA256)[0]
    sm3, same = consent_bytes(consent, SM2_SM3)
    assert same == stored and sm3 != sha
    assert sm3 == SM2_SM3.hexdigest(canonical_json(json.loads(stored)))
    assert sha == hashlib.sha256(canonical_json(json.loads(stored))).hexdigest()
