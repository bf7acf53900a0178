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


def _outbox_counts(box: Outbox) -> tuple[int, int]:
    dead = box.conn.execute("SELECT count(*) FROM dead_letters").fetchone()[0]
    return box.depth(), int(dead)


async def sample(agent: Agent) -> Sample:
    """Read the agent's parts (the outbox on its own thread, the rest in memory)."""
    depth, dead = await agent.outbox.call(_outbox_counts)
    link, settler = agent.link, agent.settler
    return Sample(
        outbox_depth=depth,
        in_flight=len(link.inflight) if link else 0,
        dead_letters=dead,
        receipts=dict(settler.statuses) if settler else {},
        broker_connected=bool(link and link.connected.is_set()),
        published=link.published_total if link else 0,
        republished=link.republished_total if link else 0,
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
