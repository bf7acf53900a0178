"""Searchset Bundles (FHIR R4B 3.1.1.2): the shell (the bytes of the ``fhir.resources``
model, written directly: :func:`bundle_shell`), ``self`` and ``next`` links made of the
parameters applied, the matches' stored bodies spliced in as the exact bytes committed to,
and one OperationOutcome entry (``search.mode = outcome``) saying what was ignored.
``_elements`` subsets here (FHIR R4B 3.1.1.5.9)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import msgspec
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import BundleEntry, BundleEntrySearch
from fhir.resources.R4B.coding import Coding
from fhir.resources.R4B.operationoutcome import OperationOutcome, OperationOutcomeIssue
from yarl import URL

from .results import Ignored, Results

#: FHIR R4B 3.1.1.5.9: a resource reduced by ``_elements`` is tagged SUBSETTED.
SUBSETTED = Coding(
    system="http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    code="SUBSETTED",
    display="subsetted",
)
#: Elements every resource keeps under ``_elements``: its identity and its modifiers.
ALWAYS_KEPT = frozenset({"resourceType", "id", "meta", "implicitRules", "modifierExtension"})


@dataclass(frozen=True)
class Match:
    """One entry: the resource's RESTful URL and its JSON bytes."""

    full_url: str
    resource: bytes


def searchset(
    *,
    base: str,
    path: str,
    applied: Sequence[tuple[str, str]],
    results: Results,
    page: Sequence[Match],
    total: int,
    ignored: Sequence[Ignored],
) -> bytes:
    """The Bundle of one page of ``total`` matches."""
    this = URL(base + path)
    links = [("self", str(this.with_query(_paged(applied, results.offset))))]
    after = results.offset + len(page)
    if results.count and after < total:
        links.append(("next", str(this.with_query(_paged(applied, after)))))
    shell = bundle_shell(total if results.total else None, links)
    entries = [
        b'{"fullUrl":'
        + msgspec.json.encode(match.full_url)
        + b',"resource":'
        + (subset(match.resource, results.elements) if results.elements else match.resource)
        + b',"search":{"mode":"match"}}'
        for match in page
    ]
    if ignored:
        entries.append(outcome_entry(ignored))
    if not entries:
        return shell
    return shell[:-1] + b',"entry":[' + b",".join(entries) + b"]}"


def bundle_shell(total: int | None, links: Sequence[tuple[str, str]]) -> bytes:
    """A searchset Bundle without entries, ``link`` as (relation, url): the bytes of
    ``Bundle(type="searchset", total=total, link=[BundleLink(relation=..., url=...)])
    .model_dump_json()`` (tests/unit/gateway/fhir/test_results.py holds them equal), written
    directly: building and dumping the model cost ~40 µs a search (bench/query.py), a fifth
    of the hub's work on it. ``url`` is a yarl-quoted URL (no whitespace: a valid ``uri``)."""
    head = b'{"resourceType":"Bundle","type":"searchset"'
    if total is not None:
        head += b',"total":' + str(total).encode()
    link = b",".join(
        b'{"relation":'
        + msgspec.json.encode(relation)
        + b',"url":'
        + msgspec.json.encode(url)
        + b"}"
        for relation, url in links
    )
    return head + b',"link":[' + link + b"]}"


def _paged(applied: Sequence[tuple[str, str]], offset: int) -> list[tuple[str, str]]:
    query = [(name, value) for name, value in applied if name != "_offset"]
    return [*query, ("_offset", str(offset))] if offset else query


def outcome_entry(ignored: Iterable[Ignored]) -> bytes:
    """The entry telling the client what the search did not apply (FHIR R4B 3.1.1.4:
    lenient handling; ``Bundle.entry.search.mode = outcome``)."""
    issues = [
        OperationOutcomeIssue(
            severity="warning",
            code="not-supported",
            diagnostics=item.sentence(),
            expression=[item.name],
        )
        for item in ignored
    ]
    entry = BundleEntry(
        fullUrl=f"urn:uuid:{uuid.uuid4()}",
        resource=OperationOutcome(issue=issues),
        search=BundleEntrySearch(mode="outcome"),
    )
    return entry.model_dump_json().encode()


def subset(resource: bytes, elements: frozenset[str]) -> bytes:
    """``resource`` with only the ``elements`` asked for (a choice element by its name or its
    JSON key: ``effective`` and ``effectiveDateTime`` both keep ``effectiveDateTime``), its
    mandatory and modifier elements, and the SUBSETTED tag."""
    document: dict[str, Any] = json.loads(resource)
    keep = ALWAYS_KEPT | elements | mandatory_elements(str(document.get("resourceType", "")))
    kept = {
        key: value
        for key, value in document.items()
        if key.removeprefix("_") in keep or _base_name(key, document) in keep
    }
    meta = dict(kept.get("meta") or {})
    tags = [tag for tag in meta.get("tag") or [] if tag.get("code") != SUBSETTED.code]
    meta["tag"] = [*tags, SUBSETTED.model_dump(mode="json")]
    kept["meta"] = meta
    return json.dumps(kept, separators=(",", ":"), ensure_ascii=False).encode()


def _base_name(key: str, document: dict[str, Any]) -> str:
    """The element a JSON key belongs to: ``_status`` (a primitive's extension) to
    ``status``, ``effectiveDateTime`` to ``effective`` where that is a choice."""
    name = key[1:] if key.startswith("_") else key
    choice = _choice_of(str(document.get("resourceType", "")), name)
    return choice or name


@cache
def _choices(resource_type: str) -> dict[str, str]:
    model = _model(resource_type)
    if model is None:
        return {}
    out: dict[str, str] = {}
    for field in model.model_fields.values():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        group = extra.get("one_of_many")
        if isinstance(group, str) and field.alias:
            out[field.alias] = group
    return out


def _choice_of(resource_type: str, key: str) -> str | None:
    return _choices(resource_type).get(key)


@cache
def mandatory_elements(resource_type: str) -> frozenset[str]:
    """The elements of ``resource_type`` with minimum cardinality 1, by their JSON names
    (a required choice by its element name)."""
    model = _model(resource_type)
    if model is None:
        return frozenset()
    names = set()
    for name, field in model.model_fields.items():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        if extra.get("one_of_many_required") and isinstance(extra.get("one_of_many"), str):
            names.add(str(extra["one_of_many"]))
        elif field.is_required() or extra.get("element_required"):
            names.add(field.alias or name)
    return frozenset(names)


def _model(resource_type: str) -> Any:
    try:
        return get_fhir_model_class(resource_type)
    except (KeyError, ValueError, AttributeError):
        return None
