"""Turning our packages' named errors into one CLI message (the CLI's one place for it)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import ParamSpec, TypeVar

import click

P = ParamSpec("P")
R = TypeVar("R")

#: Exception types each package registers as "user-facing": shown as a message, exit 2.
#: Named, not imported: importing them all loaded the hub, the pilots and the simulators
#: into `swiftchain edge` (~10 MB of RSS on a gateway); a package not imported has raised
#: nothing.
USER_ERRORS: tuple[tuple[str, str], ...] = (
    ("ledger.errors", "LedgerError"),
    ("gateway.errors", "HubError"),
    ("mirror.errors", "MirrorError"),
    ("edge.errors", "EdgeError"),
    ("pilots.errors", "PilotError"),
    ("simulators.errors", "SimulatorError"),
    ("swiftchain.errors", "SwiftchainError"),
    ("witness.errors", "WitnessError"),
)


def is_user_error(exc: BaseException) -> bool:
    """Whether ``exc`` is one of the named errors of our packages."""
    for module, name in USER_ERRORS:
        root = getattr(sys.modules.get(module), name, None)
        if isinstance(root, type) and isinstance(exc, root):
            return True
    return False


@contextmanager
def user_errors() -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        if not is_user_error(exc):
            raise
        raise click.ClickException(f"{type(exc).__name__}: {exc}") from None


def friendly(fn: Callable[P, R]) -> Callable[P, R]:
    """Decorator for a verb: our named errors become ``Error: ...`` and exit status 1."""

    @wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with user_errors():
            return fn(*args, **kwargs)

    return wrapper
