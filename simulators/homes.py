"""The scenario's home devices during a replay (:mod:`simulators.devices` names them): each
seals its patient's readings as a real one would, for its hospital's relay agent."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from edge.device import seal_reading
from edge.fhir import replace_patient
from ledger.keys import public_pem
from ledger.suite import Suite

from .devices import device_key
from .network import Network
from .scenario import Header, RecordEvent


class HomeDevices:
    """The scenario's home devices during a replay: each seals its patient's readings with
    its own key and counter, naming the patient by pseudonym, for its relay agent. Their
    keys are of ``suite`` (default: the network's, its hub's log's), as their relays' are."""

    def __init__(self, header: Header, network: Network, suite: Suite | None = None) -> None:
        self.header = header
        self.network = network
        self.suite = suite or network.suite
        self._keys = {
            d.device: device_key(header.seed, d.device, self.suite) for d in header.devices
        }
        self._seq: Counter[str] = Counter()

    def relay(self, event: RecordEvent) -> str | None:
        return self.header.relay(event.pilot, event.source)

    def write_keys(self, workdir: Path) -> dict[tuple[str, str], Path]:
        """Each relay's ``devices_dir``: its devices' public keys, ``<device>.pub``."""
        dirs: dict[tuple[str, str], Path] = {}
        for d in self.header.devices:
            where = dirs.setdefault(
                (d.pilot, d.relay), workdir / "devices" / f"{d.pilot}--{d.relay}"
            )
            where.mkdir(parents=True, exist_ok=True)
            pem = public_pem(self._keys[d.device].public_key())
            (where / f"{d.device}.pub").write_bytes(pem)
        return dirs

    def seal(self, event: RecordEvent) -> dict[str, Any]:
        """The device's sealed envelope of the event's reading (a JSON value)."""
        payload, subject = event.payload, None
        if event.patient is not None:
            pseudonyms = self.network.pseudonymiser_for(event.pilot)
            subject = pseudonyms.pseudonym(event.patient)
            payload = replace_patient(payload, event.patient, subject, pseudonyms.system, set())
        self._seq[event.source] += 1
        record = seal_reading(
            payload,
            pilot=event.pilot,
            source=event.source,
            seq=self._seq[event.source],
            signing_key=self._keys[event.source],
            type_id=event.type,
            subject=subject,
            consent=event.consent,
        )
        value: dict[str, Any] = json.loads(record.to_wire())
        return value
