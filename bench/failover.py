"""Takeover time of a standby hub on one PostgreSQL log (ledger/lease.py,
gateway/cluster/standby.py): two ``swiftchain hub`` processes on a fresh database of the
machine's server, one active and one standby; the active one is killed (``kill -9`` of the
whole hub: a machine lost) or its sequencer frozen (``SIGSTOP``: a hub cut off, whose
database sessions linger), and the clock runs until the standby answers ``/readyz`` 200: it
holds the lease, opened the writer, continued the tree and connected to the broker, so
records are receipted again. Rounds alternate the roles: the killed hub is started again as
the new standby.

    .venv/bin/python -m bench.failover [--rounds 4] [--ttl 5] [--json FILE]

The issue's target is "within a few seconds"; a killed hub is taken over once its sessions
end (no timer), a frozen one after ``lease_ttl_s`` without a renewal, plus the standby's
poll (0.25 s) and the opening of the writer.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from bench.figures import Figure, write_figures
from tests.support.broker import Mosquitto
from tests.support.hub import ProcessHub, process_hub
from tests.support.postgres import MACHINE_URL, answers, fresh_database

#: Bound on one wait (a hang, not a figure).
WAIT_S = 120.0


def _ready(hub: ProcessHub) -> bool:
    try:
        with urllib.request.urlopen(hub.http_url + "/readyz", timeout=2) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _until(condition: object, what: str) -> float:
    """Seconds until ``condition()`` holds, polled every 10 ms."""
    start = time.monotonic()
    while not condition():  # type: ignore[operator]
        if time.monotonic() - start > WAIT_S:
            raise SystemExit(f"{what}: not within {WAIT_S:.0f} s")
        time.sleep(0.01)
    return time.monotonic() - start


def measure(rounds: int, ttl: float, server: str) -> dict[str, list[float]]:
    work = Path(tempfile.mkdtemp(prefix="swiftchain-failover-"))
    times: dict[str, list[float]] = {"kill": [], "freeze": []}
    broker = Mosquitto(work / "mosquitto")
    (work / "mosquitto").mkdir()
    broker.start()
    try:
        with fresh_database(server) as url:
            common = {
                "ledger_url": url,
                "lease_ttl_s": ttl,
                "workers": 1,
                "mqtt_share_group": "bench",
            }
            a = process_hub(work / "a", broker.url, **common)
            (work / "b").mkdir()
            shutil.copy(work / "a" / "hub.key", work / "b" / "hub.key")
            b = process_hub(work / "b", broker.url, **common)
            active, standby = a, b
            active.start()
            try:
                for n in range(rounds):
                    standby.start(wait=False)
                    standby.wait_listening()
                    time.sleep(1.0)  # settled as a standby, following the log
                    kind = "kill" if n % 2 == 0 else "freeze"
                    if kind == "kill":
                        started = time.monotonic()
                        active.kill()
                    else:
                        [sequencer] = active.children("sequencer")
                        started = time.monotonic()
                        os.kill(sequencer, signal.SIGSTOP)
                    _until(lambda hub=standby: _ready(hub), "the standby took over")
                    took = time.monotonic() - started
                    times[kind].append(took)
                    print(f"round {n + 1}: {kind}: the standby took writes after {took:.2f} s")
                    if kind == "freeze":
                        os.kill(sequencer, signal.SIGCONT)  # it is fenced and stops
                        assert active.proc is not None
                        active.proc.wait(WAIT_S)
                        active.proc = None
                    active, standby = standby, active
            finally:
                for hub in (a, b):
                    if hub.proc is not None:
                        hub.kill()
    finally:
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--ttl", type=float, default=5.0, help="lease_ttl_s of both hubs")
    parser.add_argument("--url", default=MACHINE_URL, help="a PostgreSQL server (loopback)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if "127.0.0.1" not in args.url and "localhost" not in args.url:
        raise SystemExit("loopback servers only")
    if not answers(args.url):
        print(f"no PostgreSQL answers at {args.url}: skipped")
        if args.json:
            write_figures(args.json, [Figure("failover", "skipped: no PostgreSQL server")])
        return
    times = measure(args.rounds, args.ttl, args.url)
    figures = []
    for kind, what in (("kill", "kill -9 of the active hub"), ("freeze", "its sequencer frozen")):
        if not times[kind]:
            continue
        worst = max(times[kind])
        figures.append(
            Figure(
                f"failover: {what}, until the standby takes writes (lease_ttl_s {args.ttl:g})",
                ", ".join(f"{t:.2f}" for t in times[kind])
                + f" s (median {statistics.median(times[kind]):.2f} s)",
                value=worst,
                unit="s",
                op="<=",
                bound=args.ttl + 5.0,
            )
        )
    for f in figures:
        print(f"{f.measure}: {f.result}")
    if args.json:
        write_figures(args.json, figures)


if __name__ == "__main__":
    main()
