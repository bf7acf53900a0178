"""Hospital clients for tests: a key pair (ES384 or EdDSA), registration through the hub's
admin API, signed client assertions (well-formed or hostile), tokens, and data requests
over real HTTP. Plus FHIR payloads and consents for the chronic-care pilot."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey, OKPKey

from pilots import make_consent
from pilots.consent import consent_json
from tests.support.hub import HubHandle

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
PILOT = "chronic-care"
HOSPITAL = "harbour-peoples-hospital"
AUDITOR = "health-commission"
BP_PANEL = "85354-9"
#: The patient the attack tests aim at.
ATTACK_SUBJECT = "pt-attack0001"


def http(
    method: str,
    url: str,
    *,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], Any]:
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw, status, hdrs = resp.read(), resp.status, dict(resp.headers)
    except urllib.error.HTTPError as exc:
        raw, status, hdrs = exc.read(), exc.code, dict(exc.headers)
    try:
        value: Any = json.loads(raw)
    except ValueError:
        value = raw.decode(errors="replace")
    return status, hdrs, value


@dataclass
class HospitalClient:
    hub: HubHandle
    client_id: str
    org: str
    pilot: str = PILOT
    alg: str = "ES384"
    key: Any = None
    kid: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    def __post_init__(self) -> None:
        if self.key is None:
            if self.alg == "ES384":
                self.key = ECKey.generate_key("P-384", private=True)
            else:
                self.key = OKPKey.generate_key("Ed25519", private=True)

    @property
    def token_url(self) -> str:
        return self.hub.http_url + "/oauth/token"

    def jwks(self) -> dict[str, Any]:
        public = self.key.as_dict(private=False)
        public.update({"kid": self.kid, "alg": self.alg, "use": "sig"})
        return {"keys": [public]}

    def register(self, scopes: list[str] | None = None) -> HospitalClient:
        status, answer = self.hub.request(
            "POST",
            "/api/v1/admin/clients",
            {
                "client_id": self.client_id,
                "org": self.org,
                "pilot": self.pilot,
                "jwks": self.jwks(),
                "scopes": scopes or ["system/*.rs", "system/Consent.cru"],
            },
        )
        assert status == 201, answer
        return self

    def assertion(
        self,
        *,
        aud: str | None = None,
        exp_in: int = 240,
        jti: str | None = None,
        alg: str | None = None,
        key: Any = None,
        claims: dict[str, Any] | None = None,
    ) -> str:
        now = int(time.time())
        body = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": aud or self.token_url,
            "exp": now + exp_in,
            "iat": now,
            "jti": jti or uuid.uuid4().hex,
            **(claims or {}),
        }
        chosen = alg or self.alg
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return jwt.encode(
                {"alg": chosen, "kid": self.kid, "typ": "JWT"},
                body,
                key or self.key,
                algorithms=[chosen],
            )

    def token_request(
        self, assertion: str | None = None, scope: str = "system/Observation.rs"
    ) -> tuple[int, Any]:
        form = {
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion or self.assertion(),
            "scope": scope,
        }
        status, _, body = http(
            "POST",
            self.token_url,
            body=urllib.parse.urlencode(form).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        return status, body

    def token(self, scope: str = "system/Observation.rs system/Consent.cru") -> str:
        status, body = self.token_request(scope=scope)
        assert status == 200, body
        return str(body["access_token"])

    def call(
        self,
        method: str,
        path: str,
        token: str,
        *,
        purpose: str | None = "TREAT",
        body: Any = None,
    ) -> tuple[int, dict[str, str], Any]:
        headers = {"Authorization": f"Bearer {token}"}
        if purpose is not None:
            headers["X-Purpose-Of-Use"] = purpose
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/fhir+json"
        return http(method, self.hub.http_url + path, body=data, headers=headers)


def consent_document(consent_id: str, subject: str, **kw: Any) -> dict[str, Any]:
    consent = make_consent(
        consent_id=consent_id,
        subject=subject,
        recorded_at=datetime.now(UTC),
        actors=kw.pop("actors", [HOSPITAL]),
        purposes=kw.pop("purposes", ["TREAT", "CAREMGT"]),
        data_types=kw.pop("data_types", ["fhir.Observation"]),
        # A grant carries its evidence (the signed form); the hub records none without it.
        evidence=kw.pop("evidence", "DocumentReference/signed-consent-form"),
        **kw,
    )
    return consent_json(consent)


def observation(subject: str, value: float, when: str, code: str = BP_PANEL) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": uuid.uuid4().hex[:16],
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": f"Patient/{subject}"},
        "effectiveDateTime": when,
        "valueQuantity": {"value": value, "unit": "mm[Hg]"},
    }


class Device:
    """A home blood-pressure device of the chronic-care pilot publishing over real MQTT."""

    def __init__(self, hub: HubHandle, source: str = "home-bp", org: str = "vitalink") -> None:
        from ledger.keys import load_private_key

        path, _ = hub.register_source(PILOT, source, ["fhir.Observation"], org=org)
        self.hub, self.source, self.key, self.seq = hub, source, load_private_key(path), 0

    async def publish(self, subject: str, consent: str, n: int = 1) -> list[dict[str, Any]]:
        from ledger.envelope import seal, utc_now
        from tests.support.hub import MqttPeer

        receipts = []
        async with MqttPeer(self.hub.mqtt_url) as peer:
            for _ in range(n):
                self.seq += 1
                record = seal(
                    pilot=PILOT,
                    source=self.source,
                    seq=self.seq,
                    type="fhir.Observation",
                    payload=observation(subject, 120 + self.seq, utc_now()),
                    signing_key=self.key,
                    subject=subject,
                    consent=consent,
                )
                receipts.append(await peer.send(record))
        return receipts
