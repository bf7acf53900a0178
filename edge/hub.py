"""The hub's public ledger API, as the agent uses it: verifier key, checkpoint, inclusion
proofs (docs/http.md, "The public ledger"). Every failure is HubUnavailable."""

from __future__ import annotations

import json
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import aiohttp

from .errors import HubUnavailable

MAX_RESPONSE_BYTES = 1024 * 1024


@dataclass(frozen=True)
class InclusionProof:
    index: int
    size: int
    leaf_hash: bytes
    proof: list[bytes]


def parse_inclusion_proof(value: Any) -> InclusionProof:
    """``{"index", "size", "leaf_hash", "proof": [hex, ...]}``; HubUnavailable if malformed."""
    try:
        if not isinstance(value, dict):
            raise TypeError("not an object")
        index, size = value["index"], value["size"]
        if not (isinstance(index, int) and isinstance(size, int)):
            raise TypeError("index and size are integers")
        proof = value["proof"]
        if not isinstance(proof, list) or len(proof) > 64:
            raise TypeError("proof is a list of at most 64 hashes")
        return InclusionProof(
            index, size, bytes.fromhex(value["leaf_hash"]), [bytes.fromhex(h) for h in proof]
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise HubUnavailable(f"malformed inclusion proof from hub: {exc}") from None


class HubClient:
    """``async with HubClient(url) as hub: await hub.checkpoint()``."""

    def __init__(self, base_url: str, *, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> HubClient:
        self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _get(self, path: str, params: dict[str, str] | None = None) -> bytes:
        if self._session is None:
            raise RuntimeError("use HubClient in `async with`")
        url = f"{self.base_url}{path}"
        try:
            async with self._session.get(url, params=params) as resp:
                body = await resp.content.read(MAX_RESPONSE_BYTES + 1)
                if len(body) > MAX_RESPONSE_BYTES:
                    raise HubUnavailable(f"GET {path}: response is too large")
                if resp.status != 200:
                    raise HubUnavailable(f"GET {path}: HTTP {resp.status} {_error_text(body)}")
                return body
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise HubUnavailable(f"GET {path}: {type(exc).__name__} {exc}") from None

    async def verifier_key(self) -> str:
        return (await self._get("/api/v1/ledger/key")).decode("utf-8", "replace").strip()

    async def checkpoint(self) -> str:
        return (await self._get("/api/v1/ledger/checkpoint")).decode("utf-8", "replace")

    async def inclusion_proof(self, index: int, size: int) -> InclusionProof:
        body = await self._get(
            "/api/v1/ledger/proof/inclusion", {"index": str(index), "size": str(size)}
        )
        try:
            value = json.loads(body)
        except ValueError as exc:
            raise HubUnavailable(f"inclusion proof is not JSON: {exc}") from None
        return parse_inclusion_proof(value)

    async def consistency_proof(self, first: int, second: int) -> list[bytes]:
        """RFC 9162 2.1.4 hashes showing tree ``first`` is a prefix of tree ``second``."""
        body = await self._get(
            "/api/v1/ledger/proof/consistency", {"first": str(first), "second": str(second)}
        )
        try:
            value = json.loads(body)
            proof = value["proof"]
            if not isinstance(proof, list) or len(proof) > 128:
                raise TypeError("proof is a list of at most 128 hashes")
            return [bytes.fromhex(h) for h in proof]
        except (ValueError, KeyError, TypeError) as exc:
            raise HubUnavailable(f"malformed consistency proof from hub: {exc}") from None


def _error_text(body: bytes) -> str:
    try:
        value = json.loads(body)
        return f"{value.get('error')}: {value.get('detail')}"
    except (ValueError, AttributeError):
        return body[:200].decode("utf-8", "replace")
