"""The hub's public ledger API as the mirror reads it: nothing but the unauthenticated GETs
an auditor makes (``/api/v1/ledger/checkpoint``, ``/entries``, ``/proof/consistency``)."""

from __future__ import annotations

import aiohttp
from pydantic import ValidationError

from ledger.publicapi import ConsistencyProof, EntriesPage

from .errors import HubFault, HubUnreachable

#: Bound on one request to the hub (a page of 1000 entries is ~1 MB).
REQUEST_TIMEOUT_S = 30.0
#: Largest body the mirror reads from the hub.
MAX_BODY = 8 * 1024 * 1024


class HubClient:
    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session = session
        self.url = url.rstrip("/")

    async def _get(self, path: str) -> bytes:
        try:
            async with self.session.get(
                self.url + path, timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
            ) as resp:
                chunks, length = [], 0
                async for chunk in resp.content.iter_chunked(64 * 1024):
                    length += len(chunk)
                    if length > MAX_BODY:
                        raise HubFault(f"GET {path}: the answer is larger than {MAX_BODY} bytes")
                    chunks.append(chunk)
                body = b"".join(chunks)
                if resp.status >= 500:
                    raise HubUnreachable(f"GET {path}: HTTP {resp.status}: {body[:200]!r}")
                if resp.status != 200:
                    raise HubFault(f"GET {path}: HTTP {resp.status}: {body[:200]!r}")
                return body
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise HubUnreachable(f"GET {self.url}{path}: {type(exc).__name__}: {exc}") from None

    async def checkpoint(self) -> str:
        body = await self._get("/api/v1/ledger/checkpoint")
        try:
            return body.decode()
        except UnicodeDecodeError:
            raise HubFault("the checkpoint is not UTF-8 text") from None

    async def entries(self, start: int, end: int) -> EntriesPage:
        body = await self._get(f"/api/v1/ledger/entries?start={start}&end={end}")
        try:
            return EntriesPage.model_validate_json(body)
        except ValidationError as exc:
            raise HubFault(f"entries {start}..{end}: not an entries page: {exc}") from None

    async def consistency(self, first: int, second: int) -> list[bytes]:
        body = await self._get(f"/api/v1/ledger/proof/consistency?first={first}&second={second}")
        try:
            proof = ConsistencyProof.model_validate_json(body)
            if (proof.first, proof.second) != (first, second):
                raise ValueError("a proof between other sizes")
            return [bytes.fromhex(h) for h in proof.proof]
        except (ValidationError, ValueError) as exc:
            raise HubFault(f"consistency {first}..{second}: not a proof: {exc}") from None
