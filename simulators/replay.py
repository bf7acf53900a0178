"""Replaying a scenario through real edge agents: one in-process agent per record source
(its own key and durable outbox in the work folder), Consents through the hub's Consent API
as the hospital's consent administrator, scripted queries as the named client.

Time: events are released at ``t`` scaled by ``speed`` (60: a scenario hour in a minute);
``speed=None`` releases them as fast as the network takes them. Order is what matters for
consent: a Consent's POST returns once the Consent is on the ledger, and every event after it
in the file is released only then, so no record reaches the hub before its Consent. Before a
withdrawal or a query, every record already released is waited for (its receipt settled), so
an erasure erases them and a query sees them.

Patients' home devices (the header's ``devices``) have no agent of their own: replay seals
each of their readings as the device would (its key from the seed, the patient named by
pseudonym) and hands the envelope to the agent of the device's relay, which checks it against
the device keys in its ``[relay]`` settings and publishes it under its own source.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import aiohttp

from edge.agent import Agent, open_agent
from edge.errors import EdgeError
from edge.outbox import Outbox
from edge.settings import load_settings
from ledger.suite import Suite

from .errors import SimulatorError
from .homes import HomeDevices
from .network import Network
from .scenario import ConsentEvent, Header, QueryEvent, RecordEvent

AnyEvent = RecordEvent | ConsentEvent | QueryEvent
#: Records handed to an agent in one submission at most (one outbox transaction).
SUBMIT_BATCH = 500
#: FHIR resource searched for each personal data type.
FHIR_SEARCH = {
    "fhir.Observation": "Observation",
    "fhir.DiagnosticReport": "DiagnosticReport",
    "fhir.Composition": "Composition",
}


class ReplayError(SimulatorError):
    """The replay could not go on (hub refused a Consent, records never receipted...)."""


@dataclass(frozen=True)
class BrokerAccess:
    url: str
    protocol: Literal["3.1.1", "5"] = "5"
    #: Per-source credentials (pilot, source) -> (username, password), if the broker wants them.
    credentials: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)


@dataclass
class PilotTally:
    sent: int = 0
    accepted: int = 0
    rejected: int = 0
    consents: int = 0
    withdrawals: int = 0


@dataclass(frozen=True)
class QueryOutcome:
    event: QueryEvent
    client: str
    status: int
    #: "allow" (200), "deny" (403) or "error" (anything else).
    decision: str
    access_index: int | None
    records: int

    @property
    def as_expected(self) -> bool:
        return self.decision == self.event.payload.expect


@dataclass(frozen=True)
class WithdrawalOutcome:
    event: ConsentEvent
    #: Record bodies the hub erased with it (0 unless withdrawn with erasure).
    erased: int


@dataclass
class ReplayReport:
    pilots: dict[str, PilotTally]
    queries: list[QueryOutcome]
    wall_s: float
    events: int
    withdrawals: list[WithdrawalOutcome] = field(default_factory=list)

    @property
    def records_sent(self) -> int:
        return sum(t.sent for t in self.pilots.values())

    @property
    def records_accepted(self) -> int:
        return sum(t.accepted for t in self.pilots.values())

    @property
    def records_rejected(self) -> int:
        return sum(t.rejected for t in self.pilots.values())

    @property
    def records_per_s(self) -> float:
        return self.records_accepted / self.wall_s if self.wall_s > 0 else 0.0


#: Called after each event with (events done, the event's kind).
OnEvent = Callable[[int, str], None]


def _when(t: str) -> float:
    return datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp()


@asynccontextmanager
async def running_agents(
    network: Network,
    broker: BrokerAccess,
    workdir: Path,
    relays: dict[tuple[str, str], Path] | None = None,
) -> AsyncIterator[dict[tuple[str, str], Agent]]:
    """One agent per registered record source, each running until the block ends;
    ``relays``: the sources that relay home devices, and the directory of their keys."""
    relays = relays or {}
    agents: dict[tuple[str, str], Agent] = {}
    async with AsyncExitStack() as stack:
        for key, source in sorted(network.sources.items()):
            pilot, name = key
            user = broker.credentials.get(key)
            settings = load_settings(
                pilot=pilot,
                source=name,
                key_file=source.key_file,
                pseudonym_key_file=network.pseudonym_keys.get(pilot),
                outbox_path=workdir / "outboxes" / f"{pilot}--{name}.db",
                types=list(source.types),
                relay={"devices_dir": str(relays[key])} if key in relays else {},
                broker={
                    "url": broker.url,
                    "protocol": broker.protocol,
                    "username": user[0] if user else None,
                    "password": user[1] if user else None,
                    "connect_timeout": 5.0,
                },
                hub={"url": network.hub_url, "verifier_key": network.verifier_key},
                publish={"republish_after": 5.0, "republish_max": 30.0},
                backoff={"initial": 0.1, "maximum": 2.0},
                log={"level": "WARNING"},
                use_uvloop=False,
            )
            agents[key] = await stack.enter_async_context(open_agent(settings))
        tasks = [asyncio.create_task(a.run(), name=f"agent {k[1]}") for k, a in agents.items()]
        try:
            yield agents
        finally:
            for task in tasks:
                task.cancel()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            for result in results:
                if isinstance(result, Exception) and not isinstance(result, EdgeError):
                    raise result


class Replay:
    """One run of a scenario's events against a provisioned network."""

    def __init__(
        self,
        network: Network,
        header: Header,
        events: Sequence[AnyEvent],
        agents: dict[tuple[str, str], Agent],
        http: aiohttp.ClientSession,
        *,
        speed: float | None = None,
        erase_on_withdraw: bool = True,
        settle_timeout_s: float = 120.0,
        on_event: OnEvent | None = None,
        devices: HomeDevices | None = None,
    ) -> None:
        self.network = network
        self.header = header
        self.events = events
        self.agents = agents
        self.http = http
        self.speed = speed
        self.erase_on_withdraw = erase_on_withdraw
        self.settle_timeout_s = settle_timeout_s
        self.on_event = on_event
        self.devices = devices or HomeDevices(header, network)
        self.tallies: dict[str, PilotTally] = {p: PilotTally() for p in header.pilots}
        self.queries: list[QueryOutcome] = []
        self.withdrawals: list[WithdrawalOutcome] = []
        self._pending: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._baseline: dict[tuple[str, str], tuple[int, int]] = {}

    async def run(self) -> ReplayReport:
        for key, agent in self.agents.items():
            self._baseline[key] = await _delivered(agent)
        began = time.monotonic()
        first = _when(self.events[0].t) if self.events else 0.0
        for done, event in enumerate(self.events, 1):
            if self.speed is not None:
                due = (_when(event.t) - first) / self.speed - (time.monotonic() - began)
                if due > 0:
                    await self._flush()
                    await asyncio.sleep(due)
            if isinstance(event, RecordEvent):
                await self._record(event)
            elif isinstance(event, ConsentEvent):
                await self._consent(event)
            else:
                await self._query(event)
            if self.on_event is not None:
                self.on_event(done, event.kind)
        await self._flush()
        await self.settle()
        for key, agent in self.agents.items():
            delivered, dead = await _delivered(agent)
            base = self._baseline[key]
            tally = self.tallies.setdefault(key[0], PilotTally())
            tally.accepted += delivered - base[0]
            tally.rejected += dead - base[1]
        wall = time.monotonic() - began
        return ReplayReport(self.tallies, self.queries, wall, len(self.events), self.withdrawals)

    # -- records ---------------------------------------------------------------------------
    async def _record(self, event: RecordEvent) -> None:
        relay = self.devices.relay(event)
        key = (event.pilot, relay or event.source)
        if key not in self.agents:
            raise ReplayError(f"no agent runs source {key[0]}/{key[1]}")
        batch = self._pending.setdefault(key, [])
        batch.append(self.devices.seal(event) if relay is not None else event.submission())
        self.tallies.setdefault(event.pilot, PilotTally()).sent += 1
        if len(batch) >= SUBMIT_BATCH:
            await self._submit(key, self._pending.pop(key))

    async def _submit(self, key: tuple[str, str], batch: list[dict[str, Any]]) -> None:
        await self.agents[key].intake.submit_json(batch)

    async def _flush(self) -> None:
        pending, self._pending = self._pending, {}
        await asyncio.gather(*(self._submit(k, b) for k, b in pending.items() if b))

    async def settle(self) -> None:
        """Until every record handed to an agent has its receipt (its outbox is empty)."""
        await self._flush()
        deadline = time.monotonic() + self.settle_timeout_s
        while True:
            depths = await asyncio.gather(
                *(a.outbox.call(Outbox.depth) for a in self.agents.values())
            )
            if not any(depths):
                return
            if time.monotonic() > deadline:
                waiting = sum(depths)
                raise ReplayError(
                    f"{waiting} records still without a receipt after "
                    f"{self.settle_timeout_s:g} s; is the hub reading the broker?"
                )
            await asyncio.sleep(0.02)

    # -- consents --------------------------------------------------------------------------
    async def _consent(self, event: ConsentEvent) -> None:
        # Records waiting for submission are all older than this Consent and do not need it;
        # the ones after it join them only once the POST returned (the Consent is on the log).
        net = self.network
        client = net.clients[(event.pilot, event.source)]
        tally = self.tallies.setdefault(event.pilot, PilotTally())
        if event.kind == "consent.grant":
            consent = dict(event.payload)
            subject = net.pseudonym(event.pilot, event.patient)
            consent["patient"] = {"reference": f"Patient/{subject}"}
            status, _, body = await net.call(
                self.http, client, "POST", "/fhir/Consent", body=consent
            )
            if status != 201:
                raise ReplayError(f"Consent/{event.consent} was refused ({status}): {body}")
            tally.consents += 1
        else:
            # The records already sent under it are on the log before it is withdrawn (and
            # erased): nothing is left in flight to be refused.
            await self.settle()
            erase = "true" if self.erase_on_withdraw else "false"
            path = f"/fhir/Consent/{event.consent}/$withdraw?erase={erase}"
            status, headers, body = await net.call(self.http, client, "POST", path)
            if status != 200:
                raise ReplayError(f"withdrawing Consent/{event.consent} failed ({status}): {body}")
            tally.withdrawals += 1
            erased = int(headers.get("X-Erased-Bodies", "0"))
            self.withdrawals.append(WithdrawalOutcome(event, erased))

    # -- queries ---------------------------------------------------------------------------
    async def _query(self, event: QueryEvent) -> None:
        await self.settle()
        self.queries.append(await run_query(self.network, self.http, event))


async def run_query(
    network: Network, http: aiohttp.ClientSession, event: QueryEvent
) -> QueryOutcome:
    """Ask what the scripted query asks, as its client; the hub's answer decides."""
    client = network.clients[(event.pilot, event.source)]
    query = event.payload
    resource = FHIR_SEARCH.get(event.type)
    if resource is not None and event.patient is not None:
        subject = network.pseudonym(event.pilot, event.patient)
        path = f"/fhir/{resource}?subject=Patient/{subject}&_count=50"
        if query.since:
            path += f"&date=ge{query.since}"
    else:
        path = f"/api/v1/records?pilot={event.pilot}&type={event.type}&limit=1000"
        if query.since:
            path += f"&from={query.since}"
    status, _, body = await network.call(http, client, "GET", path, purpose=query.purpose)
    decision = {200: "allow", 403: "deny"}.get(status, "error")
    records, index = 0, None
    if status == 200 and isinstance(body, dict):
        if body.get("resourceType") == "Bundle":
            records = int(body.get("total") or len(body.get("entry") or []))
        else:
            records = len(body.get("records") or [])
            index = body.get("access_index")
    return QueryOutcome(event, client.client_id, status, decision, index, records)


async def _delivered(agent: Agent) -> tuple[int, int]:
    def read(outbox: Outbox) -> tuple[int, int]:
        return int(outbox.meta("delivered_total") or 0), int(outbox.meta("dead_total") or 0)

    return await agent.outbox.call(read)


def query_clients(events: Sequence[AnyEvent]) -> list[tuple[str, str, str]]:
    """``(pilot, client, org)`` of every scripted query, for provisioning."""
    found = {(e.pilot, e.source, e.payload.org) for e in events if isinstance(e, QueryEvent)}
    return sorted(found)


def kinds(events: Sequence[AnyEvent]) -> Counter[str]:
    return Counter(e.kind for e in events)


async def replay_scenario(
    header: Header,
    events: Sequence[AnyEvent],
    *,
    hub_url: str,
    admin_token: str | None,
    broker: BrokerAccess,
    workdir: Path,
    speed: float | None = None,
    extra_clients: Sequence[tuple[str, str, str]] = (),
    on_event: OnEvent | None = None,
    on_ready: Callable[[Network], None] | None = None,
    suite: Suite | None = None,
) -> tuple[Network, ReplayReport]:
    """Provision the scenario on the hub, run its agents and replay every event. Keys are
    of the hub's log's crypto suite (``suite``, when given, must be it)."""
    from .network import provision

    await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        network = await provision(
            http,
            header,
            hub_url=hub_url,
            admin_token=admin_token,
            workdir=workdir,
            clients=[*query_clients(events), *extra_clients],
            suite=suite,
        )
        if on_ready is not None:
            on_ready(network)
        devices = HomeDevices(header, network)
        relays = await asyncio.to_thread(devices.write_keys, workdir)
        async with running_agents(network, broker, workdir, relays) as agents:
            replay = Replay(
                network,
                header,
                events,
                agents,
                http,
                speed=speed,
                on_event=on_event,
                devices=devices,
            )
            report = await replay.run()
    return network, report
