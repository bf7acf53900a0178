"""The witness over real HTTP against a real hub ledger's checkpoints and proofs
(c2sp.org/tlog-witness): growing checkpoints cosigned, the monitoring read, every refusal
with its status and content type, a split view refused, racing requests; each for a log of
either crypto suite, and a witness key of either kind."""

from __future__ import annotations

import asyncio
import base64
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

from gateway.alliance.submission import request_body as format_add_checkpoint
from ledger.checkpoint import Checkpoint, NoteSigner, sign_checkpoint, verify_checkpoint
from ledger.cosignature import attach_cosignatures, verify_cosignatures
from ledger.keys import generate_key
from ledger.suite import SUITES, Suite
from tests.support.ledger_builder import ORIGIN
from witness.store import origin_sha256

from .conftest import WITNESS_NAME, HubLog, Served

Start = Callable[..., Any]


async def witnessing(serve_witness: Start, hub_log: HubLog, **kwargs: Any) -> Served:
    served: Served = await serve_witness(**kwargs)
    served.witness.store.add_log(ORIGIN, hub_log.signer.verifier, 1)
    return served


async def test_growing_checkpoints_are_cosigned_and_served(
    serve_witness: Start, hub_log: HubLog
) -> None:
    w = await witnessing(serve_witness, hub_log)
    assert await w.latest() == (404, "this witness has cosigned no checkpoint of that log\n")
    cosigned = 0
    for step in (3, 1, 7, 16, 5):  # sizes 4 (1 registry entry + 3), 5, 12, 28, 33
        hub_log.grow(step)
        status, ctype, text = await w.add(hub_log.request(cosigned))
        assert status == 200, text
        assert ctype.startswith("text/plain")
        assert text.startswith(f"— {WITNESS_NAME} ") and text.endswith("\n")
        note = attach_cosignatures(hub_log.note, text)
        (got,) = verify_cosignatures(note, [w.witness.verifier])
        assert got.timestamp > 1_600_000_000
        cosigned = hub_log.size
        status, latest = await w.latest()
        assert status == 200 and latest == hub_log.note + text
        assert verify_checkpoint(latest, hub_log.signer.verifier).size == cosigned
    assert w.witness.store.logs()[0].size == cosigned == 33


async def test_409_names_the_size_and_the_hub_can_retry(
    serve_witness: Start, hub_log: HubLog
) -> None:
    w = await witnessing(serve_witness, hub_log)
    hub_log.grow(9)
    assert (await w.add(hub_log.request(0)))[0] == 200
    hub_log.grow(6)
    # A hub that forgot the witness's size asks from 0, learns 10 from the 409, retries.
    status, ctype, text = await w.add(hub_log.request(0))
    assert (status, ctype, text) == (409, "text/x.tlog.size", "10\n")
    status, _, _ = await w.add(hub_log.request(int(text)))
    assert status == 200
    # The same checkpoint again, from its own size: cosigned again.
    assert (await w.add(hub_log.request(16)))[0] == 200


async def test_a_hub_restored_from_a_backup_and_rewritten_is_refused(
    serve_witness: Start, hub_log: HubLog, tmp_path: Path
) -> None:
    """A split view: same origin, same key, another tree after the backup."""
    w = await witnessing(serve_witness, hub_log)
    hub_log.grow(5)  # size 6
    backup = hub_log.restored_copy(tmp_path / "restored.db")
    hub_log.grow(4)  # size 10: cosigned
    assert (await w.add(hub_log.request(0)))[0] == 200
    good_latest = await w.latest()

    backup.grow(4, tag="rewritten")  # size 10, another root
    assert backup.size == 10 and backup.note != hub_log.note
    status, _, text = await w.add(backup.request(10))
    assert status == 422 and "split view" in text
    status, ctype, text = await w.add(backup.request(6))
    assert (status, ctype, text) == (409, "text/x.tlog.size", "10\n")
    backup.grow(10, tag="rewritten")  # size 20, its own proof from 10
    status, _, text = await w.add(backup.request(10))
    assert status == 422 and "consistency proof" in text
    assert await w.latest() == good_latest
    refusals = w.witness.store.refusals(ORIGIN)
    assert [r[1] for r in refusals] == [422, 422]
    assert backup.note in refusals[-1][3]
    # The honest log goes on.
    hub_log.grow(1)
    assert (await w.add(hub_log.request(10)))[0] == 200
    backup.close()


async def test_racing_requests_never_roll_back(serve_witness: Start, hub_log: HubLog) -> None:
    """Two requests decided against the same state (held at the compare-and-swap until both
    are decided): one is cosigned, the other is a 409, and the stored size is the winner's."""
    both_decided = threading.Barrier(2, timeout=30)
    w = await witnessing(serve_witness, hub_log, before_persist=both_decided.wait)
    hub_log.grow(4)
    small = hub_log.request(0)
    hub_log.grow(20)
    large = hub_log.request(0)
    results = await asyncio.gather(w.add(small), w.add(large))
    statuses = sorted(r[0] for r in results)
    assert statuses == [200, 409]
    winner = 5 if results[0][0] == 200 else 25
    assert next(r for r in results if r[0] == 409)[2] == f"{winner}\n"
    assert w.witness.store.logs()[0].size == winner


async def test_many_concurrent_requests_one_winner(serve_witness: Start, hub_log: HubLog) -> None:
    w = await witnessing(serve_witness, hub_log)
    bodies = []
    for _ in range(8):
        hub_log.grow(2)
        bodies.append(hub_log.request(0))
    results = await asyncio.gather(*(w.add(b) for b in bodies))
    ok = [i for i, r in enumerate(results) if r[0] == 200]
    assert len(ok) == 1
    size = w.witness.store.logs()[0].size
    assert size == 1 + 2 * (ok[0] + 1)
    assert all(
        r == (409, "text/x.tlog.size", f"{size}\n") for i, r in enumerate(results) if i not in ok
    )


async def test_refusals_over_http(serve_witness: Start, hub_log: HubLog) -> None:
    w = await witnessing(serve_witness, hub_log)
    hub_log.grow(9)
    note = hub_log.note

    async def expect(body: bytes, status: int, words: str) -> None:
        got, ctype, text = await w.add(body)
        assert got == status, text
        assert ctype.startswith("text/plain") and words in text and text.endswith("\n")

    await expect(b"", 400, "'old <size>'")
    await expect(b"old 1\n\n\xff", 400, "UTF-8")
    await expect(f"old 01\n\n{note}".encode(), 400, "leading zeroes")
    await expect(f"old 1\nnot-a-hash\n\n{note}".encode(), 400, "proof line 1")
    await expect(("old 1\n" + "A" * 43 + "=\n\n" + "garbage\n").encode(), 400, "malformed")
    await expect(format_add_checkpoint(11, [], note), 400, "larger than the checkpoint")

    other = sign_checkpoint(
        Checkpoint("other.test/log", 1, bytes(32)), NoteSigner("other.test/log", generate_key())
    )
    await expect(format_add_checkpoint(0, [], other), 404, "does not witness")

    stranger = NoteSigner(ORIGIN, generate_key(hub_log.builder.suite))
    cp = Checkpoint(ORIGIN, hub_log.size, base64.b64decode(note.split("\n")[2]))
    await expect(format_add_checkpoint(0, [], sign_checkpoint(cp, stranger)), 403, "no signature")
    body, line = note.split("\n\n")
    name, b64 = line[2:-1].split(" ")
    raw = bytearray(base64.b64decode(b64))
    raw[10] ^= 0xFF
    forged = f"{body}\n\n— {name} {base64.b64encode(bytes(raw)).decode()}\n"
    await expect(format_add_checkpoint(0, [], forged), 403, "does not verify")

    empty_wrong = sign_checkpoint(Checkpoint(ORIGIN, 0, bytes(32)), hub_log.signer)
    await expect(format_add_checkpoint(0, [], empty_wrong), 422, "empty tree")
    await expect(format_add_checkpoint(0, [bytes(32)], note), 422, "from size 0")

    assert (await w.add(hub_log.request(0)))[0] == 200
    await expect(format_add_checkpoint(10, [bytes(32)], note), 422, "equal sizes")
    hub_log.grow(3)
    await expect(format_add_checkpoint(10, [bytes(32)] * 3, hub_log.note), 422, "consistency")
    assert w.witness.store.logs()[0].size == 10  # nothing refused moved the state

    # Oversize bodies, other methods, other paths.
    async with w.session.post(f"{w.url}/add-checkpoint", data=b"x" * 200_000) as r:
        assert r.status == 413
    async with w.session.get(f"{w.url}/add-checkpoint") as r:
        assert r.status == 405
    async with w.session.get(f"{w.url}/{'A' * 64}/checkpoint") as r:
        assert r.status == 404
    async with w.session.get(f"{w.url}/{'0' * 64}/checkpoint") as r:
        assert r.status == 404


async def test_healthz(serve_witness: Start, hub_log: HubLog) -> None:
    w = await witnessing(serve_witness, hub_log)
    async with w.session.get(f"{w.url}/healthz") as r:
        assert r.status == 200
        body = await r.json()
    assert body == {"status": "ok", "name": WITNESS_NAME, "vkey": w.witness.verifier.encode()}


async def test_keep_alive_connection_serves_many_requests(
    serve_witness: Start, hub_log: HubLog
) -> None:
    # tlog-witness: clients SHOULD use, and witnesses SHOULD support, keep-alive.
    w = await witnessing(serve_witness, hub_log)
    connector = aiohttp.TCPConnector(limit=1)
    async with aiohttp.ClientSession(connector=connector) as session:
        size = 0
        for _ in range(5):
            hub_log.grow(1)
            async with session.post(f"{w.url}/add-checkpoint", data=hub_log.request(size)) as r:
                assert r.status == 200
                await r.read()
            size = hub_log.size


async def test_a_witness_key_of_the_other_kind_cosigns_the_same(
    serve_witness: Start, hub_log: HubLog, suite: Suite
) -> None:
    """The witness's key need not be of the log's suite: its cosignatures carry their own
    type (0x04 for Ed25519, the sm2-sm3 cosignature type for SM2), the log's proofs are
    checked in the log's hash all the same, and the monitoring path is SHA-256(origin)."""
    (other,) = (s for s in SUITES.values() if s is not suite)
    w = await witnessing(serve_witness, hub_log, key_suite=other)
    assert w.witness.verifier.suite is other
    cosigned = 0
    for step in (2, 5, 9):
        hub_log.grow(step)
        status, _, text = await w.add(hub_log.request(cosigned))
        assert status == 200, text
        cosigned = hub_log.size
        (got,) = verify_cosignatures(attach_cosignatures(hub_log.note, text), [w.witness.verifier])
        assert got.verifier.suite is other
    async with w.session.get(f"{w.url}/{origin_sha256(ORIGIN)}/checkpoint") as r:
        assert r.status == 200
        assert verify_checkpoint(await r.text(), hub_log.signer.verifier).size == cosigned == 17
