"""Patients' home devices: one per chronic-care patient, relayed by their hospital's agent.

A home device stands for one person, so its source id must never be published: its readings
are sealed by the device (its own key) and published by the hospital's *relay* agent
(``home-bp-gw-01`` at hospital A, ``home-bp-gw-02`` at hospital B) under the relay's source
and key (edge/relay.py). Device ids are opaque: ``hd-`` and 10 hex digits of an HMAC keyed
by the scenario's seed over the pilot and the patient's local id, so the same scenario
always has the same devices and nobody derives a device id from a patient's id (or back)
without the seed. Each device's Ed25519 key is derived from the seed and its id the same
way, so a replay needs no key files to be kept with the scenario.
"""

from __future__ import annotations

import hashlib
import hmac

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from .params import HOSPITAL_A
from .patients import Patient
from .scenario import Header, Scenario

#: A device id: ``hd-`` and this many hex digits.
DEVICE_ID_HEX = 10
#: The two hospitals' relay agents, by hospital.
RELAY_OF_HOSPITAL = {HOSPITAL_A: "home-bp-gw-01"}
OTHER_RELAY = "home-bp-gw-02"
RELAYS = ("home-bp-gw-01", "home-bp-gw-02")


def _secret(seed: int) -> bytes:
    return hashlib.sha256(f"swiftchain:{seed}:home-devices".encode()).digest()


def device_id(seed: int, pilot: str, patient: Patient) -> str:
    """The patient's home device's source id: opaque, the same for the same seed."""
    mac = hmac.new(_secret(seed), f"id\0{pilot}\0{patient.local_id}".encode(), hashlib.sha256)
    return "hd-" + mac.hexdigest()[:DEVICE_ID_HEX]


def relay_of(patient: Patient) -> str:
    """The relay agent of the patient's hospital: its source publishes the device's readings."""
    return RELAY_OF_HOSPITAL.get(patient.hospital, OTHER_RELAY)


def device_key(seed: int, device: str) -> Ed25519PrivateKey:
    """The device's signing key, derived from the seed and its id."""
    raw = hmac.new(_secret(seed), f"key\0{device}".encode(), hashlib.sha256).digest()
    return Ed25519PrivateKey.from_private_bytes(raw)


def device_ids(scenario: Scenario | Header) -> list[str]:
    """Every per-person device source id of a scenario (sorted): what must never appear in
    anything the hub serves."""
    header = scenario.header if isinstance(scenario, Scenario) else scenario
    return sorted({d.device for d in header.devices})
