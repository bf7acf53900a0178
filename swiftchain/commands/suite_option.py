"""``--suite``: which kind of key a command makes, by its key kind (``ed25519``, ``sm2``) or
its crypto suite's name (``ed25519-sha256``, ``sm2-sm3``; :mod:`ledger.suite`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import click

from ledger.errors import SuiteError
from ledger.suite import DEFAULT_SUITE, KEY_KINDS, SUITES, Suite, suite_named

F = TypeVar("F", bound=Callable[..., object])

#: What ``--suite`` takes, key kinds first.
SUITE_CHOICES = (*KEY_KINDS, *SUITES)


def _suite(ctx: click.Context, param: click.Parameter, value: str) -> Suite:
    try:
        return suite_named(value)
    except SuiteError:
        raise click.BadParameter(
            f"{value!r} is not a crypto suite; give one of {', '.join(SUITE_CHOICES)}"
        ) from None


def suite_option(help: str) -> Callable[[F], F]:
    """The ``--suite`` option; the command gets a :class:`ledger.suite.Suite`."""
    return click.option(
        "--suite",
        "suite",
        default=DEFAULT_SUITE.key_kind,
        show_default=True,
        metavar="|".join(KEY_KINDS),
        callback=_suite,
        help=f"{help}; one of {', '.join(SUITE_CHOICES)}.",
    )
