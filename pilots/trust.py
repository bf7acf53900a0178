"""The alliance's trust policy as a file: YAML in the pilot definitions' style, or the text
form of c2sp.org/tlog-policy. Both load into a :class:`ledger.policy.TrustPolicy`, with every
problem at file:line:column like a pilot definition's (:mod:`pilots.loader`).

The YAML form::

    description: Harbour City alliance ledger
    log:
      key: harbour.swiftchain/ledger+1a2b3c4d+AX...     # the hub's note verifier key
    witnesses:
      - name: cdc-1                                      # default: the key's name
        key: witness.harbour-cdc.example+5e6f7a8b+BK...  # a cosignature/v1 vkey
        operator: harbour-cdc                            # the member organisation
        url: https://witness.harbour-cdc.example
    groups:
      - name: two-organisations
        threshold: 2                                     # a number, any or all
        members: [harbour-cdc, harbour-peoples-hospital, seaview-clinic]
    quorum: two-organisations                            # or a witness, or none

A group member names a witness, a group defined above it, or a member organisation that
operates witnesses: the organisation then stands for "any one of its witnesses", so a quorum
of organisations is a group of their ids. Every rule of tlog-policy holds
(:class:`ledger.policy.PolicyBuilder`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, StringConstraints

from ledger.checkpoint import NoteVerifier
from ledger.cosignature import CosignerVerifier
from ledger.errors import CheckpointError, PolicyError
from ledger.policy import NONE, KnockOn, PolicyBuilder, TrustPolicy, parse_policy

from .errors import PilotDefinitionError, Problem
from .loader import Positions, load_model, place
from .models import Items, Slug, Text

__all__ = [
    "TrustPolicyDocument",
    "is_trust_policy",
    "load_trust_policy",
    "load_trust_policy_text",
]

#: A name in a policy: no whitespace (tlog-policy, "Structure").
PolicyName = Annotated[str, StringConstraints(pattern=r"^[^\s]+$", max_length=200)]
KeyText = Annotated[str, StringConstraints(min_length=1, max_length=512)]
Url = Annotated[str, StringConstraints(pattern=r"^[^\s]+$", max_length=2048)]

_SUFFIX_TEXT = (".policy", ".tlog-policy", ".txt")
_TEXT_LINE = re.compile(rb"^[ \t]*(log|witness|group|quorum)[ \t]")
_YAML_QUORUM = re.compile(rb"(?m)^quorum[ \t]*:")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class LogDefinition(_Strict):
    key: KeyText
    """The log's note verifier key ``<origin>+<hex key hash>+<base64(0x01 || key)>``."""
    origin: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    """The checkpoint origin; when given it must be the key's name."""
    url: Url | None = None


class WitnessDefinition(_Strict):
    name: PolicyName | None = None
    key: KeyText
    """A cosignature/v1 verifier key ``<name>+<hex key ID>+<base64(0x04 || key)>``."""
    operator: Slug | None = None
    """The member organisation that runs this witness (``org`` of a pilot's members)."""
    url: Url | None = None


def _threshold(value: object) -> int | Literal["any", "all"]:
    if value in ("any", "all") and isinstance(value, str):
        return "any" if value == "any" else "all"
    if type(value) is int and 1 <= value <= 100_000:
        return value
    raise ValueError(f"{value!r} is not a threshold: a whole number k >= 1, any or all")


class GroupDefinition(_Strict):
    name: PolicyName
    threshold: Annotated[int | Literal["any", "all"], PlainValidator(_threshold)]
    members: Annotated[Items[PolicyName], Field(min_length=1)]


class TrustPolicyDocument(_Strict):
    description: Text = ""
    log: LogDefinition | None = None
    witnesses: Items[WitnessDefinition] = ()
    groups: Items[GroupDefinition] = ()
    quorum: PolicyName


def is_trust_policy(path: str | Path, raw: bytes) -> bool:
    """Does this file hold a trust policy (rather than a pilot definition)? The text form by
    its suffix or its first line; the YAML form by its top-level ``quorum:`` key."""
    if Path(path).suffix in _SUFFIX_TEXT:
        return True
    return _text_form(raw) or bool(_YAML_QUORUM.search(raw))


def _text_form(raw: bytes) -> bool:
    """Is the first line that is not blank or a comment a tlog-policy keyword line?"""
    for line in raw.splitlines():
        if line.strip() and not line.lstrip().startswith(b"#"):
            return bool(_TEXT_LINE.match(line))
    return False


def load_trust_policy(path: str | Path) -> TrustPolicy:
    """Read a trust policy file: YAML (``.yaml``/``.yml``) or tlog-policy text (anything
    else). PilotDefinitionError lists every problem with its file:line:column."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise PilotDefinitionError(
            [Problem((), f"cannot read: {exc.strerror}", file=str(p))]
        ) from None
    return load_trust_policy_text(raw, str(p), yaml=p.suffix in (".yaml", ".yml"))


def load_trust_policy_text(
    text: str | bytes, file: str = "<string>", *, yaml: bool | None = None
) -> TrustPolicy:
    """Read a trust policy given as text; ``yaml`` None guesses the form (a text-form
    keyword on the first line: text; otherwise YAML)."""
    raw = text.encode() if isinstance(text, str) else text
    if yaml is None:
        yaml = not _text_form(raw)
    if not yaml:
        try:
            return parse_policy(raw, file=file)
        except PolicyError as exc:
            raise PilotDefinitionError(
                [
                    Problem((), message, file=file, line=line, column=1 if line else None)
                    for line, message in exc.problems
                ]
            ) from None
    document, positions = load_model(
        raw, file, TrustPolicyDocument, "a trust policy is a mapping of keys (log, witnesses, ...)"
    )
    return _build(document, file, positions)


def _build(document: TrustPolicyDocument, file: str, positions: Positions) -> TrustPolicy:
    """The semantic checks, each problem at the place in the document it is about."""
    builder = PolicyBuilder()
    problems: list[Problem] = []

    def attempt(
        path: tuple[str | int, ...], defines: str | None, step: Callable[..., object], *args: object
    ) -> bool:
        try:
            step(*args)
        except (PolicyError, CheckpointError) as exc:
            if not isinstance(exc, KnockOn):
                text = exc.problems[0][1] if isinstance(exc, PolicyError) else str(exc)
                problems.append(Problem(path, text))
            if defines is not None:
                builder.failed(defines)
            return False
        return True

    if document.log is not None:
        attempt(("log", "key"), None, _add_log, builder, document.log)
    for i, w in enumerate(document.witnesses):
        try:
            key = CosignerVerifier.parse(w.key)
        except CheckpointError as exc:
            problems.append(Problem(("witnesses", i, "key"), str(exc)))
            for name in (w.name, w.operator):
                if name is not None:
                    builder.failed(name)
            continue
        name = w.name if w.name is not None else key.name
        if not attempt(("witnesses", i), name, builder.add_witness, name, key, w.url, w.operator):
            if w.operator is not None:
                builder.failed(w.operator)
    operators = _operators(builder)
    for i, g in enumerate(document.groups):
        members_ok = [
            attempt(("groups", i, "members", j), None, _member, builder, operators, g.name, member)
            for j, member in enumerate(g.members)
        ]
        if all(members_ok):
            # The members are checked above, so what add_group can still refuse is the
            # name or the threshold.
            where = ("groups", i, "threshold") if _threshold_fits(g) is False else ("groups", i)
            attempt(where, g.name, builder.add_group, g.name, g.threshold, g.members)
        else:
            builder.failed(g.name)
    if attempt(("quorum",), None, _org_group, builder, operators, document.quorum):
        attempt(("quorum",), None, builder.set_quorum, document.quorum)
    if problems:
        raise PilotDefinitionError(place(problems, positions, file))
    return builder.build()


def _threshold_fits(g: GroupDefinition) -> bool:
    return not isinstance(g.threshold, int) or g.threshold <= len(g.members)


def _add_log(builder: PolicyBuilder, log: LogDefinition) -> None:
    verifier = NoteVerifier.parse(log.key)
    if log.origin is not None and log.origin != verifier.name:
        raise PolicyError(
            f"origin {log.origin!r} is not the key's name {verifier.name!r} "
            "(a log's key is named for its origin)"
        )
    builder.add_log(verifier, log.url)


def _operators(builder: PolicyBuilder) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for w in builder.witnesses:
        if w.operator is not None:
            found.setdefault(w.operator, []).append(w.name)
    return found


def _member(
    builder: PolicyBuilder, operators: dict[str, list[str]], group: str, member: str
) -> None:
    _org_group(builder, operators, member)
    builder.check_member(group, member)


def _org_group(builder: PolicyBuilder, operators: dict[str, list[str]], name: str) -> None:
    """Define organisation ``name`` as "any of its witnesses", the first time a group or the
    quorum names it (nothing when ``name`` is a witness or group already, or no operator)."""
    defined = {w.name for w in builder.witnesses} | {g.name for g in builder.groups}
    if name in defined or name == NONE or name not in operators:
        return
    builder.add_group(name, "any", operators[name])
