"""docs/http.md's route table is the hub's HTTP surface: exactly the paths and methods of
/api/v1/openapi.json (which another test holds equal to the application's routes)."""

from __future__ import annotations

from gateway.api.openapi import build_spec

from .pages import code_names, read, section

METHODS = {"get", "put", "post", "delete", "patch"}


def documented_routes() -> set[tuple[str, str]]:
    table = section(read("docs/http.md"), "Routes")
    routes = set()
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 2 and cells[0].lower() in METHODS:
            (path,) = code_names(cells[1])
            routes.add((cells[0].upper(), path))
    return routes


def spec_routes() -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, operations in build_spec()["paths"].items()
        for method in operations
        if method in METHODS
    }


def test_http_md_lists_every_route() -> None:
    missing = sorted(spec_routes() - documented_routes())
    assert not missing, f"docs/http.md, Routes: add {missing}"


def test_http_md_lists_no_route_the_hub_lacks() -> None:
    stale = sorted(documented_routes() - spec_routes())
    assert not stale, f"docs/http.md, Routes: the hub has no {stale}"
