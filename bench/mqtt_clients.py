"""CPU per message of MQTT clients in the hub's and the agent's traffic, through a real
Mosquitto: why the hub and the agent use ``transport.client`` and not aiomqtt or gmqtt.

    .venv/bin/python -m bench.mqtt_clients --messages 20000

Each client under test runs alone in a child process; this process drives it (with our
client) and the child reports its own ``time.process_time`` per message:

- ``hub-receive``: subscribed at QoS 1 to ``$share/hub/swiftchain/v1/+/+/records``, it
  takes N QoS 1 records (~700 bytes) and PUBACKs each;
- ``hub``: the same, and it publishes one QoS 1 receipt (~250 bytes) per record without
  awaiting its PUBACK; ``hub - hub-receive`` is the cost of publishing a receipt;
- ``agent``: publishes N QoS 1 records, at most 1000 without a receipt, and takes the
  receipts (driven back by this process) at QoS 1.

gmqtt runs under ``--gmqtt-python`` (default: the reference yardsticks' venv, which has it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

RECORDS = "swiftchain/v1/bench/s0/records"
RECEIPTS = "swiftchain/v1/bench/s0/receipts"
SHARED = "$share/hub/swiftchain/v1/+/+/records"
RECORD = b'{"header":' + b"x" * 680 + b"}"
RECEIPT = b'{"status":"accepted",' + b"y" * 230 + b"}"
WINDOW = 1000
#: Idle time after the last message, the same for every client, for the last PUBACKs.
SETTLE_S = 0.3


# -- the clients under test (each runs in a child: ``--child CLIENT SCENARIO PORT N``) -----


async def ours(scenario: str, port: int, n: int, mqtt5: bool) -> float:
    from transport.mqtt import ClientOptions, Endpoint, new_client

    options = ClientOptions(
        Endpoint("127.0.0.1", port, False), f"bench-{scenario}", mqtt5=mqtt5, max_inflight=WINDOW
    )
    async with new_client(options) as client:
        if scenario == "agent":
            await client.subscribe(RECEIPTS, qos=1)
            _ready()
            start = time.process_time()
            sent = received = 0
            while received < n:
                while sent < n and sent - received < WINDOW:
                    client.publish_nowait(RECORDS, RECORD)
                    sent += 1
                async for _ in client.messages:
                    received += 1
                    if received == n or sent - received < WINDOW // 2:
                        break
        else:
            await client.subscribe(SHARED, qos=1)
            _ready()
            received = 0
            start = 0.0
            async for _ in client.messages:
                if not received:
                    start = time.process_time()
                received += 1
                if scenario == "hub":
                    client.publish_nowait(RECEIPTS, RECEIPT)
                if received == n:
                    break
        await asyncio.sleep(SETTLE_S)
        return time.process_time() - start


async def aiomqtt_client(scenario: str, port: int, n: int, mqtt5: bool) -> float:
    import aiomqtt
    import paho.mqtt.client as paho
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    properties = None
    if mqtt5:
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = 3600
    client = aiomqtt.Client(
        "127.0.0.1",
        port,
        identifier=f"bench-{scenario}",
        protocol=aiomqtt.ProtocolVersion.V5 if mqtt5 else aiomqtt.ProtocolVersion.V311,
        clean_session=None if mqtt5 else False,
        clean_start=False if mqtt5 else paho.MQTT_CLEAN_START_FIRST_ONLY,
        properties=properties,
        max_inflight_messages=WINDOW,
    )
    async with client:
        inner = client._client
        if scenario == "agent":
            await client.subscribe(RECEIPTS, qos=1)
            _ready()
            start = time.process_time()
            sent = received = 0
            while received < n:
                while sent < n and sent - received < WINDOW:
                    inner.publish(RECORDS, RECORD, qos=1)
                    sent += 1
                async for _ in client.messages:
                    received += 1
                    if received == n or sent - received < WINDOW // 2:
                        break
        else:
            await client.subscribe(SHARED, qos=1)
            _ready()
            received = 0
            start = 0.0
            async for _ in client.messages:
                if not received:
                    start = time.process_time()
                received += 1
                if scenario == "hub":
                    inner.publish(RECEIPTS, RECEIPT, qos=1)
                if received == n:
                    break
        await asyncio.sleep(SETTLE_S)
        return time.process_time() - start


async def gmqtt_client(scenario: str, port: int, n: int, mqtt5: bool) -> float:
    import gmqtt  # type: ignore[import-not-found, unused-ignore]
    from gmqtt.mqtt.constants import (  # type: ignore[import-not-found, unused-ignore]
        MQTTv50,
        MQTTv311,
    )

    done = asyncio.Event()
    room = asyncio.Event()
    state = {"received": 0, "start": 0.0}
    client = gmqtt.Client(f"bench-{scenario}", clean_session=False, session_expiry_interval=3600)

    def on_message(c: Any, topic: str, payload: bytes, qos: int, props: Any) -> int:
        if not state["received"]:
            state["start"] = state["start"] or time.process_time()
        state["received"] += 1
        if scenario == "hub":
            c.publish(RECEIPTS, RECEIPT, qos=1)
        elif scenario == "agent":
            room.set()
        if state["received"] == n:
            done.set()
        return 0

    client.on_message = on_message
    await client.connect("127.0.0.1", port, version=MQTTv50 if mqtt5 else MQTTv311)
    client.subscribe(RECEIPTS if scenario == "agent" else SHARED, qos=1)
    await asyncio.sleep(0.5)  # gmqtt's subscribe does not wait for its SUBACK
    _ready()
    if scenario == "agent":
        state["start"] = time.process_time()
        sent = 0
        while sent < n:
            while sent < n and sent - state["received"] < WINDOW:
                client.publish(RECORDS, RECORD, qos=1)
                sent += 1
            room.clear()
            await room.wait()
    await done.wait()
    await asyncio.sleep(SETTLE_S)
    cpu = time.process_time() - state["start"]
    await client.disconnect()
    return cpu


def _ready() -> None:
    """Subscribed: tell the driver, and wait until it is subscribed too."""
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        raise SystemExit("the driver went away")


def child(name: str, scenario: str, port: int, n: int) -> None:
    client, _, version = name.partition("/")
    run = {"ours": ours, "aiomqtt": aiomqtt_client, "gmqtt": gmqtt_client}[client]
    if os.environ.get("BENCH_UVLOOP"):
        import uvloop

        uvloop.install()
    cpu = asyncio.run(run(scenario, port, n, version == "v5"))
    print(json.dumps({"cpu_s": cpu}), flush=True)


# -- the driver --------------------------------------------------------------------------


async def drive(scenario: str, port: int, n: int, proc: subprocess.Popen[str]) -> float:
    from transport.mqtt import ClientOptions, Endpoint, new_client

    assert proc.stdout is not None
    loop = asyncio.get_running_loop()
    line = await loop.run_in_executor(None, proc.stdout.readline)
    if line.strip() != "ready":
        raise RuntimeError(f"the client under test did not start: {line!r}")
    options = ClientOptions(Endpoint("127.0.0.1", port, False), "bench-driver", max_inflight=WINDOW)
    async with new_client(options) as driver:
        await driver.subscribe(RECORDS if scenario == "agent" else RECEIPTS, qos=1)
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
        if scenario == "agent":
            received = 0
            async for _ in driver.messages:
                driver.publish_nowait(RECEIPTS, RECEIPT)
                received += 1
                if received == n:
                    break
        else:
            sent = 0
            while sent < n:
                while sent < n and driver.unacknowledged < WINDOW:
                    driver.publish_nowait(RECORDS, RECORD)
                    sent += 1
                await asyncio.sleep(0.001)
        out = await loop.run_in_executor(None, proc.stdout.readline)
    return float(json.loads(out)["cpu_s"])


def measure(name: str, scenario: str, n: int, python: str) -> float:
    from tests.support.broker import Mosquitto

    with tempfile.TemporaryDirectory(prefix="bench-mqtt-") as work:
        broker = Mosquitto(Path(work))
        broker.start()
        try:
            command = [python, "-m", "bench.mqtt_clients", "--child", name, scenario]
            proc = subprocess.Popen(
                [*command, str(broker.port), str(n)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                cwd=Path(__file__).resolve().parent.parent,
            )
            try:
                cpu = asyncio.run(drive(scenario, broker.port, n, proc))
            finally:
                proc.wait(timeout=60)
        finally:
            broker.stop()
    return cpu / n * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=20_000)
    ap.add_argument(
        "--clients",
        default="ours/v311,ours/v5,aiomqtt/v311,aiomqtt/v5,gmqtt/v311,gmqtt/v5",
        help="comma-separated client/version",
    )
    ap.add_argument("--scenarios", default="hub-receive,hub,agent")
    ap.add_argument("--gmqtt-python", default="/tmp/limits/venv/bin/python")
    ap.add_argument("--child", nargs=4, metavar=("CLIENT", "SCENARIO", "PORT", "N"))
    args = ap.parse_args()
    if args.child:
        name, scenario, port, n = args.child
        child(name, scenario, int(port), int(n))
        return
    scenarios = args.scenarios.split(",")
    print(f"{'client':14}" + "".join(f"{s:>14}" for s in scenarios) + "   (us CPU per message)")
    for name in args.clients.split(","):
        python = args.gmqtt_python if name.startswith("gmqtt") else sys.executable
        row = [measure(name, s, args.messages, python) for s in scenarios]
        print(f"{name:14}" + "".join(f"{v:14.1f}" for v in row), flush=True)


if __name__ == "__main__":
    main()
