"""docs/configure.md names every setting of the hub and the agent, and nothing that is not
one: the names are read from the pydantic models, so a setting added to a model without a
line in the page fails here."""

from __future__ import annotations

import typing
from collections.abc import Iterator

import pytest
from pydantic import BaseModel

from edge.settings import EdgeSettings
from gateway.settings import HubSettings

from .pages import code_names, first_column, read, section


def _models_in(annotation: object) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        found += _models_in(arg)
    return found


def setting_names(model: type[BaseModel], prefix: str = "") -> Iterator[str]:
    """Every setting of ``model`` as its TOML path: ``broker.tls.ca_file``; the fields of a
    list of sections as ``sensors.topics[].topic``."""
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if typing.get_origin(annotation) is list:
            inner = _models_in(typing.get_args(annotation)[0])
            if inner:
                yield from setting_names(inner[0], f"{prefix}{name}[].")
                continue
        nested = _models_in(annotation)
        if nested:
            yield from setting_names(nested[0], f"{prefix}{name}.")
        else:
            yield prefix + name


def documented(heading: str) -> set[str]:
    table = section(read("docs/configure.md"), heading)
    return {name for cell in first_column(table) for name in code_names(cell)}


@pytest.mark.parametrize(
    ("model", "heading"),
    [(HubSettings, "Hub (hub.toml)"), (EdgeSettings, "Agent (edge.toml)")],
    ids=["hub", "agent"],
)
def test_configure_md_lists_every_setting(model: type[BaseModel], heading: str) -> None:
    settings = set(setting_names(model))
    listed = documented(heading)
    missing = sorted(settings - listed)
    assert not missing, f"docs/configure.md, {heading}: add a row for {missing}"
    stale = sorted(listed - settings)
    assert not stale, f"docs/configure.md, {heading}: {stale} are not settings of {model.__name__}"


def test_the_walk_finds_nested_and_listed_sections() -> None:
    # The agent's nested sections are what a flat field list would miss.
    names = set(setting_names(EdgeSettings))
    assert {"broker.tls.ca_file", "sensors.topics[].topic", "log.level", "use_uvloop"} <= names
    assert "broker" not in names and "sensors.topics" not in names
