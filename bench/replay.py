"""Replay benchmark: the demo's default scenario at maximum speed through the whole system.

    .venv/bin/python bench/replay.py [--scale default] [--hours 24] [--seed 7]

A real Mosquitto (anonymous, loopback), the hub as `swiftchain hub` in a process of its own
(consent checked at ingest, as deployed), and in this process one edge agent per source
with its own durable outbox, Consents through the Consent API and the scripted queries over
HTTP (`simulators.replay`). The clock runs from the first event released to the last
receipt settled; provisioning (registration, client keys) is timed apart. Ends with the
ledger verified from the file alone.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ledger.verify import verify_ledger
from simulators.build import build_scenario
from simulators.replay import BrokerAccess, replay_scenario
from tests.support.broker import Mosquitto
from tests.support.hub import ADMIN_TOKEN, process_hub


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", default="default")
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    scenario = build_scenario(seed=args.seed, hours=args.hours, scale=args.scale)
    header = scenario.header
    with tempfile.TemporaryDirectory(prefix="swiftchain-bench-replay-") as tmp:
        root = Path(tmp)
        (root / "mosquitto").mkdir()
        broker = Mosquitto(root / "mosquitto")
        broker.start()
        hub = process_hub(root / "hub", broker.url)
        hub.start()
        ready: list[float] = []
        began = time.perf_counter()
        try:
            _, report = asyncio.run(
                replay_scenario(
                    header,
                    scenario.events,
                    hub_url=hub.http_url,
                    admin_token=ADMIN_TOKEN,
                    broker=BrokerAccess(broker.url),
                    workdir=root / "replay",
                    on_ready=lambda _: ready.append(time.perf_counter()),
                )
            )
        finally:
            total = time.perf_counter() - began
            hub.terminate()
            broker.stop()
        verified = verify_ledger(hub.db_path)

    provisioning = ready[0] - began if ready else 0.0
    queries = sum(q.as_expected for q in report.queries)
    print(
        f"scenario        seed {header.seed}, {header.scale}, {args.hours:g} h, "
        f"{len(header.sources)} sources, {report.events:,} events"
    )
    print(
        f"records         {report.records_sent:,} sent, {report.records_accepted:,} accepted, "
        f"{report.records_rejected:,} rejected"
    )
    print(
        f"consents        {sum(t.consents for t in report.pilots.values())} granted, "
        f"{sum(t.withdrawals for t in report.pilots.values())} withdrawn (with erasure)"
    )
    print(f"queries         {queries}/{len(report.queries)} as the story expects")
    print(
        f"replay wall     {report.wall_s:.2f} s  ->  {report.records_per_s:,.0f} records/s "
        f"(first event to last receipt)"
    )
    print(f"provisioning    {provisioning:.2f} s (orgs, sources, clients, agents starting)")
    print(f"end to end      {total:.2f} s")
    state = "verified" if verified.ok else "NOT VERIFIED"
    print(f"ledger          {verified.size:,} entries, {state}")


if __name__ == "__main__":
    main()
