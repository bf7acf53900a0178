"""The agent's ``/metrics`` in the Prometheus text format: outbox depth, records in flight,
dead letters, receipts by status and the broker connection, all ``swiftchain_edge_*``.

Off unless ``metrics_port`` is set, and on loopback unless ``metrics_host`` says otherwise:
the agent often runs next to a hospital system, and what it exposes is for the operator's
scraper only. Every value is read from the running agent at scrape time, so nothing on the
record path updates a metric.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .awaiting import quorum_counts
from .outbox import Outbox

if TYPE_CHECKING:
    from aiohttp import web

    from .agent import Agent

#: Receipt statuses the hub sends, plus what the agent could not parse.
RECEIPT_STATUSES = ("accepted", "duplicate", "rejected", "malformed")


@dataclass(frozen=True)
class Sample:
    """The agent's state at one scrape."""

    outbox_depth: int = 0
    in_flight: int = 0
    dead_letters: int = 0
    receipts: dict[str, int] = field(default_factory=dict)
    broker_connected: bool = False
    published: int = 0
    republished: int = 0
    #: Only when the agent requires the quorum (``hub.require_quorum``).
    quorum: QuorumSample | None = None


@dataclass(frozen=True)
class QuorumSample:
    awaiting: int = 0
    proofs_failed: int = 0
    settled: int = 0
    refused: int = 0
    checkpoint_size: int = 0
    fetch_failures: int = 0
    split_view: bool = False


def _outbox_counts(box: Outbox) -> tuple[int, int]:
    dead = box.conn.execute("SELECT count(*) FROM dead_letters").fetchone()[0]
    return box.depth(), int(dead)


async def sample(agent: Agent) -> Sample:
    """Read the agent's parts (the outbox on its own thread, the rest in memory)."""
    depth, dead = await agent.outbox.call(_outbox_counts)
    link, settler = agent.link, agent.settler
    quorum = None
    if agent.quorum is not None:
        q = agent.quorum
        waiting, failed = await agent.outbox.call(quorum_counts)
        quorum = QuorumSample(
            awaiting=waiting,
            proofs_failed=failed,
            settled=q.settled_total,
            refused=q.refused_total,
            checkpoint_size=q.trusted.size if q.trusted else 0,
            fetch_failures=q.fetch_failures,
            split_view=q.split_view is not None,
        )
    return Sample(
        outbox_depth=depth,
        in_flight=len(link.inflight) if link else 0,
        dead_letters=dead,
        receipts=dict(settler.statuses) if settler else {},
        broker_connected=bool(link and link.connected.is_set()),
        published=link.published_total if link else 0,
        republished=link.republished_total if link else 0,
        quorum=quorum,
    )


class AgentCollector(Collector):
    """Renders the latest :class:`Sample` (set just before each exposition)."""

    def __init__(self) -> None:
        self.sample = Sample()

    def collect(self) -> Iterable[Metric]:
        s = self.sample
        yield GaugeMetricFamily(
            "swiftchain_edge_outbox_depth",
            "Records in the outbox, waiting for an accepted or duplicate receipt.",
            value=s.outbox_depth,
        )
        yield GaugeMetricFamily(
            "swiftchain_edge_in_flight",
            "Records published and waiting for their receipt.",
            value=s.in_flight,
        )
        yield GaugeMetricFamily(
            "swiftchain_edge_dead_letters",
            "Records the hub rejected, kept in the outbox's dead letters.",
            value=s.dead_letters,
        )
        receipts = CounterMetricFamily(
            "swiftchain_edge_receipts", "Receipts from the hub, by status.", labels=["status"]
        )
        for status in RECEIPT_STATUSES:
            receipts.add_metric([status], s.receipts.get(status, 0))
        yield receipts
        yield GaugeMetricFamily(
            "swiftchain_edge_broker_connected",
            "1 while the agent is connected to the MQTT broker.",
            value=1 if s.broker_connected else 0,
        )
        yield CounterMetricFamily(
            "swiftchain_edge_records_published",
            "Records published for the first time since the agent started.",
            value=s.published,
        )
        yield CounterMetricFamily(
            "swiftchain_edge_records_republished",
            "Records published again because their receipt was overdue.",
            value=s.republished,
        )
        if s.quorum is not None:
            yield from _quorum_metrics(s.quorum)


def _quorum_metrics(q: QuorumSample) -> Iterable[Metric]:
    yield GaugeMetricFamily(
        "swiftchain_edge_awaiting_quorum",
        "Records the hub accepted that wait for a checkpoint meeting the trust policy.",
        value=q.awaiting,
    )
    yield GaugeMetricFamily(
        "swiftchain_edge_quorum_proofs_failed",
        "Records kept in the outbox because their inclusion in a quorum checkpoint failed.",
        value=q.proofs_failed,
    )
    yield CounterMetricFamily(
        "swiftchain_edge_quorum_settled",
        "Records delivered on a checkpoint that met the trust policy, since the start.",
        value=q.settled,
    )
    yield CounterMetricFamily(
        "swiftchain_edge_quorum_refused",
        "Cosigned checkpoints that did not meet the trust policy, since the start.",
        value=q.refused,
    )
    yield GaugeMetricFamily(
        "swiftchain_edge_quorum_checkpoint_size",
        "Tree size of the newest checkpoint that met the trust policy (0: none yet).",
        value=q.checkpoint_size,
    )
    yield GaugeMetricFamily(
        "swiftchain_edge_quorum_fetch_failures",
        "Failed requests in a row for the hub's cosigned checkpoint.",
        value=q.fetch_failures,
    )
    yield GaugeMetricFamily(
        "swiftchain_edge_quorum_split_view",
        "1 when two checkpoints of one size met the policy under different roots.",
        value=1 if q.split_view else 0,
    )


def create_app(agent: Agent) -> web.Application:
    from aiohttp import web  # the HTTP server only when metrics are on

    registry = CollectorRegistry(auto_describe=True)
    collector = AgentCollector()
    registry.register(collector)

    async def metrics(request: web.Request) -> web.Response:
        collector.sample = await sample(agent)
        response = web.Response(body=generate_latest(registry))
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    return app


@asynccontextmanager
async def metrics_site(agent: Agent, host: str, port: int) -> AsyncIterator[int]:
    """Serve ``/metrics`` on ``host:port`` (0: any free port) until the block ends; yields
    the port it listens on."""
    from aiohttp import web

    runner = web.AppRunner(create_app(agent), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        yield next(int(a[1]) for a in runner.addresses if isinstance(a, tuple))
    finally:
        await runner.cleanup()
