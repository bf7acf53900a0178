"""Prometheus metrics of one mirror (``/metrics``)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "MirrorMetrics"]


class MirrorMetrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.stored = Gauge("swiftchain_mirror_entries", "Entries the mirror holds.", registry=r)
        self.verified = Gauge(
            "swiftchain_mirror_checkpoint_size",
            "Size of the mirror checkpoint (held, verified and cosigned).",
            registry=r,
        )
        self.hub_size = Gauge(
            "swiftchain_mirror_hub_checkpoint_size",
            "Size of the latest checkpoint the hub served.",
            registry=r,
        )
        self.lag = Gauge(
            "swiftchain_mirror_lag_entries",
            "Entries of the hub's latest checkpoint the mirror does not hold yet.",
            registry=r,
        )
        self.fork = Gauge(
            "swiftchain_mirror_fork",
            "1 once the mirror has seen the hub sign two views of its log (it then stops).",
            registry=r,
        )
        self.hub_up = Gauge(
            "swiftchain_mirror_hub_up", "1 if the last request to the hub succeeded.", registry=r
        )
        self.fetched = Counter(
            "swiftchain_mirror_fetched_entries", "Entries fetched, verified and stored.", registry=r
        )
        self.hub_errors = Counter(
            "swiftchain_mirror_hub_errors",
            "Hub answers that failed or did not verify.",
            ["kind"],
            registry=r,
        )
        self.cosignatures = Counter(
            "swiftchain_mirror_cosignatures", "Mirror checkpoints cosigned.", registry=r
        )
        self.last_verified = Gauge(
            "swiftchain_mirror_last_checkpoint_timestamp_seconds",
            "When the mirror last advanced its checkpoint (Unix time).",
            registry=r,
        )

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
