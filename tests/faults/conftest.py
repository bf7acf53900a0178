"""The fault suite's tally: faults injected and records checked, printed at the end; and
the disk that fills, on each store."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field

import pytest

from tests.support.postgres import databases_on_small_disk, small_disk_unavailable

from .world import Disk

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


# -- a disk that fills, on each store (world.Disk) --------------------------------------------


def _disk(store_kind: str, request: pytest.FixtureRequest, *, required: bool) -> Iterator[Disk]:
    if store_kind == "sqlite":
        yield Disk({})
        return
    why = small_disk_unavailable()
    with ExitStack() as stack:
        if why is None:
            try:
                urls, small = stack.enter_context(databases_on_small_disk("ledger", "access"))
            except (OSError, subprocess.CalledProcessError) as exc:
                why = f"{exc}"
        if why is not None:
            if required:
                pytest.skip(f"no small disk for a PostgreSQL tablespace: {why}")
            yield Disk({"ledger_url": str(request.getfixturevalue("pg_url"))}, on_postgres=True)
            return
        # The access store and the dead letters in another database, on the ordinary
        # disk: a SQLite ledger's quota leaves their files alone too.
        settings = {
            "ledger_url": urls["ledger"],
            "access_store": urls["access"],
            "dead_letter_store": urls["access"],
        }
        yield Disk(settings, small, on_postgres=True)


@pytest.fixture
def disk(store_kind: str, request: pytest.FixtureRequest) -> Iterator[Disk]:
    """The hub's ledger on each store, with a disk the test can fill; the PostgreSQL case
    skips, saying why, where no small filesystem can be mounted (it needs root)."""
    yield from _disk(store_kind, request, required=True)


@pytest.fixture
def disk_if_any(store_kind: str, request: pytest.FixtureRequest) -> Iterator[Disk]:
    """As ``disk``, but where no small filesystem can be mounted a PostgreSQL ledger that
    cannot be filled (``Disk.can_fill`` false) rather than a skip."""
    yield from _disk(store_kind, request, required=False)
