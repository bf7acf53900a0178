"""The agent's ``/metrics`` over real HTTP, with a real agent, hub and Mosquitto: off by
default, on loopback when on, and counting what an operator watches (outbox depth, in
flight, dead letters, receipts by status, the broker connection)."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp

from edge.settings import load_settings
from ledger.envelope import utc_now
from tests.support.broker import Mosquitto
from tests.support.edge import drained, running_agent, wait_until, write_edge_config
from tests.support.hub import ThreadHub

PILOT, SOURCE, TYPE = "demo-zone", "meter-1", "city.parking"


async def scrape(port: int) -> dict[str, float]:
    """``name{labels} value`` lines as a dict (comments left out)."""
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{port}/metrics") as resp,
    ):
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        text = await resp.text()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


def config(tmp_path: Path, hub: ThreadHub, **top: object) -> Path:
    key, _ = hub.register_source(PILOT, SOURCE, [TYPE])
    inbox = tmp_path / "inbox"
    inbox.mkdir(exist_ok=True)
    return write_edge_config(
        tmp_path / "edge",
        pilot=PILOT,
        source=SOURCE,
        key_file=key,
        broker_url=hub.mqtt_url,
        hub_url=hub.http_url,
        hub_key=hub.log_key,
        # A record the broker dropped while it restarted goes again soon.
        publish={"republish_after": 1.0, "republish_max": 2.0},
        directory={"enabled": True, "path": str(inbox), "poll_interval": 0.1, "settle": 0},
        **top,
    )


def feed(inbox: Path, lines: list[dict[str, object]]) -> None:
    tmp = inbox.parent / ".feed.tmp"
    tmp.write_text("".join(json.dumps(line) + "\n" for line in lines))
    tmp.rename(inbox / "batch.ndjson")


def parking(i: int) -> dict[str, object]:
    return {
        "type": TYPE,
        "payload": {
            "facility": "p-1",
            "observed_at": utc_now(),
            "capacity": 10,
            "occupied": i,
        },
    }


async def test_metrics_count_what_the_agent_does(
    tmp_path: Path, running_hub: ThreadHub, hub_broker: Mosquitto
) -> None:
    settings = load_settings(config(tmp_path, running_hub, metrics_port=0))
    assert settings.metrics_host == "127.0.0.1"
    async with running_agent(settings) as agent:
        assert agent.metrics_port is not None
        # Five readings the hub accepts, one of a type this source may not publish.
        air = {
            "type": "city.air-quality",
            "payload": {"station": "s-1", "observed_at": utc_now(), "pm25": 3.0},
        }
        feed(tmp_path / "inbox", [parking(i) for i in range(5)] + [air])
        await wait_until(lambda: agent.intake.stored_total == 6)
        await drained(agent)
        values = await scrape(agent.metrics_port)
        assert values["swiftchain_edge_outbox_depth"] == 0
        assert values["swiftchain_edge_in_flight"] == 0
        assert values["swiftchain_edge_dead_letters"] == 1
        assert values['swiftchain_edge_receipts_total{status="accepted"}'] == 5
        assert values['swiftchain_edge_receipts_total{status="rejected"}'] == 1
        assert values['swiftchain_edge_receipts_total{status="duplicate"}'] == 0
        assert values["swiftchain_edge_broker_connected"] == 1
        assert values["swiftchain_edge_records_published_total"] == 6

        # The broker goes away: the agent says so, and keeps what it is given.
        hub_broker.stop()
        await wait_until(lambda: not agent.link.connected.is_set())  # type: ignore[union-attr]
        (tmp_path / "inbox" / "batch.ndjson").unlink(missing_ok=True)
        feed(tmp_path / "inbox", [parking(i) for i in range(5, 8)])
        await wait_until(lambda: agent.intake.stored_total == 9)
        values = await scrape(agent.metrics_port)
        assert values["swiftchain_edge_broker_connected"] == 0
        assert values["swiftchain_edge_outbox_depth"] == 3
        hub_broker.start()
        await drained(agent)
        values = await scrape(agent.metrics_port)
        assert values["swiftchain_edge_broker_connected"] == 1
        assert values["swiftchain_edge_outbox_depth"] == 0
        # At least once: a receipt the broker kept for the agent may come twice.
        assert values['swiftchain_edge_receipts_total{status="accepted"}'] >= 8


async def test_metrics_are_off_unless_a_port_is_set(tmp_path: Path, running_hub: ThreadHub) -> None:
    settings = load_settings(config(tmp_path, running_hub))
    assert settings.metrics_port is None
    async with running_agent(settings) as agent:
        assert agent.metrics_port is None
