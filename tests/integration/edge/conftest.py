"""Fixtures for edge agent tests (the helpers they use are in ``tests/support/edge.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger.suite import ED25519_SHA256, SM2_SM3, Suite
from tests.support.edge import EdgeProcess


@pytest.fixture
def edge_dir(tmp_path: Path) -> Path:
    d = tmp_path / "edge"
    d.mkdir()
    return d


@pytest.fixture
def edge_processes() -> Iterator[list[EdgeProcess]]:
    """Agents started as subprocesses; each is killed at the end of the test."""
    started: list[EdgeProcess] = []
    yield started
    for p in started:
        p.kill()


@pytest.fixture(params=[ED25519_SHA256, SM2_SM3], ids=[ED25519_SHA256.name, SM2_SM3.name])
def suite(request: pytest.FixtureRequest) -> Suite:
    """Each crypto suite in turn: a test taking it runs once per suite (the project-wide
    fixture's name and params, here for the tests of this folder)."""
    value: Suite = request.param
    return value
