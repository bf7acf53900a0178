"""Witness throughput: ``POST /add-checkpoint`` requests per second against a real
``swiftchain witness serve`` process, each request a log's next checkpoint with its
consistency proof, cosigned and persisted (SQLite FULL) before the answer.

A witness serves many logs; one log's checkpoints are sequential by nature (each proves
consistency from the last size cosigned), so the load is ``--logs`` logs submitting in
parallel, one request in flight each. The yardstick, measured in the same run by the same
client: a trivial aiohttp JSON GET in a process of its own (what the HTTP stack alone costs
here). The figure is the ratio, witness requests/s over trivial requests/s.

    .venv/bin/python -m bench.witness [--logs 8] [--seconds 10] [--json FILE]

Target (2 cores): >= 100 requests/s, a hundred logs each submitting a checkpoint every second
(a hub submits at most one a second, ``witness_interval_s``); the ratio to the trivial GET is
printed beside it. Each request verifies an Ed25519 note signature and a consistency proof,
signs a cosignature and commits a transaction (synchronous FULL) before the answer.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from bench.figures import write_rows
from gateway.alliance.submission import request_body
from tests.support.broker import free_port
from tests.support.witness import MemoryLog

SWIFTCHAIN = str(Path(sys.executable).with_name("swiftchain"))
#: Requests per second wanted: a hundred logs at one checkpoint a second each.
TARGET_RATE = 100.0

_TRIVIAL = """
import sys
from aiohttp import web
async def ok(request):
    return web.json_response({"status": "ok"})
app = web.Application()
app.router.add_get("/healthz", ok)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""


def _cli(*args: str) -> str:
    done = subprocess.run([SWIFTCHAIN, *args], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise SystemExit(done.stdout + done.stderr)
    return done.stdout


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _wait_up(url: str) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(600):
            try:
                async with http.get(url + "/healthz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise SystemExit(f"nothing serving at {url}")


async def _witness_load(url: str, logs: list[MemoryLog], seconds: float) -> int:
    """Requests answered 200 within ``seconds``, one in flight per log."""
    done = 0
    deadline = time.monotonic() + seconds

    async def one_log(log: MemoryLog, http: aiohttp.ClientSession) -> None:
        nonlocal done
        size = 0
        while time.monotonic() < deadline:
            log.grow(1)
            new = len(log.leaves)
            body = request_body(size, log.proof(size, new) if size else [], log.note(new))
            async with http.post(url + "/add-checkpoint", data=body) as resp:
                await resp.read()
                if resp.status != 200:
                    raise SystemExit(f"witness answered {resp.status}")
            size = new
            done += 1

    async with aiohttp.ClientSession() as http:
        await asyncio.gather(*(one_log(log, http) for log in logs))
    return done


async def _trivial_load(url: str, parallel: int, seconds: float) -> int:
    done = 0
    deadline = time.monotonic() + seconds

    async def one(http: aiohttp.ClientSession) -> None:
        nonlocal done
        while time.monotonic() < deadline:
            async with http.get(url + "/healthz") as resp:
                await resp.read()
            done += 1

    async with aiohttp.ClientSession() as http:
        await asyncio.gather(*(one(http) for _ in range(parallel)))
    return done


def _measure_witness(logs: int, seconds: float) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "witness"
        _cli("witness", "init", "--dir", str(home), "--name", "bench.witness/w1")
        members = [MemoryLog(origin=f"bench.log/{i}") for i in range(logs)]
        for log in members:
            _cli("witness", "add-log", "--dir", str(home), log.signer.verifier.encode())
        port = free_port()
        proc = subprocess.Popen(
            [
                *(SWIFTCHAIN, "witness", "serve", "--dir", str(home)),
                *("--port", str(port), "--log-level", "WARNING"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            asyncio.run(_wait_up(url))
            cpu0 = _cpu_s(proc.pid)
            n = asyncio.run(_witness_load(url, members, seconds))
            cpu = _cpu_s(proc.pid) - cpu0
        finally:
            proc.terminate()
            proc.wait(30)
    return n / seconds, cpu / max(n, 1) * 1e6


def _measure_trivial(parallel: int, seconds: float) -> float:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", _TRIVIAL, str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        asyncio.run(_wait_up(url))
        n = asyncio.run(_trivial_load(url, parallel, seconds))
    finally:
        proc.terminate()
        proc.wait(30)
    return n / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--logs", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    # Alternating, twice: trivial, witness, trivial, witness (the machine drifts).
    trivial, witness, cpu = [], [], []
    for _ in range(2):
        trivial.append(_measure_trivial(args.logs, args.seconds))
        rate, us = _measure_witness(args.logs, args.seconds)
        witness.append(rate)
        cpu.append(us)
    ratios = [w / t for w, t in zip(witness, trivial, strict=True)]
    ratio = min(ratios)
    for i in range(2):
        print(
            f"run {i + 1}: trivial GET {trivial[i]:,.0f} req/s, witness add-checkpoint"
            f" {witness[i]:,.0f} req/s ({cpu[i]:,.0f} us CPU/request), ratio {ratios[i]:.2f}"
        )
    rows = [
        (
            f"witness add-checkpoint, {args.logs} logs in parallel (beside a trivial aiohttp"
            " GET, same client)",
            f"{min(witness):,.0f} req/s, {max(cpu):,.0f} us witness CPU/request"
            f" (ratio {ratio:.2f} to the trivial GET's {max(trivial):,.0f} req/s)",
            f">= {TARGET_RATE:.0f} req/s",
            min(witness) >= TARGET_RATE,
        )
    ]
    if args.json:
        write_rows(args.json, rows)


if __name__ == "__main__":
    main()
