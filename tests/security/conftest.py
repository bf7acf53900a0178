"""The security suite: attacks against a live hub, a live broker and a live edge, each
refused with a clear error and changing nothing. Attacks already covered elsewhere are not
repeated here; tests/security/README.md maps every attack to its test.

At the end, the number of attacks tried is printed."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

# The access tests' fixtures (a hub checking consent at ingest, a registered hospital).
from tests.support.access_fixtures import access_hub, hospital

__all__ = ["access_hub", "hospital"]

TALLY = pytest.StashKey["AttackTally"]()


@dataclass
class AttackTally:
    attacks: dict[str, int] = field(default_factory=dict)

    def tried(self, kind: str, n: int = 1) -> None:
        self.attacks[kind] = self.attacks.get(kind, 0) + n


def pytest_configure(config: pytest.Config) -> None:
    config.stash[TALLY] = AttackTally()


@pytest.fixture
def attacks(request: pytest.FixtureRequest) -> AttackTally:
    return request.config.stash[TALLY]


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    t = config.stash.get(TALLY, None)
    if t is None or not t.attacks:
        return
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(t.attacks.items()))
    terminalreporter.write_line(
        f"security: {sum(t.attacks.values())} attacks tried, every one refused ({kinds})"
    )
