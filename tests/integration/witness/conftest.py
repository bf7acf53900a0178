"""A witness serving real HTTP on a free loopback port, and a real hub ledger (built the
way the hub builds it) whose checkpoints and consistency proofs are submitted to it; of each
crypto suite (``suite``: the log's, and the witness's own key's unless told otherwise)."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from gateway.alliance.submission import request_body as format_add_checkpoint
from ledger.checkpoint import NoteSigner
from ledger.store import LedgerReader
from ledger.suite import Suite, suite_named
from tests.support.ledger_builder import ORIGIN, LedgerBuilder
from witness.app import create_app
from witness.home import init_home
from witness.service import Witness
from witness.store import origin_sha256

WITNESS_NAME = "witness.hospital-a.test/w1"


class HubLog:
    """A real ledger file: records appended, checkpoints signed, proofs from the store."""

    def __init__(self, builder: LedgerBuilder) -> None:
        self.builder = builder
        self.note = builder.checkpoint()

    @property
    def path(self) -> Path:
        return self.builder.path

    @property
    def signer(self) -> NoteSigner:
        return self.builder.signer

    @property
    def size(self) -> int:
        return self.builder.writer.size()

    def grow(self, n: int, *, tag: str = "a") -> str:
        for i in range(n):
            self.builder.append_record({"station": self.builder.source, "tag": tag, "i": i})
        self.note = self.builder.checkpoint()
        return self.note

    def request(self, old: int) -> bytes:
        """What the hub sends a witness whose last cosigned size is ``old``."""
        proof: list[bytes] = []
        if 0 < old < self.size:
            with LedgerReader(self.path) as reader:
                proof = reader.consistency_proof(old, self.size)
        return format_add_checkpoint(old, proof, self.note)

    def restored_copy(self, path: Path) -> HubLog:
        """The hub restored from a backup taken now, under the same origin and key."""
        src = sqlite3.connect(self.path)
        dst = sqlite3.connect(path)
        with dst:
            src.backup(dst)
        src.close()
        dst.close()
        builder = LedgerBuilder(
            path, hub_key=self.builder.hub_key, source_key=self.builder.source_key
        )
        builder.seq = self.builder.seq
        return HubLog(builder)

    def close(self) -> None:
        self.builder.close()


@pytest.fixture(params=["ed25519-sha256", "sm2-sm3"])
def suite(request: pytest.FixtureRequest) -> Suite:
    """The log's crypto suite, for a test that holds on both."""
    return suite_named(request.param)


@pytest.fixture
def hub_log(tmp_path: Path, suite: Suite) -> Iterator[HubLog]:
    builder = LedgerBuilder.of_suite(tmp_path / "hub" / "ledger.db", suite)
    builder.register_source()
    log = HubLog(builder)
    yield log
    log.close()


@dataclass
class Served:
    url: str
    witness: Witness
    session: aiohttp.ClientSession

    async def add(self, body: bytes) -> tuple[int, str, str]:
        async with self.session.post(f"{self.url}/add-checkpoint", data=body) as r:
            return r.status, r.headers.get("Content-Type", ""), await r.text()

    async def latest(self, origin: str = ORIGIN) -> tuple[int, str]:
        async with self.session.get(f"{self.url}/{origin_sha256(origin)}/checkpoint") as r:
            return r.status, await r.text()


@pytest.fixture
async def serve_witness(tmp_path: Path, suite: Suite) -> AsyncIterator[Callable[..., object]]:
    """``await serve_witness(key_suite=..., **Witness kwargs)``: a witness directory in
    tmp_path (its key of ``key_suite``, by default the log's suite) served on 127.0.0.1 on a
    free port (the OS picks it: port 0)."""
    runners: list[web.AppRunner] = []
    sessions: list[aiohttp.ClientSession] = []

    async def start(key_suite: Suite = suite, **kwargs: object) -> Served:
        home = tmp_path / f"witness-{len(runners)}"
        init_home(home, WITNESS_NAME, 1_700_000_000, suite=key_suite)
        witness = Witness.open(home, **kwargs)  # type: ignore[arg-type]
        runner = web.AppRunner(create_app(witness))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = runner.addresses[0][1]
        session = aiohttp.ClientSession()
        sessions.append(session)
        return Served(f"http://127.0.0.1:{port}", witness, session)

    yield start
    for session in sessions:
        await session.close()
    for runner in runners:
        await runner.cleanup()
