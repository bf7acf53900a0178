"""Turning our packages' named errors into one CLI message (the CLI's one place for it)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import ParamSpec, TypeVar

import click

from edge.errors import EdgeError
from gateway.errors import HubError
from ledger.errors import LedgerError
from mirror.errors import MirrorError
from pilots.errors import PilotError
from simulators.errors import SimulatorError
from witness.errors import WitnessError

from ..errors import SwiftchainError

P = ParamSpec("P")
R = TypeVar("R")

#: Exception types each package registers as "user-facing": shown as a message, exit 2.
USER_ERRORS: tuple[type[Exception], ...] = (
    LedgerError,
    HubError,
    MirrorError,
    EdgeError,
    PilotError,
    SimulatorError,
    SwiftchainError,
    WitnessError,
)


@contextmanager
def user_errors() -> Iterator[None]:
    try:
        yield
    except USER_ERRORS as exc:
        raise click.ClickException(f"{type(exc).__name__}: {exc}") from None


def friendly(fn: Callable[P, R]) -> Callable[P, R]:
    """Decorator for a verb: our named errors become ``Error: ...`` and exit status 1."""

    @wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with user_errors():
            return fn(*args, **kwargs)

    return wrapper
