"""``swiftchain hub`` with front ends: one sequencer process and N front-end processes, all
children of this one, which only starts, watches and stops them.

- The sequencer starts first; front ends start once its channel answers.
- Every front end serves HTTP on the same port (``SO_REUSEPORT``: the kernel spreads the
  connections) and subscribes to the records through the same MQTT shared subscription
  under a client id of its own (``<mqtt_client_id>-<index>``), so the broker spreads the
  records and keeps each one's session.
- A front end that dies is started again (its records without a receipt come back from
  their agents); more than ``MAX_RESTARTS`` in ``RESTART_WINDOW_S`` stops the hub. If the
  sequencer dies, the hub stops with its exit status.
- SIGTERM or SIGINT: front ends stop first (each drains: what it took is committed and
  answered), then the sequencer (it commits what is queued and stores the checkpoint).

Children get their settings on stdin (JSON, secrets included: never on a command line or
in a file), with the run's secret for the channel; metrics go to a directory of the run's
(prometheus-client's multiprocess mode, ``gateway.metrics``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from runtime.process import die_with_parent

from ..metrics import MULTIPROC_ENV
from ..settings import HubSettings

log = logging.getLogger("swiftchain.hub.supervisor")

MAX_RESTARTS = 5
RESTART_WINDOW_S = 60.0
#: Unix socket paths are limited to 108 bytes; longer ones move to a private temp folder.
MAX_SOCKET_PATH = 100
#: How long the sequencer may take to open the ledger and answer on its channel.
SEQUENCER_START_S = 60.0
KILL_GRACE_S = 5.0


def child_settings(settings: HubSettings, **changes: Any) -> dict[str, Any]:
    """The settings as JSON values, secrets in the clear (for a child's stdin only)."""
    data = settings.model_dump(mode="json")
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            data[name] = value.get_secret_value()
    data.update(changes)
    return data


class Child:
    def __init__(
        self,
        role: str,
        index: int,
        settings: dict[str, Any],
        env: dict[str, str],
        output: Path | None = None,
    ) -> None:
        self.output = output
        self.role = role
        self.index = index
        self.settings = settings
        self.env = env
        self.proc: asyncio.subprocess.Process | None = None
        self.starts: list[float] = []

    @property
    def name(self) -> str:
        return "sequencer" if self.role == "sequencer" else f"front end {self.index}"

    async def start(self, secret: str, log_level: str) -> None:
        self.starts.append(time.monotonic())
        # Opening a log file for appending does not wait on the disk.
        sink = open(self.output, "ab") if self.output is not None else None  # noqa: ASYNC230
        try:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "gateway.cluster.child",
                self.role,
                str(self.index),
                stdin=asyncio.subprocess.PIPE,
                stdout=sink,
                stderr=sink,
                env=self.env,
                preexec_fn=_own_group_dying_with_parent(),
            )
        finally:
            if sink is not None:
                sink.close()  # the child holds its own copy
        assert self.proc.stdin is not None
        self.proc.stdin.write(
            json.dumps(
                {"settings": self.settings, "secret": secret, "log_level": log_level}
            ).encode()
        )
        await self.proc.stdin.drain()
        self.proc.stdin.close()
        log.info("%s started (pid %d)", self.name, self.proc.pid)

    def restarts_exhausted(self) -> bool:
        now = time.monotonic()
        self.starts = [t for t in self.starts if now - t < RESTART_WINDOW_S]
        return len(self.starts) > MAX_RESTARTS

    async def stop(self, budget_s: float) -> int | None:
        proc = self.proc
        if proc is None or proc.returncode is not None:
            return proc.returncode if proc is not None else None
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(budget_s):
                return await proc.wait()
        except TimeoutError:
            log.error("%s did not stop within %.0f s; killing it", self.name, budget_s)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            return await proc.wait()


def _own_group_dying_with_parent() -> Callable[[], None]:
    """A child in a process group of its own (a Ctrl-C, or a SIGTERM to the group, reaches
    the supervisor only, which stops the children in their order: front ends, then the
    sequencer), killed by the kernel if the supervisor dies."""
    die = die_with_parent()

    def preexec() -> None:
        os.setpgid(0, 0)
        if die is not None:
            die()

    return preexec


def reserve_port(host: str, port: int) -> tuple[int, socket.socket | None]:
    """For ``http_port = 0``: a free port, held (bound, not listening) so that no one else
    takes it before the front ends bind it with ``SO_REUSEPORT``."""
    if port != 0:
        return port, None
    holder = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    holder.bind((host, 0))
    return int(holder.getsockname()[1]), holder


def socket_path(settings: HubSettings) -> tuple[Path, Path | None]:
    """The channel's path, and a temp folder made for it when the default is too long."""
    path = settings.sequencer_path
    if len(str(path)) <= MAX_SOCKET_PATH:
        return path, None
    folder = Path(tempfile.mkdtemp(prefix="swiftchain-seq-"))
    return folder / "seq.sock", folder


async def supervise(
    settings: HubSettings,
    log_level: str,
    stopping: asyncio.Event | None = None,
    output: Path | None = None,
) -> int:
    """Run the hub's processes until a signal (0) or a failure (non-zero); with
    ``stopping`` (a program that runs the hub among its parts: the demo), until it is set,
    the program's own signal handling left alone; the children's logs to ``output`` (else
    to this process's stderr)."""
    n = settings.front_ends
    secret = secrets.token_urlsafe(32)
    metrics_dir = Path(tempfile.mkdtemp(prefix="swiftchain-metrics-"))
    sock, sock_folder = socket_path(settings)
    port, holder = reserve_port(settings.http_host, settings.http_port)
    env = {**os.environ, MULTIPROC_ENV: str(metrics_dir), "PYTHONUNBUFFERED": "1"}
    common = {"sequencer_socket": str(sock), "http_port": port, "workers": n}
    sequencer = Child("sequencer", 0, child_settings(settings, **common), env, output)
    fronts = [
        Child(
            "front",
            i,
            child_settings(
                settings, **common, mqtt_client_id=f"{settings.mqtt_client_id}-{i}"[:64]
            ),
            env,
            output,
        )
        for i in range(n)
    ]
    loop = asyncio.get_running_loop()
    signals = stopping is None
    stopping = stopping or asyncio.Event()
    if signals:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stopping.set)
    status = 0
    try:
        await sequencer.start(secret, log_level)
        if not await _wait_channel(sequencer, sock, stopping):
            return sequencer.proc.returncode or 1 if sequencer.proc else 1
        for front in fronts:
            await front.start(secret, log_level)
        log.info("hub: sequencer and %d front end(s) on port %d", n, port)
        status = await _watch(sequencer, fronts, secret, log_level, stopping, metrics_dir)
    finally:
        budget = settings.drain_timeout_s + KILL_GRACE_S
        await asyncio.gather(*(f.stop(budget) for f in fronts))
        code = await sequencer.stop(budget)
        if status == 0 and code not in (0, None, -signal.SIGTERM):
            status = code
        if signals:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
        if holder is not None:
            holder.close()
        shutil.rmtree(metrics_dir, ignore_errors=True)
        if sock_folder is not None:
            shutil.rmtree(sock_folder, ignore_errors=True)
    if status == 0:
        log.info("hub stopped cleanly")
    else:
        log.error("hub stopped with status %d", status)
    return status


async def _wait_channel(sequencer: Child, sock: Path, stopping: asyncio.Event) -> bool:
    """Until the sequencer listens on its channel; False if it exits or the hub stops."""
    assert sequencer.proc is not None
    deadline = time.monotonic() + SEQUENCER_START_S
    while time.monotonic() < deadline and not stopping.is_set():
        if sequencer.proc.returncode is not None:
            log.error("the sequencer exited with status %d", sequencer.proc.returncode)
            return False
        try:
            _, writer = await asyncio.open_unix_connection(str(sock))
        except OSError:
            pass
        else:
            writer.close()
            return True
        await asyncio.sleep(0.05)
    if not stopping.is_set():
        log.error("the sequencer did not open its channel within %.0f s", SEQUENCER_START_S)
    return False


async def _watch(
    sequencer: Child,
    fronts: list[Child],
    secret: str,
    log_level: str,
    stopping: asyncio.Event,
    metrics_dir: Path,
) -> int:
    from prometheus_client import multiprocess

    while not stopping.is_set():
        assert sequencer.proc is not None
        if sequencer.proc.returncode is not None:
            log.error("the sequencer exited (status %d); stopping", sequencer.proc.returncode)
            return sequencer.proc.returncode or 1
        for front in fronts:
            proc = front.proc
            if proc is None or proc.returncode is None:
                continue
            log.error("%s exited (status %d)", front.name, proc.returncode)
            with contextlib.suppress(Exception):
                multiprocess.mark_process_dead(proc.pid, str(metrics_dir))  # type: ignore[no-untyped-call]
            if front.restarts_exhausted():
                log.error("%s keeps failing; stopping the hub", front.name)
                return 1
            await front.start(secret, log_level)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.2):
                await stopping.wait()
    return 0
