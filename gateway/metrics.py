"""Prometheus metrics of one hub, on a registry of its own (several hubs can share a
process in tests without colliding).

A hub of several processes (``gateway.cluster``) runs prometheus-client's multiprocess
mode: every process writes its values to files in ``PROMETHEUS_MULTIPROC_DIR`` (set by the
supervisor before any child imports the library), and any front end's ``/metrics`` sums
the counters and histograms of all of them; gauges say how they combine (``MODES``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any, Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector

__all__ = ["CONTENT_TYPE_LATEST", "HubMetrics"]


MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


class _Collected:
    """Metric families already collected, with the ``collect()`` of a metric."""

    def __init__(self, families: list[Any]) -> None:
        self.families = families

    def collect(self) -> list[Any]:
        return self.families


GaugeMode = Literal["max", "livemax", "mostrecent"]


def _gauge(
    name: str, doc: str, labels: list[str], registry: CollectorRegistry, mode: GaugeMode
) -> Gauge:
    """A gauge that, across the processes of one hub, combines as ``mode`` says: ``max``
    (sizes: the sequencer's is the truth), ``livemax`` (1 if any live process says so),
    ``mostrecent`` (the last value set)."""
    extra: dict[str, Any] = {"multiprocess_mode": mode} if os.environ.get(MULTIPROC_ENV) else {}
    return Gauge(name, doc, labels, registry=registry, **extra)


class HubMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.multiprocess_dir = os.environ.get(MULTIPROC_ENV)
        #: What only this process can say (computed at scrape time), beside the shared files.
        self.local = CollectorRegistry() if self.multiprocess_dir else r
        self.accepted = Counter(
            "swiftchain_records_accepted", "Records committed to the log.", registry=r
        )
        self.duplicates = Counter(
            "swiftchain_records_duplicate", "Records already on the log (by id).", registry=r
        )
        self.rejected = Counter(
            "swiftchain_records_rejected", "Records refused, by reason.", ["reason"], registry=r
        )
        self.batch_size = Histogram(
            "swiftchain_batch_size",
            "Entries per committed batch.",
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000),
            registry=r,
        )
        self.commit_seconds = Histogram(
            "swiftchain_commit_seconds",
            "Time to append one batch durably.",
            buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2),
            registry=r,
        )
        self.commit_failures = Counter(
            "swiftchain_commit_failures", "Batches that failed to commit.", registry=r
        )
        self.log_size = _gauge("swiftchain_log_size", "Entries in the log.", [], r, "max")
        self.checkpoint_size = _gauge(
            "swiftchain_checkpoint_size", "Tree size of the latest signed checkpoint.", [], r, "max"
        )
        self.checkpoint_age = Gauge(
            "swiftchain_checkpoint_age_seconds",
            "Seconds since the latest checkpoint was signed (or since the hub opened the"
            " ledger); it grows while the log is idle, so alert on it only while"
            " swiftchain_log_size > swiftchain_checkpoint_size.",
            registry=self.local,
        )
        self.witness_up = _gauge(
            "swiftchain_witness_up",
            "1 if the witness answered the last round (cosigned or refused), else 0.",
            ["witness"],
            r,
            "mostrecent",
        )
        self.witness_cosigned_size = _gauge(
            "swiftchain_witness_cosigned_size",
            "Tree size of the newest checkpoint the witness cosigned.",
            ["witness"],
            r,
            "mostrecent",
        )
        self.witness_lag_entries = _gauge(
            "swiftchain_witness_lag_entries",
            "Entries of the latest checkpoint the witness has not cosigned yet.",
            ["witness"],
            r,
            "mostrecent",
        )
        self.witness_lag_seconds = _gauge(
            "swiftchain_witness_lag_seconds",
            "Seconds since the witness last cosigned.",
            ["witness"],
            r,
            "mostrecent",
        )
        self.witness_quorum_met = _gauge(
            "swiftchain_witness_quorum_met",
            "1 if the newest submitted checkpoint meets the trust policy's quorum.",
            [],
            r,
            "mostrecent",
        )
        self._checkpoint_at: float | None = None
        self.checkpoint_age.set_function(self._checkpoint_age)
        self.receipts = Counter(
            "swiftchain_receipts_published",
            "Receipts handed to MQTT, by status.",
            ["status"],
            registry=r,
        )
        self.receipts_dropped = Counter(
            "swiftchain_receipts_dropped",
            "Receipts not sent because MQTT was down (the agent resends and gets 'duplicate').",
            registry=r,
        )
        self.mqtt_connected = _gauge(
            "swiftchain_mqtt_connected", "1 while connected to the broker.", [], r, "livemax"
        )
        self.mqtt_connects = Counter(
            "swiftchain_mqtt_connects", "Successful broker connections.", registry=r
        )
        self.mqtt_errors = Counter(
            "swiftchain_mqtt_errors", "Broker connections lost or refused.", registry=r
        )
        self.break_glass_reads = Counter(
            "swiftchain_break_glass_reads",
            "Break-glass (ETREAT) reads allowed, each flagged in its access entry for review;"
            " by pilot and reason (break_glass_override, break_glass_after_withdrawal, ...).",
            ["pilot", "reason"],
            registry=r,
        )
        self.registry_changes = Counter(
            "swiftchain_registry_changes", "Registry entries appended.", registry=r
        )

    def checkpoint_signed(self, size: int) -> None:
        """The latest checkpoint now covers ``size`` entries."""
        self.checkpoint_size.set(size)
        self._checkpoint_at = time.monotonic()

    def _checkpoint_age(self) -> float:
        if self._checkpoint_at is None:
            return float("nan")
        return time.monotonic() - self._checkpoint_at

    def combined(self) -> Callable[[Any], Any]:
        """A view of metrics as all the hub's processes count them: ``view(self.accepted)``
        has the ``collect()`` of the sum over every process (in one process, the metric
        itself). Read once per call of this method, for a snapshot's worth of figures."""
        if self.multiprocess_dir is None:
            return lambda metric: metric
        families = {
            family.name: family
            for family in MultiProcessCollector(None, path=self.multiprocess_dir).collect()  # type: ignore[no-untyped-call]
        }

        def view(metric: Any) -> Any:
            # prometheus-client names a metric's family ``_name`` (no public accessor).
            family = families.get(metric._name)
            return _Collected([family] if family is not None else [])

        return view

    def exposition(self) -> bytes:
        if self.multiprocess_dir is None:
            return generate_latest(self.registry)
        every = CollectorRegistry()
        MultiProcessCollector(every, path=self.multiprocess_dir)  # type: ignore[no-untyped-call]
        return generate_latest(every) + generate_latest(self.local)
