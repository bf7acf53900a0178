from __future__ import annotations

import time
from pathlib import Path

from edge.settings import load_settings
from ledger.envelope import utc_now
from ledger.store import LedgerReader

from .conftest import drained, running_agent, write_edge_config


async def test_throughput(tmp_path: Path, running_hub) -> None:
    key, _ = running_hub.register_source("city-air", "station-1", ["city.air-quality"])
    config = write_edge_config(
        tmp_path / "edge",
        pilot="city-air",
        source="station-1",
        key_file=key,
        broker_url=running_hub.mqtt_url,
        hub_url=running_hub.http_url,
        hub={"proof_check": "sampled"},
    )
    settings = load_settings(config)
    async with running_agent(settings) as agent:
        n = 5000
        t = time.perf_counter()
        import asyncio

        now = utc_now()
        await asyncio.gather(
            *[
                agent.intake.submit_json(
                    [
                        {
                            "type": "city.air-quality",
                            "payload": {"station": "s1", "observed_at": now, "pm25": i / 10},
                        }
                        for i in range(100)
                    ]
                )
                for _ in range(n // 100)
            ]
        )
        t1 = time.perf_counter()
        await drained(agent, 60)
        t2 = time.perf_counter()
        print(
            "stored",
            n / (t1 - t),
            "rec/s; end-to-end",
            n / (t2 - t),
            agent.settler.counts,
            agent.link.published_total,
        )
    with LedgerReader(running_hub.db_path) as r:
        print("ledger size", r.size())
