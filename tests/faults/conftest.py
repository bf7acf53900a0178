"""The fault suite's tally: faults injected and records checked, printed at the end."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

TALLY = pytest.StashKey["FaultTally"]()


@dataclass
class FaultTally:
    faults: dict[str, int] = field(default_factory=dict)
    records_checked: int = 0
    """Record checks: each record is checked again after every later fault."""
    distinct_records: int = 0
    queries: int = 0
    query_violations: int = 0

    def fault(self, kind: str) -> None:
        self.faults[kind] = self.faults.get(kind, 0) + 1


def pytest_configure(config: pytest.Config) -> None:
    config.stash[TALLY] = FaultTally()


@pytest.fixture
def tally(request: pytest.FixtureRequest) -> FaultTally:
    return request.config.stash[TALLY]


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    t = config.stash.get(TALLY, None)
    if t is None or not (t.faults or t.records_checked):
        return
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(t.faults.items()))
    terminalreporter.write_line(
        f"faults: {sum(t.faults.values())} faults injected ({kinds}); "
        f"{t.records_checked} record checks ({t.distinct_records} distinct records, each "
        f"found exactly once on the log after every fault); "
        f"{t.queries} queries, {t.query_violations} returned data they should not"
    )
