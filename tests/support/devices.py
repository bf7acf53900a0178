"""Personal devices for relay tests: a device's key and source id, and envelopes it seals
(good ones, and each kind of bad one a relay must refuse)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from edge.relay import Relay
from ledger.envelope import seal
from ledger.keys import PrivateKey, generate_key
from ledger.suite import DEFAULT_SUITE, Suite, suite_of

from .drafts import observation

PILOT = "hospital-a"
RELAY_SOURCE = "ward-3"
SUBJECT = "a" * 64
CONSENT = "consent-1"


def reading(subject: str = SUBJECT) -> dict[str, Any]:
    """A heart-rate Observation as a device sends it: about ``Patient/<pseudonym>``."""
    return observation(subject)


@dataclass
class Device:
    source: str = "hd-0a1b2c3d4e"
    key: PrivateKey = field(default_factory=generate_key)
    seq: int = 0

    @classmethod
    def of(cls, suite: Suite, source: str = "hd-0a1b2c3d4e") -> Device:
        """A device with a new key of ``suite``."""
        return cls(source, generate_key(suite))

    def envelope(self, payload: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
        """The device's sealed reading (a JSON value, as it goes on the wire)."""
        self.seq += 1
        fields: dict[str, Any] = {
            "pilot": PILOT,
            "source": self.source,
            "seq": self.seq,
            "type": "fhir.Observation",
            "payload": reading() if payload is None else payload,
            "signing_key": self.key,
            "subject": SUBJECT,
            "consent": CONSENT,
            "observed_at": "2026-05-01T08:30:00Z",
        }
        fields.update(kw)
        value: dict[str, Any] = json.loads(seal(**fields).to_wire())
        return value


def relay_of(
    *devices: Device, pilot: str = PILOT, source: str = RELAY_SOURCE, suite: Suite | None = None
) -> Relay:
    """The relay of ``devices``, of ``suite`` (default: the first device's)."""
    if suite is None:
        suite = suite_of(devices[0].key) if devices else DEFAULT_SUITE
    return Relay(pilot, source, {d.source: d.key.public_key() for d in devices}, suite)
