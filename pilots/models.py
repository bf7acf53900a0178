"""A pilot definition: who takes part, what data flows, and who may read it for what.

Strict pydantic v2 models (unknown keys refused, no type coercion, bounded strings),
frozen because a loaded pilot is a value. Cross-references (a rule naming a role or a data
type the pilot does not define) are checked after the fields and reported as a
:class:`~pilots.errors.PilotDefinitionError` with the path of each bad reference, which the
loader turns into file:line:column.
"""

from __future__ import annotations

import difflib
import re
from collections import Counter
from collections.abc import Iterable
from datetime import timedelta
from functools import cached_property
from typing import Annotated, Any, Final, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    StringConstraints,
    model_validator,
)

from .errors import PilotDefinitionError, Problem
from .retention import Retention, parse_retention
from .terminology import BREAK_GLASS, PURPOSES_OF_USE, is_fhir_resource_type, is_loinc_code

T = TypeVar("T")


def _as_tuple(value: Any) -> Any:
    # YAML and JSON give lists; the models keep tuples so that a pilot is hashable and
    # immutable. Strict mode would otherwise refuse a list for a tuple.
    return tuple(value) if isinstance(value, list) else value


#: A list in the document, a tuple in the model.
Items = Annotated[tuple[T, ...], BeforeValidator(_as_tuple)]

Slug = Annotated[
    str, StringConstraints(pattern=r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$", max_length=64)
]
#: ``<namespace>.<name>``: ``city.air-quality``, ``fhir.Observation``, ``stats.bp-weekly``.
DataTypeId = Annotated[
    str, StringConstraints(pattern=r"^[a-z][a-z0-9]{0,15}\.[A-Za-z][A-Za-z0-9-]{0,62}$")
]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Text = Annotated[str, StringConstraints(max_length=4000)]

MemberKind = Literal[
    "city-bureau", "hospital", "research-institute", "operator", "company", "clinic"
]


def _purpose(code: str) -> str:
    if code not in PURPOSES_OF_USE:
        close = difflib.get_close_matches(code.upper(), PURPOSES_OF_USE, n=1)
        hint = (
            f"did you mean {close[0]}?"
            if close
            else ("examples: TREAT, CAREMGT, PUBHLTH, HRESCH, HOPERAT, HPAYMT, PATRQT")
        )
        raise ValueError(f"{code!r} is not an HL7 v3 PurposeOfUse code ({hint})")
    return code


def _loinc(code: str) -> str:
    if not is_loinc_code(code):
        raise ValueError(f"{code!r} is not a LOINC code (NNNNN-C with a correct check digit)")
    return code


PurposeOfUse = Annotated[str, AfterValidator(_purpose)]
LoincCode = Annotated[str, AfterValidator(_loinc)]
RetentionPeriod = Annotated[
    Retention,
    PlainValidator(parse_retention, json_schema_input_type=str | int),
    PlainSerializer(Retention.iso, return_type=str),
]


#: How long after a key's planned end (its ``valid_until``, or a rotation) a record signed
#: with it may still arrive. Ten minutes is the agent's longest republish interval
#: (``publish.republish_max``): a record in flight when the key ended gets at least one more
#: try inside the window. Older records are an agent's backlog, which it re-seals with its
#: new key on start; a longer window would only give a leaked old key more time.
DEFAULT_LATE_DELIVERY_WINDOW: Final = timedelta(minutes=10)
#: A late-delivery window is for records in flight, not for backlogs: at most an hour.
MAX_LATE_DELIVERY_WINDOW: Final = timedelta(hours=1)

# ISO 8601-1 §5.5.2.4 durations of exact length (days, hours, minutes, seconds): years and
# months are calendar lengths, meaningless for a window measured on the hub's clock.
_EXACT_DURATION = re.compile(
    r"^P(?!$)(?:(?P<days>\d{1,9})D)?(?:T(?=\d)(?:(?P<hours>\d{1,9})H)?"
    r"(?:(?P<minutes>\d{1,9})M)?(?:(?P<seconds>\d{1,9})S)?)?$"
)


def parse_late_delivery_window(value: object) -> timedelta:
    """``"PT10M"``, ``"PT90S"``, ``"PT0S"`` (no late records at all): at most an hour."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    else:
        m = _EXACT_DURATION.match(value) if isinstance(value, str) else None
        if m is None:
            raise ValueError(
                f"{value!r} is not an ISO 8601 duration of hours, minutes or seconds"
                " (examples: PT10M, PT90S, PT0S)"
            )
        n = {k: int(v) if v else 0 for k, v in m.groupdict().items()}
        seconds = n["days"] * 86400 + n["hours"] * 3600 + n["minutes"] * 60 + n["seconds"]
    if not 0 <= seconds <= MAX_LATE_DELIVERY_WINDOW.total_seconds():
        raise ValueError(
            "a late-delivery window is for records in flight: between PT0S and PT1H"
            " (an agent's backlog is re-sealed with its new key instead)"
        )
    return timedelta(seconds=seconds)


def duration_iso(window: timedelta) -> str:
    """A duration of whole seconds as ISO 8601 text (``PT10M``, ``PT1H``, ``PT0S``)."""
    h, rest = divmod(int(window.total_seconds()), 3600)
    mi, s = divmod(rest, 60)
    text = "".join(f"{n}{u}" for n, u in ((h, "H"), (mi, "M"), (s, "S")) if n)
    return "PT" + (text or "0S")


LateDeliveryWindow = Annotated[
    timedelta,
    PlainValidator(parse_late_delivery_window, json_schema_input_type=str),
    PlainSerializer(duration_iso, return_type=str),
]


def _no_duplicates(values: Iterable[str], what: str) -> None:
    repeated = sorted(v for v, n in Counter(values).items() if n > 1)
    if repeated:
        raise ValueError(f"{what} listed more than once: {', '.join(repeated)}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Role(_Strict):
    """A part an organisation plays in the pilot (``treating-hospital``, ``auditor``)."""

    id: Slug
    description: Text = ""


class Member(_Strict):
    """An organisation taking part, with the roles it holds."""

    org: Slug
    name: Name
    kind: MemberKind
    roles: Items[Slug] = Field(min_length=1)

    @model_validator(mode="after")
    def _distinct_roles(self) -> Member:
        _no_duplicates(self.roles, "role")
        return self


class DataType(_Strict):
    """A kind of record the pilot carries (the envelope's ``type``).

    ``fhir.<ResourceType>`` ids carry FHIR R4B resources of that type, optionally limited to
    the LOINC codes listed; every other namespace (``city.``, ``stats.``) carries a pilot's
    own model.
    """

    id: DataTypeId
    name: Name
    description: Text = ""
    #: Whether records of this type are about an identifiable person (carry a subject).
    personal: bool
    #: Whether a record needs the subject's active Consent to be ingested and read.
    consent_required: bool
    #: How long bodies are kept before they are erased.
    retention: RetentionPeriod
    #: For ``fhir.`` types: the resource type (defaults to the id's suffix, must match it).
    resource_type: str | None = None
    #: For ``fhir.`` types: the LOINC codes allowed in ``code`` (empty: any).
    loinc: Items[LoincCode] = ()

    @property
    def is_fhir(self) -> bool:
        return self.id.startswith("fhir.")

    @property
    def fhir_resource_type(self) -> str | None:
        return self.id.removeprefix("fhir.") if self.is_fhir else None

    @model_validator(mode="after")
    def _consistent(self) -> DataType:
        if self.consent_required and not self.personal:
            raise ValueError("consent_required is only for personal data: set personal: true")
        if self.is_fhir:
            suffix = self.id.removeprefix("fhir.")
            if not is_fhir_resource_type(suffix):
                raise ValueError(f"{suffix!r} is not a FHIR R4B resource type")
            if self.resource_type is not None and self.resource_type != suffix:
                raise ValueError(
                    f"resource_type {self.resource_type!r} does not match the id {self.id!r}"
                )
        elif self.resource_type is not None or self.loinc:
            raise ValueError("resource_type and loinc are only for fhir.<ResourceType> types")
        _no_duplicates(self.loinc, "LOINC code")
        return self


class ReadRule(_Strict):
    """Members holding ``role`` may read ``types`` for any of ``purposes``; with
    ``break_glass``, also for emergency treatment (ETREAT), flagged in the audit."""

    role: Slug
    types: Items[DataTypeId] = Field(min_length=1)
    purposes: Items[PurposeOfUse] = ()
    break_glass: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> ReadRule:
        if BREAK_GLASS in self.purposes:
            raise ValueError(
                f"{BREAK_GLASS} is break-glass: remove it from purposes, set break_glass: true"
            )
        if not self.purposes and not self.break_glass:
            raise ValueError("a read rule allows at least one purpose, or break_glass")
        _no_duplicates(self.types, "data type")
        _no_duplicates(self.purposes, "purpose")
        return self


class PublishRule(_Strict):
    """Sources of members holding ``role`` may publish records of ``types``."""

    role: Slug
    types: Items[DataTypeId] = Field(min_length=1)

    @model_validator(mode="after")
    def _distinct(self) -> PublishRule:
        _no_duplicates(self.types, "data type")
        return self


class ConsentRecordRule(_Strict):
    """Members holding ``role`` (a consent administrator role) may record Consents that
    cover ``types`` (data types that need consent)."""

    role: Slug
    types: Items[DataTypeId] = Field(min_length=1)

    @model_validator(mode="after")
    def _distinct(self) -> ConsentRecordRule:
        _no_duplicates(self.types, "data type")
        return self


#: What a break-glass (ETREAT) read meets when the patient's Consent was withdrawn: by
#: default the withdrawal is also a refusal of emergency access.
BreakGlassAfterWithdrawal = Literal["refuse", "allow"]


class Pilot(_Strict):
    """One demonstration-zone pilot: its members, data types and policies."""

    id: Slug
    name: Name
    description: Text = ""
    #: Where the pilot runs (the demonstration zone, district, or origin of its data).
    zone: Name
    roles: Items[Role] = Field(min_length=1)
    members: Items[Member] = Field(min_length=1)
    data_types: Items[DataType] = Field(min_length=1)
    read: Items[ReadRule] = ()
    publish: Items[PublishRule] = ()
    #: Roles whose members may create, update and withdraw Consents in this pilot.
    consent_administrators: Items[Slug] = ()
    #: Which consent administrator roles may record Consents for which data types; empty:
    #: every consent administrator role for every type that needs consent.
    record_consent: Items[ConsentRecordRule] = ()
    #: Whether an ETREAT read may go ahead when the patient's Consent was withdrawn.
    break_glass_after_withdrawal: BreakGlassAfterWithdrawal = "refuse"
    #: Roles whose members may read the access log about anyone in this pilot.
    auditors: Items[Slug] = ()
    #: How long after a source key's planned end (expiry or rotation) a record signed
    #: with it, and observed before that end, may still be received. Revoked keys get none.
    late_delivery_window: LateDeliveryWindow = DEFAULT_LATE_DELIVERY_WINDOW

    # Cached properties, not private attributes: pydantic reads a private attribute through
    # ``__getattr__``, 3.7 µs a lookup against 0.3 µs here, and one search's decision asks
    # three of them (bench/query.py).
    @cached_property
    def _members(self) -> dict[str, Member]:
        return {m.org: m for m in self.members}

    @cached_property
    def _types(self) -> dict[str, DataType]:
        return {t.id: t for t in self.data_types}

    def member(self, org: str) -> Member | None:
        return self._members.get(org)

    def data_type(self, type_id: str) -> DataType | None:
        return self._types.get(type_id)

    @model_validator(mode="after")
    def _references(self) -> Pilot:
        problems = list(_reference_problems(self))
        if problems:
            # Not a ValueError on purpose: pydantic lets it through unchanged, keeping the
            # path of each bad reference for the loader to turn into file:line:column.
            raise PilotDefinitionError(problems)
        return self


def _reference_problems(pilot: Pilot) -> Iterable[Problem]:
    def repeated(values: list[str], field: str, key: str) -> Iterable[Problem]:
        seen: set[str] = set()
        for i, v in enumerate(values):
            if v in seen:
                yield Problem((field, i, key), f"{key} {v!r} is defined more than once")
            seen.add(v)

    yield from repeated([r.id for r in pilot.roles], "roles", "id")
    yield from repeated([m.org for m in pilot.members], "members", "org")
    yield from repeated([t.id for t in pilot.data_types], "data_types", "id")

    roles = {r.id for r in pilot.roles}
    types = {t.id: t for t in pilot.data_types}

    def role_ref(role: str, path: tuple[str | int, ...]) -> Iterable[Problem]:
        if role not in roles:
            yield Problem(path, f"role {role!r} is not defined (roles: {', '.join(sorted(roles))})")

    def type_ref(type_id: str, path: tuple[str | int, ...]) -> Iterable[Problem]:
        if type_id not in types:
            yield Problem(
                path,
                f"data type {type_id!r} is not defined (data_types: {', '.join(sorted(types))})",
            )

    for i, m in enumerate(pilot.members):
        for j, role in enumerate(m.roles):
            yield from role_ref(role, ("members", i, "roles", j))
    rules: list[tuple[str, int, ReadRule | PublishRule]] = [
        *(("read", i, r) for i, r in enumerate(pilot.read)),
        *(("publish", i, r) for i, r in enumerate(pilot.publish)),
    ]
    for field, i, rule in rules:
        yield from role_ref(rule.role, (field, i, "role"))
        for j, type_id in enumerate(rule.types):
            yield from type_ref(type_id, (field, i, "types", j))
    for i, rule in enumerate(pilot.read):
        if rule.break_glass:
            for j, type_id in enumerate(rule.types):
                dt = types.get(type_id)
                if dt is not None and not dt.personal:
                    yield Problem(
                        ("read", i, "types", j),
                        f"break_glass is for personal data; {type_id!r} is not personal",
                    )
    for field in ("consent_administrators", "auditors"):
        for i, role in enumerate(getattr(pilot, field)):
            yield from role_ref(role, (field, i))
    yield from _record_consent_problems(pilot, roles, types)
    held = {role for m in pilot.members for role in m.roles}
    if any(t.consent_required for t in pilot.data_types) and not (
        held & set(pilot.consent_administrators)
    ):
        yield Problem(
            ("consent_administrators",),
            "some data types require consent, but no member holds a consent administrator "
            "role to record consents",
        )


def _record_consent_problems(
    pilot: Pilot, roles: set[str], types: dict[str, DataType]
) -> Iterable[Problem]:
    for i, rule in enumerate(pilot.record_consent):
        if rule.role not in roles:
            yield Problem(
                ("record_consent", i, "role"),
                f"role {rule.role!r} is not defined (roles: {', '.join(sorted(roles))})",
            )
        elif rule.role not in pilot.consent_administrators:
            yield Problem(
                ("record_consent", i, "role"),
                f"role {rule.role!r} records consents but is not among consent_administrators"
                f" ({', '.join(pilot.consent_administrators) or 'none'})",
            )
        for j, type_id in enumerate(rule.types):
            dt = types.get(type_id)
            if dt is None:
                yield Problem(
                    ("record_consent", i, "types", j),
                    f"data type {type_id!r} is not defined"
                    f" (data_types: {', '.join(sorted(types))})",
                )
            elif not dt.consent_required:
                yield Problem(
                    ("record_consent", i, "types", j),
                    f"data type {type_id!r} needs no consent (consent_required: false)",
                )
