from __future__ import annotations

import pytest

from edge.datatypes import TypeRegistry
from edge.pseudonym import Pseudonymiser
from ledger.suite import ED25519_SHA256, SM2_SM3, Suite


@pytest.fixture
def registry() -> TypeRegistry:
    return TypeRegistry()


@pytest.fixture
def pseudonymiser() -> Pseudonymiser:
    return Pseudonymiser(bytes(range(32)), "hospital-a")


@pytest.fixture(params=[ED25519_SHA256, SM2_SM3], ids=[ED25519_SHA256.name, SM2_SM3.name])
def suite(request: pytest.FixtureRequest) -> Suite:
    """Each crypto suite in turn: a test taking it runs once per suite (the project-wide
    fixture's name and params, here for the tests of this folder)."""
    value: Suite = request.param
    return value
