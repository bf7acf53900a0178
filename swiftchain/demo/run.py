"""`swiftchain demo`, composed: a broker, the hub, the scenario's organisations, sources and
clients registered, one edge agent per source, the replay, the story's checks, then the
dashboard served until cancelled (or the end, with ``once``).

This is the composition root: the one place that imports the hub, the agents and the
simulators together. The command module only parses options and renders.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from ledger.policy import TrustPolicy
from ledger.suite import DEFAULT_SUITE, Suite
from ledger.verify import VerifyReport
from pilots.trust import load_trust_policy
from simulators.build import build_scenario
from simulators.network import Network
from simulators.replay import BrokerAccess, OnEvent, ReplayReport, replay_scenario
from simulators.scenario import Scenario

from .alliance import DemoAlliance, demo_alliance
from .broker import BrokerKind, DemoBroker, demo_broker
from .hub import ORIGIN, DemoHub, demo_hub, hub_key
from .mirror import DemoMirror, demo_mirror, mirror_step
from .stopping import sigterm_as_interrupt
from .story import (
    AUDITOR,
    AUDITOR_ORG,
    STORY_PILOT,
    Quorum,
    StoryStep,
    audit_step,
    query_steps,
    quorum_step,
    rewrite_step,
    tamper_step,
    verify_step,
    withdrawal_step,
)

_SUITE_TEXT = {
    "ed25519-sha256": "Ed25519 signatures, SHA-256 tree (RFC 9162)",
    "sm2-sm3": "SM2 signatures, SM3 tree and commitments (GM/T 0003, 0004)",
}


@dataclass(frozen=True)
class DemoOptions:
    workdir: Path
    port: int = 8080
    broker: BrokerKind = "auto"
    #: None: as fast as the network takes the records.
    speed: float | None = None
    once: bool = False
    seed: int = 7
    hours: float = 24.0
    scale: str = "default"
    #: The hub's front-end processes (None: one per core; 0: the hub in the demo's process).
    workers: int | None = None
    #: The log's crypto suite: every key of the run is of it (:mod:`ledger.suite`).
    suite: Suite = DEFAULT_SUITE


@dataclass
class DemoResult:
    broker: DemoBroker
    hub: DemoHub
    scenario: Scenario
    replay: ReplayReport
    steps: list[StoryStep]
    ledger: VerifyReport
    wall_s: float
    alliance: DemoAlliance
    quorum: Quorum
    network: Network | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return bool(self.steps) and all(s.ok for s in self.steps)


@dataclass
class DemoHooks:
    """What the command shows while the demo runs."""

    on_stage: Callable[[str], None] = lambda text: None
    #: Called with the number of events once they are known; returns the per-event callback.
    on_replay: Callable[[int], OnEvent] = lambda total: lambda done, kind: None
    #: Called with the result, before serving the dashboard (not called with ``once``).
    on_result: Callable[[DemoResult], None] = lambda result: None


def _clean(workdir: Path) -> None:
    """A fresh run: the previous run's ledger, outboxes and keys go (the folder stays, and
    keeps itself out of git as .pytest_cache does)."""
    import shutil

    (workdir / ".gitignore").write_text("# Made by swiftchain demo: a run's state.\n*\n")

    for name in (
        "hub",
        "keys",
        "clients",
        "outboxes",
        "mosquitto",
        "witnesses",
        "mirror",
        "tampered-copy.db",
        "trust-policy.yaml",
    ):
        target = workdir / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()


async def run_demo(options: DemoOptions, hooks: DemoHooks | None = None) -> DemoResult:
    """The demo, start to end; SIGTERM or Ctrl-C stops it, parts and children alike."""
    with sigterm_as_interrupt():
        return await _run_demo(options, hooks or DemoHooks())


async def _run_demo(options: DemoOptions, hooks: DemoHooks) -> DemoResult:
    began = time.monotonic()
    workdir = options.workdir
    await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
    await asyncio.to_thread(_clean, workdir)
    hooks.on_stage(
        f"Simulating {options.hours:g} h of the city (seed {options.seed}, {options.scale})"
    )
    scenario = await asyncio.to_thread(
        build_scenario, seed=options.seed, hours=options.hours, scale=options.scale
    )
    header = scenario.header
    sources = [(s.pilot, s.source) for s in header.sources]
    _, log_vkey = await asyncio.to_thread(hub_key, workdir, options.suite)
    hooks.on_stage(f"Crypto suite: {options.suite.name} ({_SUITE_TEXT[options.suite.name]})")
    async with (
        demo_broker(options.broker, workdir, sources) as broker,
        demo_alliance(workdir, log_vkey, ORIGIN) as alliance,
    ):
        hooks.on_stage(f"Broker: {broker.description}")
        hooks.on_stage(f"Witnesses: {alliance.description}")
        async with (
            demo_hub(workdir, options.port, broker, alliance.policy_path, options.workers) as hub,
            demo_mirror(workdir, hub.url, log_vkey) as mirror,
        ):
            hooks.on_stage(f"Hub: {hub.url} (ledger {hub.db_path})")
            hooks.on_stage(f"Mirror: {mirror.description}")
            result = await _replay_and_story(
                options, hooks, scenario, broker, alliance, hub, began, mirror
            )
            if not options.once:
                hooks.on_result(result)
                await asyncio.Event().wait()  # serve the dashboard until cancelled
            return result


async def _replay_and_story(
    options: DemoOptions,
    hooks: DemoHooks,
    scenario: Scenario,
    broker: DemoBroker,
    alliance: DemoAlliance,
    hub: DemoHub,
    began: float,
    mirror: DemoMirror,
) -> DemoResult:
    header = scenario.header
    hooks.on_stage(
        f"Registering {len(header.sources)} sources and their organisations; "
        f"one edge agent per record source"
        + (
            f"; {len(header.devices)} patients' home devices, relayed by their hospitals'"
            " agents (never registered, never named on the log)"
            if header.devices
            else ""
        )
    )
    network, report = await replay_scenario(
        header,
        scenario.events,
        hub_url=hub.url,
        admin_token=hub.admin_token,
        broker=BrokerAccess(broker.url, broker.edge_protocol, broker.credentials),
        workdir=options.workdir,
        speed=options.speed,
        extra_clients=[(STORY_PILOT, AUDITOR, AUDITOR_ORG)],
        on_event=hooks.on_replay(len(scenario.events)),
        suite=options.suite,
    )
    hooks.on_stage(
        "Checking the story: queries, withdrawal, audit, the witnesses' quorum, the mirror,"
        " tampering, the rewrite refused, verification"
    )
    steps = query_steps(report)
    withdrawn = withdrawal_step(report)
    if withdrawn is not None:
        steps.append(withdrawn)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
        audited = await audit_step(network, http, report)
        if audited is not None:
            steps.append(audited)
        policy: TrustPolicy = await asyncio.to_thread(load_trust_policy, alliance.policy_path)
        operators = {w.name: w.operator for w in alliance.witnesses}
        cosigned, quorum = await quorum_step(http, hub.url, policy, operators)
        steps.append(cosigned)
        steps.append(await mirror_step(http, mirror, hub.url))
        tampered, copy, index = await tamper_step(hub.db_path, options.workdir)
        steps.append(tampered)
        witnesses = {f"{w.operator}'s witness": w.url for w in alliance.witnesses}
        steps.append(
            await rewrite_step(
                http, copy, index, quorum, ORIGIN, hub.settings.signing_key, witnesses
            )
        )
    verified, ledger = await verify_step(hub.db_path)
    steps.append(verified)
    return DemoResult(
        broker,
        hub,
        scenario,
        report,
        steps,
        ledger,
        time.monotonic() - began,
        alliance,
        quorum,
        network,
    )
