from __future__ import annotations

import pytest

from edge.datatypes import TypeRegistry
from edge.pseudonym import Pseudonymiser


@pytest.fixture
def registry() -> TypeRegistry:
    return TypeRegistry()


@pytest.fixture
def pseudonymiser() -> Pseudonymiser:
    return Pseudonymiser(bytes(range(32)), "hospital-a")
