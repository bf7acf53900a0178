"""The demo's alliance: two witnesses, each run by a different member organisation of the
pilots, as `swiftchain witness serve` child processes on free loopback ports, and the trust
policy the hub submits its checkpoints under (YAML, docs/alliance.md): a quorum of both
organisations, so that neither member alone, and not the operator, can vouch for the log.

Each witness is made as its organisation would make it (``witness init``, then ``add-log``
of the hub's verifier key); the children die with the demo (``stopping.die_with_parent``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from ledger.checkpoint import NoteVerifier
from witness.home import init_home, open_home

from .broker import free_port
from .children import swiftchain_child, wait_healthy

#: The member organisations that run the demo's witnesses (pilots/definitions/*.yaml): a
#: hospital of the chronic-care pilot and the city's disease-control centre.
OPERATORS = ("harbour-peoples-hospital", "harbour-cdc")
#: The quorum's group: one witness of each organisation must cosign.
QUORUM_GROUP = "two-organisations"


@dataclass(frozen=True)
class DemoWitness:
    operator: str
    name: str
    directory: Path
    port: int
    vkey: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.directory / "witness.log"


@dataclass(frozen=True)
class DemoAlliance:
    witnesses: tuple[DemoWitness, ...]
    policy_path: Path

    @property
    def threshold(self) -> int:
        return len(OPERATORS)

    @property
    def description(self) -> str:
        run_by = ", ".join(f"{w.name} (run by {w.operator}) at {w.url}" for w in self.witnesses)
        return (
            f"{run_by}; trust policy {self.policy_path.name}: quorum {QUORUM_GROUP}, "
            f"{self.threshold} of {len(OPERATORS)} organisations"
        )


def witness_name(operator: str) -> str:
    return f"witness.{operator}.example/w1"


def make_witness(directory: Path, operator: str, log_vkey: str, origin: str) -> DemoWitness:
    """``swiftchain witness init`` and ``add-log`` of the hub's key, as the member does."""
    name = witness_name(operator)
    now = int(time.time())
    # A national-profile alliance's witnesses cosign with keys of the log's own kind.
    suite = NoteVerifier.parse(log_vkey).suite
    vkey = init_home(directory, name, now, suite=suite).encode()
    _, store = open_home(directory)
    try:
        store.add_log(origin, NoteVerifier.parse(log_vkey), now)
    finally:
        store.close()
    return DemoWitness(operator, name, directory, free_port(), vkey)


def policy_yaml(log_vkey: str, origin: str, witnesses: Sequence[DemoWitness]) -> str:
    """The trust policy in the pilot definitions' style (pilots/trust.py)."""
    lines = [
        "description: The demo alliance's ledger, witnessed by two member organisations",
        "log:",
        f"  key: {log_vkey}",
        f"  origin: {origin}",
        "witnesses:",
    ]
    for w in witnesses:
        lines += [
            f"  - name: {w.name}",
            f"    key: {w.vkey}",
            f"    operator: {w.operator}",
            f"    url: {w.url}",
        ]
    members = ", ".join(w.operator for w in witnesses)
    lines += [
        "groups:",
        f"  - name: {QUORUM_GROUP}",
        f"    threshold: {len(witnesses)}",
        f"    members: [{members}]",
        f"quorum: {QUORUM_GROUP}",
    ]
    return "\n".join(lines) + "\n"


@asynccontextmanager
async def demo_alliance(workdir: Path, log_vkey: str, origin: str) -> AsyncIterator[DemoAlliance]:
    """Both witnesses made and serving, and the policy file written; stopped on exit."""
    base = workdir / "witnesses"
    witnesses = tuple(
        await asyncio.gather(
            *(
                asyncio.to_thread(make_witness, base / operator, operator, log_vkey, origin)
                for operator in OPERATORS
            )
        )
    )
    policy_path = workdir / "trust-policy.yaml"
    await asyncio.to_thread(policy_path.write_text, policy_yaml(log_vkey, origin, witnesses))
    async with AsyncExitStack() as stack:
        procs = []
        for w in witnesses:
            args = ["witness", "serve", "--dir", str(w.directory), "--port", str(w.port)]
            child = swiftchain_child(
                f"witness {w.name}",
                [*args, "--log-level", "INFO"],
                w.log_file,
                w.url + "/healthz",
                wait=False,
            )
            procs.append(await stack.enter_async_context(child))
        # Started together, waited for together: a Python process takes a second to start.
        await asyncio.gather(
            *(
                wait_healthy(f"witness {w.name}", p, w.log_file, w.url + "/healthz")
                for w, p in zip(witnesses, procs, strict=True)
            )
        )
        yield DemoAlliance(witnesses, policy_path)
