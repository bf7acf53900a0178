"""An outsider's crawl of a hub (the "public eye"): everything the hub serves
without credentials, downloaded; then every byte searched for the people of a scenario.

:class:`PublicCrawl` walks the public routes of :data:`gateway.access.exposure.ROUTES` (and
says which it missed), every ledger entry in pages with its leaf decoded from base64, proofs
for a sample, the dashboard's page, files, snapshot and a stretch of its stream, and a sample
of error bodies: searches about a person without a token or with a bad one, bad ledger
ranges, unknown routes. :func:`search` then looks for each identifier in every answer (and
:func:`hub_files` in every file of a hub's folder) and returns each hit with where it was.

A probe that sends an identifier (``patient=<pseudonym>``) is not a leak for echoing it; a
probe's own identifiers are not searched in its answer, but the answer must not depend on
whether the identifier is a real person's: each is asked again with a made-up lookalike and
any difference but the echo is a hit (:meth:`PublicCrawl.probe`).
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import aiohttp

from gateway.access.exposure import ROUTES, Exposure
from ledger.store import MAX_ENTRIES_PAGE

#: Bytes of context either side of a hit, in its report.
CONTEXT = 60
#: Inclusion proofs asked for (spread over the log, and the first entry of each kind).
INCLUSION_SAMPLE = 24
CONSISTENCY_SAMPLE = 8
#: Events read from the dashboard's stream.
STREAM_EVENTS = 3
#: Request ids and times differ between two asks of one thing: not a difference of answer.
_VOLATILE = re.compile(rb'"(request_id|at|now|generated_at|timestamp)":\s*"?[^",}]*"?')


@dataclass(frozen=True)
class Seen:
    """One thing the crawl downloaded (or one file): where it came from, and its bytes."""

    where: str
    data: bytes
    sent: frozenset[str] = frozenset()
    """Identifiers the request itself carried (not searched for in its answer)."""


@dataclass(frozen=True)
class Hit:
    where: str
    what: str
    """What the identifier is (e.g. "pseudonym of HOSP-A-000001 in chronic-care")."""
    needle: str
    context: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what} ({self.needle!r}) in …{self.context}…"


@dataclass
class PublicCrawl:
    """Every answer of one hub to a caller without credentials."""

    base: str
    session: aiohttp.ClientSession
    seen: list[Seen] = field(default_factory=list)
    hits: list[Hit] = field(default_factory=list)
    """Differences found by probes (an answer telling a real person from a made-up one)."""
    templates: set[str] = field(default_factory=set)
    """The route templates of :data:`ROUTES` this crawl asked for."""
    size: int = 0

    # -- one request ---------------------------------------------------------------------
    async def fetch(
        self,
        path: str,
        *,
        template: str | None = None,
        method: str = "GET",
        headers: Mapping[str, str] | None = None,
        data: bytes | None = None,
        sent: Iterable[str] = (),
    ) -> tuple[int, bytes]:
        """Ask once, without credentials (unless ``headers`` bring a bad one); keep the
        answer's status line, headers and body."""
        self.templates.add(template or path.partition("?")[0])
        async with self.session.request(
            method, self.base + path, headers=headers, data=data, allow_redirects=False
        ) as response:
            body = await response.read()
            head = f"HTTP {response.status}\n" + "".join(
                f"{k}: {v}\n" for k, v in response.headers.items()
            )
        self.seen.append(Seen(f"{method} {path}", head.encode() + b"\n" + body, frozenset(sent)))
        return response.status, body

    async def probe(
        self,
        path: str,
        needle: str,
        decoy: str,
        *,
        template: str,
        method: str = "GET",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Ask ``path`` (which names ``needle``) and the same with ``decoy`` in its place:
        the two answers must be the same but for the echo."""
        real = await self.fetch(
            path, template=template, method=method, headers=headers, sent=[needle]
        )
        fake = await self.fetch(
            path.replace(quote(needle, safe=""), quote(decoy, safe="")).replace(needle, decoy),
            template=template,
            method=method,
            headers=headers,
            sent=[decoy],
        )
        same = real[0] == fake[0] and _steady(real[1], needle) == _steady(fake[1], decoy)
        if not same:
            self.hits.append(
                Hit(
                    f"{method} {path}",
                    "an answer that differs for a real identifier and a made-up one"
                    f" (HTTP {real[0]} vs {fake[0]})",
                    needle,
                    real[1][:200].decode(errors="replace"),
                )
            )

    # -- the whole crawl ---------------------------------------------------------------------
    async def run(self, people: Sequence[str], consents: Sequence[str]) -> None:
        """Everything public, then error bodies about ``people`` (pseudonyms) and
        ``consents`` (Consent ids) asked without credentials."""
        for path in (
            "/healthz",
            "/readyz",
            "/metrics",
            "/api/v1/openapi.json",
            "/.well-known/smart-configuration",
            "/oauth/jwks",
            "/fhir/metadata",
            "/api/v1/ledger",
            "/api/v1/ledger/checkpoint",
            "/api/v1/ledger/key",
        ):
            await self.fetch(path)
        await self.registry()
        await self.ledger()
        await self.dashboard()
        before = self.size
        await self.errors(people, consents)
        await self.ledger(since=before)  # what the probes added to the log (their refusals)

    async def registry(self) -> None:
        status, body = await self.fetch("/api/v1/registry/sources")
        await self.fetch("/api/v1/registry/orgs")
        await self.fetch("/api/v1/registry/keys")
        sources = json.loads(body)["sources"] if status == 200 else []
        for pilot in sorted({s["pilot"] for s in sources}):
            await self.fetch(f"/api/v1/registry/sources?pilot={pilot}")
            await self.fetch(f"/api/v1/registry/keys?pilot={pilot}")

    async def ledger(self, since: int = 0) -> None:
        """Every entry from ``since``, in pages, each leaf also decoded; proofs for a
        sample."""
        status, body = await self.fetch(f"/api/v1/ledger/entries?start={since}&end={since}")
        assert status == 200, body
        self.size = size = int(json.loads(body)["size"])
        first_of_kind: dict[str, int] = {}
        for start in range(since, size, MAX_ENTRIES_PAGE):
            end = min(start + MAX_ENTRIES_PAGE, size)
            path = f"/api/v1/ledger/entries?start={start}&end={end}"
            status, body = await self.fetch(path)
            assert status == 200, body
            for entry in json.loads(body)["entries"]:
                leaf = base64.b64decode(entry["leaf"])
                where = f"leaf {entry['index']} ({entry['kind']}) of GET {path}"
                self.seen.append(Seen(where, leaf))
                first_of_kind.setdefault(entry["kind"], entry["index"])
        if size == since:
            return
        step = max((size - since) // INCLUSION_SAMPLE, 1)
        indexes = sorted({*range(since, size, step), size - 1, *first_of_kind.values()})
        for index in indexes:
            await self.fetch(f"/api/v1/ledger/proof/inclusion?index={index}&size={size}")
        for index in sorted(first_of_kind.values()):
            # Under the latest checkpoint, which may lag the entries read just now.
            await self.fetch(f"/api/v1/ledger/proof/tlog?index={index}")
        step = max((size - since) // CONSISTENCY_SAMPLE, 1)
        for first in sorted({*range(max(since, 1), size, step), size}):
            await self.fetch(f"/api/v1/ledger/proof/consistency?first={first}&second={size}")

    async def dashboard(self) -> None:
        await self.fetch("/")
        status, page = await self.fetch("/dashboard")
        assert status == 200
        files = {m.decode() for m in re.findall(rb"/dashboard/static/([A-Za-z0-9_.-]+)", page)}
        for name in sorted(files | {"dashboard.css", "dashboard.js", "favicon.svg"}):
            await self.fetch(f"/dashboard/static/{name}", template="/dashboard/static/{name}")
        await self.fetch("/api/v1/dashboard/summary")
        await self.stream()

    async def stream(self) -> None:
        """The first :data:`STREAM_EVENTS` events of the dashboard's stream (bounded)."""
        path = "/api/v1/dashboard/stream"
        self.templates.add(path)
        chunks: list[bytes] = []
        async with self.session.get(self.base + path) as response:
            assert response.status == 200, await response.text()
            async with asyncio.timeout(10 + 3 * STREAM_EVENTS):
                async for line in response.content:
                    chunks.append(line)
                    if sum(c.startswith(b"event: summary") for c in chunks) == STREAM_EVENTS:
                        if line.strip() == b"":
                            break
        self.seen.append(Seen(f"GET {path} ({STREAM_EVENTS} events)", b"".join(chunks)))

    async def errors(self, people: Sequence[str], consents: Sequence[str]) -> None:
        """A sample of what the hub says to the wrong requests."""
        size = self.size
        for path in (
            "/api/v1/ledger/entries?start=-1",
            f"/api/v1/ledger/entries?start={size + 5}",
            "/api/v1/ledger/entries?start=5&end=2",
            f"/api/v1/ledger/entries?start=0&end={MAX_ENTRIES_PAGE + 1}",
            "/api/v1/ledger/entries?start=abc",
            f"/api/v1/ledger/proof/inclusion?index={size}&size={size}",
            f"/api/v1/ledger/proof/inclusion?index=0&size={size + 1}",
            "/api/v1/ledger/proof/consistency?first=0&second=1",
            "/api/v1/ledger/proof/consistency?first=2&second=1",
            f"/api/v1/ledger/proof/tlog?index={size + 5}",
            "/api/v1/ledger/proof/tlog?index=x",
            "/api/v1/registry/keys?pilot=nope&source=nope",
            "/dashboard/static/nope.js",
            "/dashboard/static/..%2Fsummary.py",
            "/nope",
            "/fhir/Patient",
            "/api/v1/ledger/entries/1",
            "/api/v1/admin/dead-letters",
            "/api/v1/admin/clients",
        ):
            await self.fetch(path)
        await self.fetch(
            "/oauth/token",
            method="POST",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            data=b"grant_type=client_credentials&client_assertion=not.a.jwt",
        )
        bad = {"Authorization": "Bearer not-a-token"}
        for who in people:
            decoy = _lookalike(who)
            for template, path in (
                ("/fhir/Observation", f"/fhir/Observation?patient={who}"),
                ("/fhir/Observation", f"/fhir/Observation?subject=Patient/{who}"),
                ("/fhir/DiagnosticReport", f"/fhir/DiagnosticReport?patient={who}"),
                ("/fhir/Composition", f"/fhir/Composition?patient={who}"),
                ("/fhir/Consent", f"/fhir/Consent?patient={who}"),
                ("/api/v1/records", f"/api/v1/records?subject={who}&type=fhir.Observation"),
                ("/api/v1/audit", f"/api/v1/audit?subject={who}"),
            ):
                await self.probe(path, who, decoy, template=template)
                await self.probe(path, who, decoy, template=template, headers=bad)
        for consent in consents:
            decoy = _lookalike(consent)
            await self.probe(
                f"/fhir/Consent/{consent}", consent, decoy, template="/fhir/Consent/{id}"
            )
            await self.probe(
                f"/fhir/Consent/{consent}",
                consent,
                decoy,
                template="/fhir/Consent/{id}",
                headers=bad,
            )
            await self.probe(
                f"/fhir/Consent/{consent}/$withdraw",
                consent,
                decoy,
                template="/fhir/Consent/{id}/$withdraw",
                method="POST",
            )

    def missed(self) -> list[str]:
        """The public GET routes of :data:`ROUTES` this crawl never asked for."""
        public = {path for (method, path), how in ROUTES.items() if how is Exposure.PUBLIC}
        gets = {path for (method, path) in ROUTES if method == "GET"}
        return sorted((public & gets) - self.templates)


# -- searching -----------------------------------------------------------------------------------


def hub_files(folder: Path, *, named_from: Path | None = None) -> list[Seen]:
    """Every file under ``folder`` (a hub's directory: its ledger, WAL, access file, dead
    letters, keys), as bytes; named relative to ``named_from`` (default: ``folder``'s parent)."""
    base = folder.parent if named_from is None else named_from
    return [
        Seen(f"file {path.relative_to(base)}", path.read_bytes())
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    ]


def search(seen: Iterable[Seen], needles: Mapping[str, str]) -> list[Hit]:
    """Every place an identifier (``needles``: identifier -> what it is) occurs, ignoring
    case, in the bytes of ``seen`` (an answer's own identifiers excepted)."""
    if not needles:
        return []
    ordered = sorted(needles, key=len, reverse=True)
    pattern = re.compile(b"|".join(re.escape(n.encode()) for n in ordered), re.IGNORECASE)
    lowered = {n.lower(): n for n in needles}
    hits: list[Hit] = []
    for item in seen:
        sent = {s.lower() for s in item.sent}
        for match in pattern.finditer(item.data):
            found = match.group(0).decode(errors="replace").lower()
            if found in sent:
                continue
            needle = lowered[found]
            lo, hi = max(match.start() - CONTEXT, 0), match.end() + CONTEXT
            context = item.data[lo:hi].decode(errors="replace").replace("\n", "⏎")
            hits.append(Hit(item.where, needles[needle], needle, context))
    return hits


def report(hits: Sequence[Hit]) -> str:
    """The hits counted by kind of identifier and place, then the first hit of each."""
    groups: dict[tuple[str, str], list[Hit]] = {}
    for hit in hits:
        kind = hit.what.split(" of ")[0]
        place = re.sub(r"\d+", "N", hit.where.split(" of GET ")[0])
        groups.setdefault((kind, place), []).append(hit)
    lines = [f"{len(hits)} hits:"]
    lines += [f"  {len(g):6} × {kind} in {place}" for (kind, place), g in sorted(groups.items())]
    lines.append("the first of each:")
    lines += [f"  {g[0]}" for _, g in sorted(groups.items())]
    return "\n".join(lines)


def _steady(body: bytes, needle: str) -> bytes:
    """An answer without its echo of ``needle`` and without what differs on every ask."""
    for form in {needle, quote(needle, safe="")}:
        body = body.replace(form.encode(), b"<id>")
    return _VOLATILE.sub(b"", body)


def _lookalike(identifier: str) -> str:
    """A made-up identifier of the same shape (hex stays hex, the rest gets a suffix)."""
    if re.fullmatch(r"[0-9a-f]+", identifier):
        return secrets.token_hex(len(identifier) // 2 + 1)[: len(identifier)]
    return identifier[: max(len(identifier) - 6, 1)] + secrets.token_hex(3)
