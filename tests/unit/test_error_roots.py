"""Every exception class our packages define sits under its package's root error, so one
``except`` (the CLI's, an HTTP middleware's) can catch all of a package's named errors."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

from edge.errors import EdgeError
from gateway.errors import HubError
from ledger.errors import LedgerError
from pilots.errors import PilotError
from simulators.errors import SimulatorError
from swiftchain.errors import SwiftchainError
from witness.errors import WitnessError

ROOTS: dict[str, type[Exception]] = {
    "ledger": LedgerError,
    "edge": EdgeError,
    "gateway": HubError,
    "pilots": PilotError,
    "simulators": SimulatorError,
    "swiftchain": SwiftchainError,
    "witness": WitnessError,
}


def defined_exceptions(package: str) -> list[type[BaseException]]:
    """The exception classes defined (not imported) in every module of ``package``."""
    root = importlib.import_module(package)
    found: list[type[BaseException]] = []
    for info in pkgutil.walk_packages(root.__path__, prefix=f"{package}."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        found.extend(
            value
            for value in vars(module).values()
            if inspect.isclass(value)
            and issubclass(value, BaseException)
            and value.__module__ == module.__name__
        )
    return found


@pytest.mark.parametrize("package", sorted(ROOTS))
def test_every_exception_is_under_its_package_root(package: str) -> None:
    classes = defined_exceptions(package)
    assert ROOTS[package] in classes
    strays = [
        f"{c.__module__}.{c.__qualname__}" for c in classes if not issubclass(c, ROOTS[package])
    ]
    assert strays == []
