"""Edge agents for tests: settings in tmp_path, agents run in the test's loop or as
``swiftchain edge`` subprocesses, an intake on a real outbox, and the inputs the sources take."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from edge.agent import Agent, open_agent
from edge.outbox import Outbox
from edge.settings import EdgeSettings, load_settings
from ledger.envelope import utc_now
from ledger.keys import write_key_pair
from ledger.suite import DEFAULT_SUITE, Suite

from .broker import DIE_WITH_PARENT

SWIFTCHAIN = str(Path(sys.executable).with_name("swiftchain"))
PSEUDONYM_KEY_HEX = "5a" * 32


def write_edge_config(
    directory: Path,
    /,
    *,
    pilot: str,
    source: str,
    key_file: Path | None = None,
    broker_url: str,
    hub_url: str = "http://127.0.0.1:9",
    hub_key: str | None = None,
    suite: Suite = DEFAULT_SUITE,
    **sections: Any,
) -> Path:
    """``edge.toml`` (and a key, of ``suite`` when it makes one, and a pseudonymisation
    key) in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    if key_file is None:
        key_file = directory / "source.key"
        write_key_pair(key_file, suite=suite)
    (directory / "pseudonym.key").write_text(PSEUDONYM_KEY_HEX + "\n")
    top: dict[str, Any] = {
        "pilot": pilot,
        "source": source,
        "key_file": str(key_file),
        "pseudonym_key_file": "pseudonym.key",
        "outbox_path": "outbox.db",
        "default_consent": "consent-1",
    }
    top.update({k: v for k, v in sections.items() if not isinstance(v, dict)})
    tables: dict[str, dict[str, Any]] = {
        "broker": {"url": broker_url},
        "hub": {"url": hub_url, **({"verifier_key": hub_key} if hub_key else {})},
        "backoff": {"initial": 0.05, "maximum": 0.5},
        "log": {"level": "INFO", "format": "json"},
    }
    for name, table in sections.items():
        if isinstance(table, dict):
            tables[name] = {**tables.get(name, {}), **table}
    path = directory / "edge.toml"
    path.write_text(_toml(top, tables))
    return path


def _toml(top: dict[str, Any], tables: dict[str, dict[str, Any]]) -> str:
    lines = [f"{k} = {json.dumps(v)}" for k, v in top.items()]
    for name, table in tables.items():
        lines.append(f"\n[{name}]")
        for k, v in table.items():
            if isinstance(v, list) and v and isinstance(v[0], dict):
                for item in v:
                    lines.append(f"\n[[{name}.{k}]]")
                    lines.extend(f"{ik} = {json.dumps(iv)}" for ik, iv in item.items())
            else:
                lines.append(f"{k} = {json.dumps(v)}")
    return "\n".join(lines) + "\n"


@asynccontextmanager
async def running_agent(settings: EdgeSettings) -> AsyncIterator[Agent]:
    """The agent in this test's event loop until the block ends."""
    async with open_agent(settings) as agent:
        task = asyncio.create_task(agent.run())
        ready = asyncio.create_task(agent.ready.wait())
        done, _ = await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            ready.cancel()
            task.result()
        try:
            yield agent
        finally:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass


def outbox_depth(path: Path) -> int:
    box = Outbox(path)
    try:
        return box.depth()
    finally:
        box.close()


async def wait_until(
    condition: Callable[[], bool], within: float = 30.0, interval: float = 0.05
) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {within}s")
        await asyncio.sleep(interval)


async def drained(agent: Agent, within: float = 60.0) -> None:
    """Until the agent's outbox is empty."""
    deadline = time.monotonic() + within
    while await agent.outbox.call(Outbox.depth):
        if time.monotonic() > deadline:
            depth = await agent.outbox.call(Outbox.depth)
            raise TimeoutError(f"outbox still holds {depth} records after {within}s")
        await asyncio.sleep(0.1)


class EdgeProcess:
    """``swiftchain edge --config ...`` as a child process (to kill -9 it)."""

    def __init__(self, config: Path) -> None:
        self.config = config
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, stdin: int | None = subprocess.DEVNULL) -> subprocess.Popen[bytes]:
        log = open(self.config.parent / "edge.log", "ab")
        self.proc = subprocess.Popen(
            [SWIFTCHAIN, "edge", "--config", str(self.config)],
            stdin=stdin,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            preexec_fn=DIE_WITH_PARENT,
        )
        return self.proc

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(60)
            self.proc = None

    def terminate(self) -> int:
        assert self.proc is not None
        self.proc.terminate()
        code = self.proc.wait(30)
        self.proc = None
        return code

    def log_text(self) -> str:
        return (self.config.parent / "edge.log").read_text(errors="replace")


def settings_from(config: Path) -> EdgeSettings:
    return load_settings(config)


# -- an intake on a real outbox, without a link (for the sources' tests) -------------------


@asynccontextmanager
async def running_intake(
    directory: Path, suite: Suite = DEFAULT_SUITE, **kwargs: Any
) -> AsyncIterator[Any]:
    from edge.datatypes import TypeRegistry
    from edge.intake import Intake
    from edge.outbox import AsyncOutbox
    from edge.pseudonym import Pseudonymiser
    from edge.signer import Signer
    from ledger.keys import generate_key

    outbox = await AsyncOutbox.open(directory / "outbox.db")
    intake = Intake(
        outbox,
        Signer("hospital-a", "ward-3", generate_key(suite)),
        kwargs.pop("registry", None) or TypeRegistry(),
        Pseudonymiser(bytes.fromhex(PSEUDONYM_KEY_HEX), "hospital-a"),
        default_consent=kwargs.pop("default_consent", None),
        **kwargs,
    )
    task = asyncio.create_task(intake.run())
    try:
        yield intake
    finally:
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        await outbox.close()


def stored_records(path: Path) -> list[dict[str, Any]]:
    """The records in an outbox, parsed, in seq order."""
    box = Outbox(path)
    try:
        rows = box.conn.execute("SELECT wire FROM outbox ORDER BY seq").fetchall()
    finally:
        box.close()
    return [json.loads(r[0]) for r in rows]


# -- inputs the sources take -----------------------------------------------------------------


def observation(patient: str = "MRN-4711") -> dict[str, Any]:
    """A heart-rate Observation as a hospital system posts it (the raw patient id in it)."""
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": f"Patient/{patient}"},
        "effectiveDateTime": "2026-05-01T10:30:00+02:00",
        "valueQuantity": {"value": 72, "unit": "/min"},
    }


def reading(i: int) -> dict[str, object]:
    """A parking reading, observed now, as a file or a stream line carries it."""
    return {
        "type": "city.parking",
        "payload": {"facility": "p-1", "observed_at": utc_now(), "capacity": 10, "occupied": i},
    }
