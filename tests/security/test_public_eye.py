"""The public eye: the demo's story run against a real hub, then everything the
hub serves without credentials downloaded (every ledger entry and its decoded leaf, proofs,
the checkpoint and key, the registry, the dashboard's page, files, snapshot and stream,
/metrics, /readyz, discovery, and a sample of error bodies) and every byte searched for each
pseudonym, Consent id, local patient id and per-person device of the scenario: no hit. The
story withdraws Consents with erasure: the erased people's pseudonyms and Consent ids are in
none of the hub's files any more (ledger, WAL, access file, dead letters), while it serves
and after it stopped.

A failure names each place (endpoint, leaf or file) and each identifier found there."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path

import aiohttp
import pytest

from simulators.build import build_scenario
from tests.integration.demo.test_demo import SMALL
from tests.support.crawler import Hit, PublicCrawl, Seen, hub_files, report, search
from tests.support.scenario_people import People, sample, scenario_people

SWIFTCHAIN = str(Path(sys.executable).with_name("swiftchain"))
SEED = 7
#: The demo's story and its first served second, well inside the 90 s budget.
STORY_S = 75
STOP_S = 30
#: People and Consents whose error bodies are sampled (each asked several ways).
PROBED = 4
_URL = re.compile(r"Dashboard:\s+(http://127\.0\.0\.1:\d+)/dashboard")


@asynccontextmanager
async def serving_demo(workdir: Path, output: list[str]) -> AsyncIterator[str]:
    """`swiftchain demo` (not ``--once``) until its story is told and it serves the
    dashboard; yields the hub's URL; SIGTERM at the end, as a user's Ctrl-C."""
    process = await asyncio.create_subprocess_exec(
        *(SWIFTCHAIN, "demo", "--port", "0", "--workdir", str(workdir), "--broker", "embedded"),
        *(*SMALL, "--seed", str(SEED)),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert process.stdout is not None
    drain: asyncio.Task[None] | None = None
    try:
        url = None
        async with asyncio.timeout(STORY_S):
            while url is None:
                line = (await process.stdout.readline()).decode(errors="replace")
                if not line:
                    raise AssertionError("the demo ended before serving:\n" + "".join(output))
                output.append(line)
                if found := _URL.search(line):
                    url = found.group(1)
        drain = asyncio.create_task(_drain(process.stdout, output))
        yield url
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(STOP_S):
                await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()
        if drain is not None:
            with suppress(asyncio.CancelledError):
                await drain


async def _drain(stream: asyncio.StreamReader, output: list[str]) -> None:
    while line := await stream.readline():
        output.append(line.decode(errors="replace"))


async def counted_consents(url: str, entries: int) -> dict[str, int]:
    """The public dashboard's Consent counts, once it has read ``entries`` consent entries
    (it reads the log a second at a time; bounded)."""
    async with aiohttp.ClientSession() as session:
        for _ in range(40):
            async with session.get(url + "/api/v1/dashboard/summary") as response:
                summary = await response.json()
            if summary["ledger"]["kinds"].get("consent", 0) >= entries:
                return dict(summary["consents"])
            await asyncio.sleep(0.25)
    raise AssertionError(f"the dashboard never read {entries} consent entries: {summary}")


def erased_files(workdir: Path) -> list[Seen]:
    """The hub's folder, and the copy of its ledger the story's forger made."""
    copy = workdir / "tampered-copy.db"
    extra = [Seen(f"file {copy.name}", copy.read_bytes())] if copy.exists() else []
    return hub_files(workdir / "hub") + extra


def failure(public: list[Hit], files: list[Hit], missed: list[str]) -> str:
    parts = []
    if missed:
        parts.append("public routes the crawl did not ask for: " + ", ".join(missed))
    if public:
        parts.append("served without credentials — " + report(public))
    if files:
        parts.append("after the erasure, in the hub's files — " + report(files))
    return "\n\n".join(parts)


@pytest.mark.timeout(150)
async def test_nothing_served_publicly_names_a_person(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    output: list[str] = []
    async with serving_demo(workdir, output) as url:
        told = "".join(output)
        steps = re.search(r"(\d+)/(\d+) story steps as expected", told)
        assert steps and steps.group(1) == steps.group(2), told
        scenario = await asyncio.to_thread(build_scenario, seed=SEED, hours=8, scale="small")
        people: People = scenario_people(scenario, workdir / "keys")
        assert people.pseudonyms and people.consents and people.erased, people

        timeout = aiohttp.ClientTimeout(total=60)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            crawl = PublicCrawl(url, session)
            await crawl.run(sample(people.pseudonyms, PROBED), sample(people.consents, PROBED))
        public = search(crawl.seen, people.needles) + crawl.hits
        serving = await asyncio.to_thread(erased_files, workdir)
        files = search(serving, people.erased)

        # The search finds what is there: a city station in the public log, and the
        # pseudonyms of the people not erased in the hub's private index.
        assert search(crawl.seen, {"aq-station-01": "a city station"}), "nothing crawled"
        assert crawl.size > 100
        remaining = {p: "pseudonym" for p in people.pseudonyms if p not in people.erased}
        assert search(serving, remaining), "no pseudonym is in the hub's own files: wrong key?"
        # A personal device's id is in its relayed records' origins alone, which are sealed
        # under data keys: in no file of the hub, erased or not.
        devices = {d: "device" for d in people.devices}
        assert not search(serving, devices), "a device id is in the hub's files in the open"

        # The public counts stay right on v2 leaves (and the Consents withdrawn with erasure,
        # whose entries are no longer opened).
        consent_leaves = sum(
            s.where.startswith("leaf ") and "(consent)" in s.where for s in crawl.seen
        )
        consents = await counted_consents(url, consent_leaves)
        assert consents["withdrawn"] == len({c for c in people.erased if c in people.consents})
        assert sum(consents.values()) == len(people.consents), consents

    stopped = await asyncio.to_thread(erased_files, workdir)
    files += search(stopped, people.erased)
    crawled = sum(len(s.data) for s in crawl.seen)
    searched = (
        f"{len(people.pseudonyms)} pseudonyms, {len(people.consents)} Consent ids,"
        f" {len(people.devices)} devices"
    )
    print(
        f"public eye: {len(crawl.seen)} answers and leaves ({crawled:,} bytes, a log of"
        f" {crawl.size} entries) searched for {searched}; {len(stopped)} files for"
        f" {len(people.erased)} identifiers of the erased"
    )
    assert not (public or files or crawl.missed()), failure(public, files, crawl.missed())
