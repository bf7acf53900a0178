"""The scenario file: what happened in the city and the hospitals, one event a line.

Format ``swiftchain-scenario`` version 1 — NDJSON, UTF-8, ``\\n`` line ends:

* **Line 1, the header** (:class:`Header`)::

    {"format":"swiftchain-scenario","version":1,"seed":7,"scale":"default",
     "start":"2026-05-04T00:00:00Z","duration_s":86400,"pilots":[...],
     "generators":{"air-quality":"1",...},
     "sources":[{"pilot":"air-quality","source":"aq-station-01","org":"env-bureau",
                 "types":["city.air-quality"]},...],
     "clients":[{"client":"harbour-peoples-hospital-ehr","org":"harbour-peoples-hospital"},...],
     "counts":{"total":5123,"by_kind":{...},"by_pilot":{...},"by_type":{...}}}

  ``sources`` lists every ``(pilot, source)`` that emits records or consents, with the
  operating organisation and the types it emits: replay registers each and runs one edge
  agent per source with records. ``devices`` lists patients' home devices
  (``{"pilot","device","relay"}``): a record event whose ``source`` is a device is sealed by
  that device (its key derived from the seed, :mod:`simulators.devices`) and handed to the
  agent of its ``relay`` source, which publishes it under its own name; devices are never
  registered on the hub. A hospital EHR's ``fhir.Consent`` events go to the hub's
  consent API instead (as the pilot's consent administrator). ``clients`` are the
  organisations' API clients that the ``query`` events use.

  Replaying is a loop over the events: wait until ``t`` (scaled by the speed), then submit
  ``record`` events to their source's agent (:meth:`RecordEvent.submission` is exactly what
  the agent's intake takes: it pseudonymises ``patient`` and strips it from the payload),
  send consent events to the consent API (pseudonymising ``Consent.patient`` with the same
  pilot key first), and run ``query`` events as the named client, comparing the decision
  with ``payload.expect``.

* **Every further line, one event**, sorted by ``t`` (non-decreasing; ties keep the order
  the generators made them in). Every event has the same eight keys in this order::

    {"t":"2026-05-04T08:15:00Z","kind":"record","pilot":"traffic-flow",
     "source":"traffic-seg-03","type":"city.traffic-flow","patient":null,"consent":null,
     "payload":{...}}

  - ``t``: when the event reaches the network (RFC 3339 UTC, to the second). For readings
    this is the upload time; when the fact happened is inside the payload
    (``observed_at`` or the FHIR resource's ``effectiveDateTime``/``date``).
  - ``kind`` ``record`` (:class:`RecordEvent`): one record for the edge agent of
    ``(pilot, source)``. ``payload`` is the city sensor model (``edge.city`` shapes) or a
    FHIR R4B resource (``type`` is ``fhir.<resourceType>``). ``patient`` is the *local*
    hospital id (``HOSP-A-000123``) the agent pseudonymises; ``consent`` the id of the
    Consent covering it — both set for personal data, both null otherwise.
    :meth:`RecordEvent.submission` is exactly what an edge agent's intake takes.
  - ``kind`` ``consent.grant`` / ``consent.withdraw`` (:class:`ConsentEvent`): a FHIR R4B
    Consent recorded or withdrawn by the patient's hospital (``source`` is its EHR,
    ``type`` ``fhir.Consent``, ``consent`` its id). A grant's Consent ``provision.type``
    says permit or deny: a patient's *refusal* is a grant event of a deny Consent. A
    withdrawal carries the same Consent with ``status`` ``inactive``.
  - ``kind`` ``query`` (:class:`QueryEvent`): a scripted read for the demo's story:
    ``source`` is the querying client, ``type`` the data type asked for, ``patient`` the
    local id asked about (or null), ``payload`` a :class:`Query` with the organisation,
    purpose of use and the decision the story expects.

Equal inputs give byte-identical files: keys in model order, separators ``,`` and ``:``,
no NaN, floats rounded by the generators, no wall-clock time anywhere.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from ledger.envelope import FhirId, Slug, TypeId, UtcTimestamp, describe_validation_error

from .errors import SimulatorError

FORMAT: Literal["swiftchain-scenario"] = "swiftchain-scenario"
FORMAT_VERSION: Literal[1] = 1
#: A line longer than this is refused by the reader (a record is at most 256 KiB on the wire).
MAX_LINE_BYTES = 512 * 1024

#: A local hospital patient id, e.g. ``HOSP-A-000123`` (also a valid FHIR id).
LocalPatientId = Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9-]{2,63}$")]
PurposeOfUse = Literal["TREAT", "ETREAT", "PUBHLTH", "HRESCH"]
Count = Annotated[int, Field(ge=0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class SourceInfo(_Strict):
    """An edge source that replay runs one agent for."""

    pilot: Slug
    source: Slug
    org: Slug
    types: list[TypeId]


class DeviceInfo(_Strict):
    """A patient's home device: its readings reach the log through its hospital's relay."""

    pilot: Slug
    device: Slug
    #: The relay agent's source (one of ``sources``) that publishes the device's readings.
    relay: Slug


class ClientInfo(_Strict):
    """An organisation's API client that asks the scripted queries."""

    client: Slug
    org: Slug


class Counts(_Strict):
    total: Count
    by_kind: dict[str, Count]
    by_pilot: dict[str, Count]
    by_type: dict[str, Count]


class Header(_Strict):
    """Line 1 of a scenario file."""

    format: Literal["swiftchain-scenario"]
    version: Literal[1]
    seed: int
    scale: Annotated[str, Field(pattern=r"^[a-z0-9-]{1,32}$")]
    start: UtcTimestamp
    duration_s: Annotated[int, Field(gt=0, le=366 * 86_400)]
    pilots: list[Slug]
    #: Generator name -> version; a generator's version changes whenever its output does.
    generators: dict[str, str]
    sources: list[SourceInfo]
    clients: list[ClientInfo]
    counts: Counts
    #: Patients' home devices and the relays that publish their readings.
    devices: list[DeviceInfo] = Field(default_factory=list)

    def relay(self, pilot: str, source: str) -> str | None:
        """The relay source that publishes a device's readings; None for other sources."""
        for d in self.devices:
            if (d.pilot, d.device) == (pilot, source):
                return d.relay
        return None


class _Event(_Strict):
    t: UtcTimestamp
    pilot: Slug
    source: Slug
    type: TypeId


class RecordEvent(_Event):
    """One record for the edge agent of ``(pilot, source)``."""

    kind: Literal["record"]
    patient: LocalPatientId | None
    consent: FhirId | None
    payload: dict[str, Any]

    @model_validator(mode="after")
    def _personal_data_has_consent(self) -> RecordEvent:
        if (self.patient is None) != (self.consent is None):
            raise ValueError("patient and consent are both set (personal data) or both null")
        if self.type.startswith("fhir."):
            if self.payload.get("resourceType") != self.type[len("fhir.") :]:
                raise ValueError(f"payload.resourceType does not match type {self.type!r}")
        elif self.patient is not None:
            raise ValueError(f"{self.type} records are not about a person")
        return self

    def submission(self) -> dict[str, Any]:
        """The ``{"type", "payload", "patient"?, "consent"?}`` value an edge agent takes."""
        out: dict[str, Any] = {"type": self.type, "payload": self.payload}
        if self.patient is not None:
            out["patient"] = self.patient
            out["consent"] = self.consent
        return out


class ConsentEvent(_Event):
    """A FHIR Consent recorded (permit or deny) or withdrawn by the patient's hospital."""

    kind: Literal["consent.grant", "consent.withdraw"]
    type: Literal["fhir.Consent"]
    patient: LocalPatientId
    consent: FhirId
    payload: dict[str, Any]

    @model_validator(mode="after")
    def _is_that_consent(self) -> ConsentEvent:
        if self.payload.get("resourceType") != "Consent":
            raise ValueError("payload is a FHIR Consent")
        if self.payload.get("id") != self.consent:
            raise ValueError("payload.id is the event's consent id")
        withdrawn = self.payload.get("status") == "inactive"
        if withdrawn != (self.kind == "consent.withdraw"):
            raise ValueError("a withdrawal carries the Consent with status 'inactive'")
        return self


class Query(_Strict):
    """What a scripted query asks, why, and what the story expects to happen."""

    org: Slug
    purpose: PurposeOfUse
    #: Only data observed at or after this time (None: all).
    since: UtcTimestamp | None
    expect: Literal["allow", "deny"]
    #: One sentence for the demo's narration; never health data.
    story: Annotated[str, Field(min_length=1, max_length=300)]


class QueryEvent(_Event):
    kind: Literal["query"]
    patient: LocalPatientId | None
    consent: None
    payload: Query


Event = Annotated[RecordEvent | ConsentEvent | QueryEvent, Field(discriminator="kind")]
_EVENT: TypeAdapter[RecordEvent | ConsentEvent | QueryEvent] = TypeAdapter(Event)
#: Field order of every event line (the models declare ``kind`` after ``t``'s siblings).
EVENT_KEYS = ("t", "kind", "pilot", "source", "type", "patient", "consent", "payload")


class ScenarioError(SimulatorError, ValueError):
    """A scenario file cannot be read; the message names the file and the line."""

    def __init__(self, path: str, line: int, detail: str) -> None:
        super().__init__(f"{path}, line {line}: {detail}")
        self.path = path
        self.line = line
        self.detail = detail


# -- writing -------------------------------------------------------------------------------


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def encode_header(header: Header) -> str:
    """The header line (no newline)."""
    return _dumps(header.model_dump(mode="json"))


def encode_event(event: RecordEvent | ConsentEvent | QueryEvent) -> str:
    """One event line (no newline), keys in :data:`EVENT_KEYS` order."""
    data = event.model_dump(mode="json")
    return _dumps({k: data[k] for k in EVENT_KEYS})


def count_events(events: Iterable[RecordEvent | ConsentEvent | QueryEvent]) -> Counts:
    kinds: Counter[str] = Counter()
    pilots: Counter[str] = Counter()
    types: Counter[str] = Counter()
    for e in events:
        kinds[e.kind] += 1
        pilots[e.pilot] += 1
        types[e.type] += 1
    return Counts(
        total=sum(kinds.values()),
        by_kind=dict(sorted(kinds.items())),
        by_pilot=dict(sorted(pilots.items())),
        by_type=dict(sorted(types.items())),
    )


@dataclass(frozen=True)
class Scenario:
    """A header and its events, in file order."""

    header: Header
    events: list[RecordEvent | ConsentEvent | QueryEvent]

    def lines(self) -> Iterator[str]:
        """Every line of the file, each ending in ``\\n``."""
        yield encode_header(self.header) + "\n"
        for e in self.events:
            yield encode_event(e) + "\n"

    def to_bytes(self) -> bytes:
        return "".join(self.lines()).encode("utf-8")


def write_scenario(path: Path | str, scenario: Scenario) -> None:
    """Write atomically: a partial file never stands under ``path``."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.tmp")
    with tmp.open("w", encoding="utf-8", newline="\n") as out:
        out.writelines(scenario.lines())
    os.replace(tmp, target)


# -- reading -------------------------------------------------------------------------------


def _parse_line(raw: bytes, path: str, number: int) -> Any:
    if len(raw) > MAX_LINE_BYTES:
        raise ScenarioError(path, number, f"line is over {MAX_LINE_BYTES} bytes")
    if not raw.strip():
        raise ScenarioError(path, number, "blank line; every line is one JSON object")
    try:
        value = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ScenarioError(path, number, f"not UTF-8: {exc.reason}") from None
    except ValueError as exc:
        raise ScenarioError(path, number, f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ScenarioError(path, number, "a line is a JSON object")
    return value


def read_scenario(
    path: Path | str,
) -> tuple[Header, Iterator[RecordEvent | ConsentEvent | QueryEvent]]:
    """The header (read now) and an iterator over the events (read as you go).

    Raises :class:`ScenarioError` naming the line for anything wrong: the header at once,
    an event when the iterator reaches it (including events out of time order, and a file
    whose event count differs from the header's).
    """
    name = str(path)
    try:
        stream = Path(path).open("rb")
    except OSError as exc:
        raise ScenarioError(name, 0, f"cannot open: {exc.strerror}") from None
    try:
        first = stream.readline()
        if not first:
            raise ScenarioError(name, 1, f"empty file; the first line is a {FORMAT} header")
        value = _parse_line(first, name, 1)
        if value.get("format") != FORMAT:
            raise ScenarioError(name, 1, f"not a scenario file: the header's format is {FORMAT!r}")
        if value.get("version") != FORMAT_VERSION:
            raise ScenarioError(
                name, 1, f"format version {value.get('version')!r}; this reader reads 1"
            )
        try:
            header = Header.model_validate(value)
        except ValidationError as exc:
            raise ScenarioError(name, 1, describe_validation_error(exc)) from None
    except BaseException:
        stream.close()
        raise
    return header, _events(stream, name, header)


def _events(
    stream: Any, name: str, header: Header
) -> Iterator[RecordEvent | ConsentEvent | QueryEvent]:
    number = 1
    previous: tuple[datetime, str] | None = None
    with stream:
        for raw in stream:
            number += 1
            value = _parse_line(raw, name, number)
            try:
                event = _EVENT.validate_python(value)
            except ValidationError as exc:
                raise ScenarioError(name, number, describe_validation_error(exc)) from None
            moment = datetime.fromisoformat(event.t.replace("Z", "+00:00"))
            if previous is not None and moment < previous[0]:
                raise ScenarioError(
                    name,
                    number,
                    f"events are out of time order: {event.t} is before the line above's "
                    f"{previous[1]}",
                )
            previous = (moment, event.t)
            yield event
    if number - 1 != header.counts.total:
        raise ScenarioError(
            name,
            number,
            f"the header counts {header.counts.total} events but the file has {number - 1}",
        )
