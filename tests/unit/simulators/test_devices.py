"""Patients' home devices in a scenario: one each, opaque ids, keys of their own, readings
published only by their hospital's relay."""

from __future__ import annotations

import json
import re
from pathlib import Path

from edge.datatypes import TypeRegistry
from edge.drafts import drafts_from_json, prepare
from edge.relay import Relay
from ledger.keys import Ed25519PrivateKey, Sm2PrivateKey, load_public_key, raw_public
from ledger.suite import ED25519_SHA256, SM2_SM3, Suite
from simulators import build_scenario, device_ids
from simulators.devices import RELAYS, device_id, device_key
from simulators.homes import HomeDevices
from simulators.network import Network
from simulators.params import CHRONIC_CARE
from simulators.patients import roster
from simulators.scenario import RecordEvent, Scenario

#: GM/T 0003.5's n, the order of the SM2 curve's base point.
SM2_ORDER = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123


def _readings(s: Scenario) -> list[RecordEvent]:
    return [e for e in s.events if isinstance(e, RecordEvent) and e.pilot == CHRONIC_CARE]


def test_every_chronic_care_patient_has_a_device_of_their_own(demo: Scenario) -> None:
    by_patient: dict[str, set[str]] = {}
    for e in _readings(demo):
        assert e.patient is not None
        by_patient.setdefault(e.patient, set()).add(e.source)
    assert by_patient and all(len(devices) == 1 for devices in by_patient.values())
    devices = [next(iter(d)) for d in by_patient.values()]
    assert len(set(devices)) == len(devices)
    assert sorted(devices) == device_ids(demo)


def test_device_ids_are_opaque_and_follow_the_seed(demo: Scenario) -> None:
    for device in device_ids(demo):
        assert re.fullmatch(r"hd-[0-9a-f]{10}", device)
    patient = roster(7, 3)[0]
    assert device_id(7, CHRONIC_CARE, patient) == device_id(7, CHRONIC_CARE, patient)
    assert device_id(8, CHRONIC_CARE, patient) != device_id(7, CHRONIC_CARE, patient)
    digits = patient.local_id.split("-")[-1]
    assert digits not in device_id(7, CHRONIC_CARE, patient)


def test_each_device_is_relayed_by_its_hospitals_agent(demo: Scenario) -> None:
    header = demo.header
    published = {s.source for s in header.sources}
    hospital = {e.source: e.patient for e in _readings(demo)}
    for d in header.devices:
        assert d.relay in RELAYS and d.relay in published
        assert d.device not in published  # devices are never registered
        local = hospital[d.device]
        assert local is not None
        assert (d.relay == "home-bp-gw-01") == local.startswith("HOSP-A-")
    assert {d.relay for d in header.devices} == set(RELAYS)


def test_device_keys_are_deterministic_and_distinct(demo: Scenario, suite: Suite) -> None:
    devices = device_ids(demo)
    raw = {raw_public(device_key(7, d, suite).public_key()) for d in devices}
    assert len(raw) == len(devices)
    assert all(suite.owns(device_key(7, d, suite)) for d in devices[:5])
    again = raw_public(device_key(7, devices[0], suite).public_key())
    assert again == raw_public(device_key(7, devices[0], suite).public_key())
    assert again != raw_public(device_key(8, devices[0], suite).public_key())


def test_an_sm2_device_key_is_a_valid_scalar_derived_from_the_seed() -> None:
    key = device_key(7, "hd-0a1b2c3d4e", SM2_SM3)
    assert isinstance(key, Sm2PrivateKey)
    scalar = int.from_bytes(key.private_bytes_raw(), "big")
    assert 1 <= scalar <= SM2_ORDER - 2
    message = b"a reading"
    key.public_key().verify(key.sign(message), message)
    # Not the Ed25519 key's seed reused: the two suites' keys are derived apart.
    ed = device_key(7, "hd-0a1b2c3d4e", ED25519_SHA256)
    assert isinstance(ed, Ed25519PrivateKey)
    assert key.private_bytes_raw() != ed.private_bytes_raw()


def test_a_scenario_without_chronic_care_has_no_devices() -> None:
    city = build_scenario(pilots=["air-quality"], scale="small", hours=2)
    assert device_ids(city) == [] and city.header.devices == []


def test_every_device_reading_is_what_its_relay_accepts(tmp_path: Path, suite: Suite) -> None:
    scenario = build_scenario(scale="small", hours=6)
    network = Network("http://127.0.0.1:9", None, tmp_path, suite=suite)
    devices = HomeDevices(scenario.header, network)
    assert devices.suite is suite
    relays = {
        key: Relay(key[0], key[1], {p.stem: load_public_key(p) for p in d.glob("*.pub")}, suite)
        for key, d in devices.write_keys(tmp_path).items()
    }
    assert {relay for _, relay in relays} == set(RELAYS)
    registry = TypeRegistry(allowed=["fhir.Observation"])
    readings = _readings(scenario)
    assert readings
    for e in readings:
        relay = devices.relay(e)
        assert relay is not None
        (draft,) = drafts_from_json(devices.seal(e))
        prepared = prepare(draft, registry, None, None, relays[(e.pilot, relay)])
        assert e.patient is not None and prepared.relayed is not None
        assert prepared.subject == network.pseudonym(e.pilot, e.patient)
        assert prepared.consent == e.consent
        assert e.patient not in json.dumps(prepared.payload)
        assert prepared.relayed.device == e.source
