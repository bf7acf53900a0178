"""What a replay needs of a hub, over the wire only: the scenario's organisations, sources
and API clients registered through the hub's admin API, their keys kept in a work folder,
SMART tokens from signed client assertions, Consent calls and data queries.

Nothing here imports the hub (``gateway``): replay meets it on HTTP and MQTT, as a city's
systems would. Registering again with the same work folder reuses its keys, so a replay can
run twice against one hub.
"""

from __future__ import annotations

import json
import os
import secrets
import time
import uuid
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from joserfc import jwt
from joserfc.jwk import ECKey

from edge.pseudonym import Pseudonymiser, load_pseudonym_key
from ledger.checkpoint import NoteVerifier
from ledger.errors import CheckpointError
from ledger.keys import load_private_key, public_key_b64, write_key_pair
from ledger.suite import DEFAULT_SUITE, Suite, suite_of

from .clock import rfc3339
from .errors import SimulatorError
from .scenario import Header

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
CLIENT_SCOPES = ("system/*.rs", "system/Consent.cru")
#: Refresh an access token this long before the hub's 300 s lifetime ends.
TOKEN_REUSE_S = 200.0
#: Source keys are valid from this long before the scenario starts (it carries history).
KEY_BACKDATE = timedelta(days=400)


class HubRefused(SimulatorError):
    """The hub answered a provisioning or Consent call with an error; the message says which."""


@dataclass(frozen=True)
class SourceKey:
    pilot: str
    source: str
    org: str
    types: tuple[str, ...]
    key_file: Path


@dataclass
class ApiClient:
    """A hospital or bureau system's client: SMART Backend Services with an ES384 key."""

    client_id: str
    org: str
    pilot: str
    key: ECKey
    kid: str
    _token: str | None = None
    _token_at: float = 0.0

    def jwks(self) -> dict[str, Any]:
        public = dict(self.key.as_dict(private=False))
        public.update({"kid": self.kid, "alg": "ES384", "use": "sig"})
        return {"keys": [public]}

    def assertion(self, token_url: str) -> str:
        now = int(time.time())
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": token_url,
            "exp": now + 240,
            "iat": now,
            "jti": uuid.uuid4().hex,
        }
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # joserfc warns about ES384 being "recommended+"
            return jwt.encode(
                {"alg": "ES384", "kid": self.kid, "typ": "JWT"}, claims, self.key, ["ES384"]
            )


def source_key_path(workdir: Path, pilot: str, source: str) -> Path:
    """Where a replay keeps (and looks for) a source's private key."""
    return workdir / "keys" / f"{pilot}--{source}.key"


def key_valid_from(header: Header) -> str:
    begin = datetime.fromisoformat(header.start.replace("Z", "+00:00"))
    return rfc3339(begin - KEY_BACKDATE)


def record_sources(header: Header) -> list[tuple[str, str, str, list[str]]]:
    """``(pilot, source, org, types)`` of every source that sends records (not Consents)."""
    out = []
    for s in header.sources:
        kinds = [t for t in s.types if t != "fhir.Consent"]
        if kinds:
            out.append((s.pilot, s.source, s.org, kinds))
    return out


def client_name(pilot: str, name: str, shared: bool) -> str:
    """A client id unique on the hub: a system used in two pilots gets one client per pilot."""
    return f"{name}.{pilot}" if shared else name


@dataclass
class Network:
    """The hub's addresses and everything registered for one scenario."""

    hub_url: str
    admin_token: str | None
    workdir: Path
    sources: dict[tuple[str, str], SourceKey] = field(default_factory=dict)
    #: (pilot, system name as the scenario spells it) -> client.
    clients: dict[tuple[str, str], ApiClient] = field(default_factory=dict)
    pseudonymisers: dict[str, Pseudonymiser] = field(default_factory=dict)
    pseudonym_keys: dict[str, Path] = field(default_factory=dict)
    #: The hub's signed-note key, read once at provisioning and pinned in every agent.
    verifier_key: str | None = None
    #: The crypto suite of the hub's log: every source key (and device key) made is of it.
    suite: Suite = DEFAULT_SUITE

    @property
    def token_url(self) -> str:
        return self.hub_url + "/oauth/token"

    def pseudonym(self, pilot: str, local_id: str) -> str:
        return self.pseudonymisers[pilot].pseudonym(local_id)

    # -- provisioning ----------------------------------------------------------------------
    async def _admin(
        self, http: aiohttp.ClientSession, path: str, body: dict[str, Any], *, again_ok: bool
    ) -> None:
        headers = {"Authorization": f"Bearer {self.admin_token}"} if self.admin_token else {}
        async with http.post(self.hub_url + path, json=body, headers=headers) as resp:
            if resp.status == 201 or (resp.status == 409 and again_ok):
                return
            text = await resp.text()
        raise HubRefused(f"POST {path} answered {resp.status}: {text[:300]}")

    async def add_org(self, http: aiohttp.ClientSession, org: str) -> None:
        await self._admin(
            http, "/api/v1/admin/registry/orgs", {"org": org, "name": org}, again_ok=True
        )

    def pseudonymiser_for(self, pilot: str) -> Pseudonymiser:
        if pilot not in self.pseudonymisers:
            path = self.workdir / "keys" / f"{pilot}.pseudonym-key"
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(secrets.token_hex(32) + "\n")
                os.chmod(path, 0o600)
            self.pseudonym_keys[pilot] = path
            self.pseudonymisers[pilot] = Pseudonymiser(load_pseudonym_key(path), pilot)
        return self.pseudonymisers[pilot]

    async def add_source(
        self,
        http: aiohttp.ClientSession,
        pilot: str,
        source: str,
        org: str,
        types: Iterable[str],
        valid_from: str | None = None,
    ) -> SourceKey:
        """Register a source with a new key (or the work folder's, registered before).

        ``valid_from`` backdates the key: a scenario's readings are observed in the past
        (home devices upload days of history), and a key signs only within its validity.
        """
        path = source_key_path(self.workdir, pilot, source)
        existed = path.exists()
        if existed:
            key = load_private_key(path)
            if not self.suite.owns(key):
                raise SimulatorError(
                    f"{path} is an {suite_of(key).key_kind} key, but the hub's log is"
                    f" {self.suite.name}: replay into another work folder"
                )
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            key = write_key_pair(path, suite=self.suite)
        kinds = tuple(types)
        body = {
            "pilot": pilot,
            "source": source,
            "org": org,
            "types": list(kinds),
            "public_key": public_key_b64(key.public_key()),
        }
        if valid_from is not None:
            body["valid_from"] = valid_from
        await self._admin(http, "/api/v1/admin/registry/sources", body, again_ok=existed)
        found = SourceKey(pilot, source, org, kinds, path)
        self.sources[(pilot, source)] = found
        return found

    async def add_client(
        self, http: aiohttp.ClientSession, pilot: str, name: str, org: str, client_id: str
    ) -> ApiClient:
        path = self.workdir / "clients" / f"{client_id}.jwk.json"
        existed = path.exists()
        if existed:
            saved = json.loads(path.read_text())
            key = ECKey.import_key(saved["jwk"])
            kid = str(saved["kid"])
        else:
            key = ECKey.generate_key("P-384", private=True)
            kid = uuid.uuid4().hex[:12]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({"kid": kid, "jwk": key.as_dict(private=True)}))
            os.chmod(path, 0o600)
        client = ApiClient(client_id, org, pilot, key, kid)
        body = {
            "client_id": client_id,
            "org": org,
            "pilot": pilot,
            "jwks": client.jwks(),
            "scopes": list(CLIENT_SCOPES),
        }
        await self._admin(http, "/api/v1/admin/clients", body, again_ok=existed)
        self.clients[(pilot, name)] = client
        return client

    # -- calls as a client -----------------------------------------------------------------
    async def token(self, http: aiohttp.ClientSession, client: ApiClient) -> str:
        if client._token is not None and time.monotonic() - client._token_at < TOKEN_REUSE_S:
            return client._token
        form = {
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": client.assertion(self.token_url),
            "scope": " ".join(CLIENT_SCOPES),
        }
        async with http.post(self.token_url, data=form) as resp:
            body = await resp.json(content_type=None)
            if resp.status != 200:
                raise HubRefused(f"no token for {client.client_id}: {resp.status} {body}")
        client._token, client._token_at = str(body["access_token"]), time.monotonic()
        return client._token

    async def call(
        self,
        http: aiohttp.ClientSession,
        client: ApiClient,
        method: str,
        path: str,
        *,
        purpose: str | None = None,
        body: Any = None,
    ) -> tuple[int, dict[str, str], Any]:
        """One request as ``client``: (status, headers, JSON body or text)."""
        headers = {"Authorization": f"Bearer {await self.token(http, client)}"}
        if purpose is not None:
            headers["X-Purpose-Of-Use"] = purpose
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/fhir+json"
        async with http.request(method, self.hub_url + path, data=data, headers=headers) as resp:
            raw = await resp.read()
            try:
                value: Any = json.loads(raw)
            except ValueError:
                value = raw.decode(errors="replace")
            return resp.status, dict(resp.headers), value


async def provision(
    http: aiohttp.ClientSession,
    header: Header,
    *,
    hub_url: str,
    admin_token: str | None,
    workdir: Path,
    clients: Iterable[tuple[str, str, str]] = (),
    suite: Suite | None = None,
) -> Network:
    """Register the scenario's organisations, record sources (new keys) and API clients.

    Clients, as ``(pilot, name, org)``: each system that records Consents (a consent
    event's ``source``) in each pilot it acts in, plus ``clients`` (the scripted queries'
    systems, the demo's auditor). Source keys are of the hub's log's ``suite``: the one its
    ledger key tells, which ``suite``, when given, must be.
    """
    net = Network(hub_url.rstrip("/"), admin_token, workdir)
    async with http.get(net.hub_url + "/api/v1/ledger/key") as resp:
        if resp.status != 200:
            raise HubRefused(f"the hub at {net.hub_url} gave no ledger key ({resp.status})")
        net.verifier_key = (await resp.text()).strip()
    try:
        net.suite = NoteVerifier.parse(net.verifier_key).suite
    except CheckpointError as exc:
        raise HubRefused(f"the hub at {net.hub_url} gave no usable ledger key: {exc}") from None
    if suite is not None and suite is not net.suite:
        raise HubRefused(f"the hub at {net.hub_url} keeps a {net.suite.name} log, not {suite.name}")
    extra = list(clients)
    orgs = {s.org for s in header.sources} | {c.org for c in header.clients}
    orgs |= {org for _, _, org in extra}
    for org in sorted(orgs):
        await net.add_org(http, org)
    wanted: dict[tuple[str, str], str] = {}
    valid_from = key_valid_from(header)
    for pilot, source, org, kinds in record_sources(header):
        await net.add_source(http, pilot, source, org, kinds, valid_from)
    for s in header.sources:
        net.pseudonymiser_for(s.pilot)
        if "fhir.Consent" in s.types:
            wanted[(s.pilot, s.source)] = s.org
    for pilot, name, org in extra:
        wanted.setdefault((pilot, name), org)
    pilots_of: dict[str, set[str]] = {}
    for pilot, name in wanted:
        pilots_of.setdefault(name, set()).add(pilot)
    for (pilot, name), org in sorted(wanted.items()):
        cid = client_name(pilot, name, len(pilots_of[name]) > 1)
        await net.add_client(http, pilot, name, org, cid)
    return net
