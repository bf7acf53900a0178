"""The people of a scenario as an outsider must never see them: each patient's pseudonym in
each pilot (made as the demo's edge makes it, with the pilot's key from the run's ``keys/``),
each Consent id, each patient's local id and each per-person device's source id
(``simulators.device_ids``); and which of them a withdrawal with erasure was about."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import simulators
from edge.pseudonym import Pseudonymiser, load_pseudonym_key
from simulators.scenario import ConsentEvent, RecordEvent, Scenario

#: Before patients had home devices of their own (``simulators.device_ids``), the home
#: gateways that wrote their readings stood for them.
PERSONAL_SOURCE_PREFIXES = ("home-",)


@dataclass
class People:
    needles: dict[str, str] = field(default_factory=dict)
    """identifier -> what it is ("pseudonym of HOSP-A-000001 in chronic-care")."""
    pseudonyms: list[str] = field(default_factory=list)
    consents: list[str] = field(default_factory=list)
    devices: list[str] = field(default_factory=list)
    erased: dict[str, str] = field(default_factory=dict)
    """The identifiers of the people whose Consent was withdrawn with erasure, as above."""
    kept: list[str] = field(default_factory=list)
    """Erased people's pseudonyms not searched for in the hub's files: the person holds
    another Consent in that pilot, so the hub's private index rightly keeps the pseudonym."""


def personal_sources(scenario: Scenario) -> set[str]:
    """Source ids of the scenario's per-person devices."""
    listed = getattr(simulators, "device_ids", None)
    if listed is not None:
        return set(listed(scenario))
    return {
        e.source
        for e in scenario.events
        if isinstance(e, RecordEvent)
        and e.patient is not None
        and e.source.startswith(PERSONAL_SOURCE_PREFIXES)
    }


def device_of(scenario: Scenario, pilot: str, patient: str) -> str | None:
    """The patient's own home device in ``pilot``, if the scenario gives them one."""
    try:
        from simulators.devices import device_id
    except ImportError:
        return None
    device = device_id(scenario.header.seed, pilot, SimpleNamespace(local_id=patient))  # type: ignore[arg-type]
    return device if device in personal_sources(scenario) else None


def scenario_people(scenario: Scenario, keys: Path, *, erased_too: bool = True) -> People:
    """The identifiers of ``scenario``'s people, their pseudonyms made with the pilot keys in
    ``keys`` (``<pilot>.pseudonym-key``, as :class:`simulators.network.Network` writes them)."""
    people = People()
    pseudonymisers: dict[str, Pseudonymiser] = {}

    def pseudonym(pilot: str, patient: str) -> str:
        if pilot not in pseudonymisers:
            key = load_pseudonym_key(keys / f"{pilot}.pseudonym-key")
            pseudonymisers[pilot] = Pseudonymiser(key, pilot)
        return pseudonymisers[pilot].pseudonym(patient)

    about: set[tuple[str, str]] = set()
    consents: dict[tuple[str, str, str], bool] = {}
    """(pilot, patient, consent) -> withdrawn."""
    for e in scenario.events:
        patient = getattr(e, "patient", None)
        if patient is None:
            continue
        about.add((e.pilot, patient))
        consent = getattr(e, "consent", None)
        if consent is not None:
            key = (e.pilot, patient, consent)
            withdrawn = isinstance(e, ConsentEvent) and e.kind == "consent.withdraw"
            consents[key] = consents.get(key, False) or withdrawn
    for pilot, patient in sorted(about):
        name = pseudonym(pilot, patient)
        people.needles[name] = f"pseudonym of {patient} in {pilot}"
        people.pseudonyms.append(name)
        people.needles[patient] = f"local id of {patient}"
        device = device_of(scenario, pilot, patient)
        if device is not None:
            people.needles[device] = f"per-person device of {patient} in {pilot}"
    for (pilot, patient, consent), withdrawn in sorted(consents.items()):
        people.needles[consent] = f"Consent id of {patient} in {pilot}"
        people.consents.append(consent)
        if not (withdrawn and erased_too):
            continue
        people.erased[consent] = f"Consent id of {patient} in {pilot} (withdrawn, erased)"
        name = pseudonym(pilot, patient)
        others = [
            c for (p, who, c), w in consents.items() if (p, who) == (pilot, patient) and not w
        ]
        if others:
            people.kept.append(name)
        else:
            people.erased[name] = f"pseudonym of {patient} in {pilot} (withdrawn, erased)"
    for source in sorted(personal_sources(scenario)):
        people.devices.append(source)
        people.needles.setdefault(source, f"per-person device of a patient ({source})")
    return people


def sample(items: Iterable[str], n: int) -> list[str]:
    """``n`` of ``items`` spread over them (the first and last among them)."""
    listed = list(items)
    if len(listed) <= n:
        return listed
    step = (len(listed) - 1) / (n - 1)
    return [listed[round(i * step)] for i in range(n)]
