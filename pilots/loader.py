"""Reading pilot definitions from YAML, with every problem placed at file:line:column.

The YAML is composed into nodes first (which keep their marks), turned into plain values
while recording where each key and value stood, then validated by :class:`Pilot`. Each
validation error's path is looked up in those positions, so a message reads
``air-quality.yaml:14:11: read[2].purposes[0]: 'TRET' is not an HL7 v3 PurposeOfUse code``.
"""

from __future__ import annotations

import difflib
import types
import typing
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from .errors import PilotDefinitionError, Problem
from .models import Pilot

DocPath = tuple[str | int, ...]

_MAX_DEPTH = 32
_MAX_NODES = 100_000
_MAX_BYTES = 1 << 20


@dataclass
class Positions:
    values: dict[DocPath, tuple[int, int]] = field(default_factory=dict)
    keys: dict[DocPath, tuple[int, int]] = field(default_factory=dict)
    nodes: int = 0


def load_pilot(path: str | Path) -> Pilot:
    """Read and validate one pilot definition file.

    Raises PilotDefinitionError listing every problem with its file:line:column.
    """
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise PilotDefinitionError(
            [Problem((), f"cannot read: {exc.strerror}", file=str(p))]
        ) from None
    return _load(raw, str(p))


def load_pilot_text(text: str | bytes, file: str = "<string>") -> Pilot:
    """Validate a pilot definition given as YAML text; ``file`` names it in messages."""
    return _load(text.encode() if isinstance(text, str) else text, file)


def _load(raw: bytes, file: str) -> Pilot:
    pilot, _ = load_model(
        raw, file, Pilot, "a pilot definition is a mapping of keys (id, name, ...)"
    )
    return pilot


M = typing.TypeVar("M", bound=BaseModel)


def load_model(raw: bytes, file: str, model: type[M], shape: str) -> tuple[M, Positions]:
    """Validate YAML ``raw`` as ``model`` (every problem at file:line:column in a
    PilotDefinitionError); ``shape`` says what the document should be when it is not a
    mapping. The positions place later problems (:func:`place`). Shared by pilot
    definitions and trust policies (``pilots.trust``)."""
    document, positions = compose_document(raw, file, shape)
    try:
        return model.model_validate(document), positions
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        problems = [_from_pydantic(e, model) for e in errors if not _echo(e, errors)]
    except PilotDefinitionError as exc:
        problems = list(exc.problems)
    raise PilotDefinitionError(place(problems, positions, file)) from None


def compose_document(raw: bytes, file: str, shape: str) -> tuple[dict[str, Any], Positions]:
    """The YAML mapping in ``raw`` as plain values, with where each key and value stood."""
    if len(raw) > _MAX_BYTES:
        raise PilotDefinitionError(
            [Problem((), f"larger than {_MAX_BYTES} bytes: not a definition file", file=file)]
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PilotDefinitionError(
            [Problem((), f"not UTF-8 text (byte {exc.start})", file=file)]
        ) from None
    positions = Positions()
    problems: list[Problem] = []
    document = _compose(text, file, positions, problems)
    if problems:
        raise PilotDefinitionError(place(problems, positions, file))
    if not isinstance(document, dict):
        what = "empty" if document is None else f"a {type(document).__name__}"
        raise PilotDefinitionError(
            [Problem((), f"{shape}; this is {what}", file=file, line=1, column=1)]
        )
    return document, positions


def _compose(text: str, file: str, positions: Positions, problems: list[Problem]) -> Any:
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        return _build(loader, node, (), positions, problems)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = "; ".join(s for s in (exc.context, exc.problem) if s) or "not valid YAML"
        problems.append(
            Problem(
                (),
                f"not valid YAML: {message}",
                file=file,
                line=mark.line + 1 if mark else None,
                column=mark.column + 1 if mark else None,
            )
        )
        return None
    except yaml.YAMLError as exc:
        problems.append(Problem((), f"not valid YAML: {exc}", file=file))
        return None
    finally:
        loader.dispose()


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _build(
    loader: yaml.SafeLoader,
    node: yaml.Node,
    path: DocPath,
    positions: Positions,
    problems: list[Problem],
) -> Any:
    positions.nodes += 1
    if len(path) > _MAX_DEPTH or positions.nodes > _MAX_NODES:
        raise yaml.MarkedYAMLError(
            problem="nested too deeply or too large (aliases expanding?)",
            problem_mark=node.start_mark,
        )
    positions.values.setdefault(path, _mark(node))
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # YAML merge keys (<<)
        mapping: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            line, column = _mark(key_node)
            if not isinstance(key, str):
                hint = " (YAML reads yes/no/on/off as booleans: quote it)" * isinstance(key, bool)
                problems.append(
                    Problem(path, f"key {key!r} is not text{hint}", line=line, column=column)
                )
                continue
            if key in mapping:
                problems.append(Problem((*path, key), "key given twice", line=line, column=column))
                continue
            positions.keys[(*path, key)] = (line, column)
            mapping[key] = _build(loader, value_node, (*path, key), positions, problems)
        return mapping
    if isinstance(node, yaml.SequenceNode):
        return [
            _build(loader, child, (*path, i), positions, problems)
            for i, child in enumerate(node.value)
        ]
    return loader.construct_object(node, deep=True)


#: What the id patterns of models.py mean, for people.
_PATTERNS = {
    "^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$": (
        "is not a slug: lowercase letters, digits and inner hyphens, at most 64"
    ),
    "^[a-z][a-z0-9]{0,15}\\.[A-Za-z][A-Za-z0-9-]{0,62}$": (
        "is not a data type id <namespace>.<name> (city.air-quality, fhir.Observation)"
    ),
}
_SHOW_INPUT = {
    "literal_error",
    "string_type",
    "int_type",
    "bool_type",
    "tuple_type",
    "model_type",
    "dict_type",
    "string_too_long",
    "string_too_short",
}


def _echo(error: Any, errors: list[Any]) -> bool:
    """A list's "too short after validation" that only repeats its items' own errors."""
    if error["type"] != "too_short":
        return False
    loc = tuple(error["loc"])
    return any(len(e["loc"]) > len(loc) and tuple(e["loc"][: len(loc)]) == loc for e in errors)


def _from_pydantic(error: Any, root: type[BaseModel] = Pilot) -> Problem:
    loc: DocPath = tuple(error["loc"])
    kind = error["type"]
    message = str(error["msg"]).removeprefix("Value error, ")
    value = error.get("input")
    if kind == "extra_forbidden" and loc:
        message = _unknown_key_message(loc, root)
    elif kind == "missing":
        message = f"required key {loc[-1]!r} missing" if loc else "required key missing"
    elif kind == "string_pattern_mismatch":
        pattern = str(error.get("ctx", {}).get("pattern", ""))
        message = f"{value!r} {_PATTERNS.get(pattern, message)}"
    elif kind == "too_short" and isinstance(value, tuple | list) and not value:
        message = "must not be empty"
    elif kind in _SHOW_INPUT and isinstance(value, str | int | float | bool | None):
        message = f"{message}; got {value!r}"
    elif kind in _SHOW_INPUT:
        message = f"{message}; got a {type(value).__name__}"
    return Problem(loc, message)


def _unknown_key_message(loc: DocPath, root: type[BaseModel]) -> str:
    key = str(loc[-1])
    model = _model_at(loc[:-1], root)
    if model is None:
        return f"unknown key {key!r}"
    expected = sorted(model.model_fields)
    close = difflib.get_close_matches(key, expected, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown key {key!r}{hint} (expected: {', '.join(expected)})"


def _model_at(loc: DocPath, root: type[BaseModel]) -> type[BaseModel] | None:
    """The model class that validates the mapping at ``loc`` inside a ``root`` document."""
    model: type[BaseModel] = root
    for segment in loc:
        if isinstance(segment, int):
            continue
        info = model.model_fields.get(segment)
        if info is None:
            return None
        inner = _element_model(info.annotation)
        if inner is None:
            return None
        model = inner
    return model


def _element_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (tuple, list, typing.Union, types.UnionType, typing.Annotated):
        for arg in typing.get_args(annotation):
            found = _element_model(arg)
            if found is not None:
                return found
    return None


def place(problems: list[Problem], positions: Positions, file: str) -> list[Problem]:
    """Give each problem the file and the line:column of the nearest thing it names."""
    placed = []
    for p in problems:
        if p.line is not None:
            placed.append(replace(p, file=file))
            continue
        where = positions.keys.get(p.path) if "unknown key" in p.message else None
        path = p.path
        while where is None:
            where = positions.values.get(path)
            if where is None and not path:
                break
            path = path[:-1]
        line, column = where if where is not None else (None, None)
        placed.append(replace(p, file=file, line=line, column=column))
    return sorted(placed, key=lambda p: (p.line or 0, p.column or 0))
