"""Patients' home devices: one per chronic-care patient, relayed by their hospital's agent.

A home device stands for one person, so its source id must never be published: its readings
are sealed by the device (its own key) and published by the hospital's *relay* agent
(``home-bp-gw-01`` at hospital A, ``home-bp-gw-02`` at hospital B) under the relay's source
and key (edge/relay.py). Device ids are opaque: ``hd-`` and 10 hex digits of an HMAC keyed
by the scenario's seed over the pilot and the patient's local id, so the same scenario
always has the same devices and nobody derives a device id from a patient's id (or back)
without the seed. Each device's key, of the replay's crypto suite (an Ed25519 seed, or an
SM2 scalar), is derived from the seed and its id the same way, so a replay needs no key files
to be kept with the scenario. (The derivation is the simulator's own, no part of any log: it
is HMAC-SHA256 whatever the suite.)
"""

from __future__ import annotations

import hashlib
import hmac

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.errors import KeyFileError
from ledger.keys import PrivateKey, Sm2PrivateKey
from ledger.suite import DEFAULT_SUITE, SM2_SM3, Suite

from .errors import SimulatorError
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


#: Candidates tried for an SM2 scalar: one falls outside [1, n-2] with probability ~2^-32.
SM2_TRIES = 16


def device_key(seed: int, device: str, suite: Suite = DEFAULT_SUITE) -> PrivateKey:
    """The device's signing key of ``suite``, derived from the seed and its id: an Ed25519
    seed (RFC 8032: any 32 bytes), or the first of HMAC(secret, "sm2-key" || id || counter)
    that is an SM2 private key (GM/T 0003.1: a scalar in [1, n-2])."""
    secret = _secret(seed)
    if suite is not SM2_SM3:
        raw = hmac.new(secret, f"key\0{device}".encode(), hashlib.sha256).digest()
        return Ed25519PrivateKey.from_private_bytes(raw)
    for counter in range(SM2_TRIES):
        label = f"sm2-key\0{device}\0{counter}".encode()
        try:
            return Sm2PrivateKey(hmac.new(secret, label, hashlib.sha256).digest())
        except KeyFileError:
            continue
    raise SimulatorError(f"no SM2 key for device {device} in {SM2_TRIES} candidates")


def device_ids(scenario: Scenario | Header) -> list[str]:
    """Every per-person device source id of a scenario (sorted): what must never appear in
    anything the hub serves."""
    header = scenario.header if isinstance(scenario, Scenario) else scenario
    return sorted({d.device for d in header.devices})
