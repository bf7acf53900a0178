"""What a personal device (a patient's home gateway) does: seal one reading as a v2
envelope with its own key, and hand it to its hospital's relay agent (edge/relay.py).

The device names its patient by the pseudonym and Consent id its hospital enrolled it with
(the payload already refers to ``Patient/<pseudonym>``): it holds no pseudonymisation key,
and no local patient id ever leaves the hospital. ``swiftchain edge seal`` is this module
on the command line.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from ledger.envelope import SignedRecord, seal
from ledger.errors import InvalidEnvelope
from ledger.keys import PrivateKey

from .errors import EdgeError, InvalidInput
from .fhir import observed_time

#: Where a relay agent's HTTP source takes device envelopes.
RELAY_PATH = "/relay"


def clock_seq() -> int:
    """A seq for a device that keeps no counter: Unix time in milliseconds (grows as long
    as the device's clock does, and at most one reading a millisecond)."""
    return time.time_ns() // 1_000_000


def reading_type(payload: dict[str, Any], type_id: str | None) -> str:
    """The type a reading is sealed as: the one given, else ``fhir.<resourceType>``."""
    if type_id is not None:
        return type_id
    resource_type = payload.get("resourceType")
    if isinstance(resource_type, str):
        return f"fhir.{resource_type}"
    raise InvalidInput("type_required", "name the type of a payload that is not FHIR (--type)")


def reading_time(payload: dict[str, Any], observed_at: str | None) -> str | None:
    """When the reading was taken: as given, else the FHIR resource's time or the payload's
    ``observed_at``; None lets the seal take the current time."""
    if observed_at is not None:
        return observed_at
    if isinstance(payload.get("resourceType"), str):
        return observed_time(payload)
    stated = payload.get("observed_at")
    return stated if isinstance(stated, str) else None


def seal_reading(
    payload: dict[str, Any],
    *,
    pilot: str,
    source: str,
    seq: int,
    signing_key: PrivateKey,
    type_id: str | None = None,
    subject: str | None = None,
    consent: str | None = None,
    observed_at: str | None = None,
    record_id: str | None = None,
) -> SignedRecord:
    """The device's v2 envelope of one reading, in the suite of its key (Ed25519 and SHA-256,
    or SM2 and SM3: its relay's); InvalidInput if it cannot be one."""
    if not isinstance(payload, dict):
        raise InvalidInput("unknown_shape", "a reading's payload is a JSON object")
    try:
        return seal(
            pilot=pilot,
            source=source,
            seq=seq,
            type=reading_type(payload, type_id),
            payload=payload,
            signing_key=signing_key,
            subject=subject,
            consent=consent,
            observed_at=reading_time(payload, observed_at),
            record_id=record_id,
        )
    except InvalidEnvelope as exc:
        raise InvalidInput(exc.reason, exc.detail) from None


@dataclass(frozen=True)
class RelayAnswer:
    """What the relay said: 202 stored, 200 relayed before, 4xx refused (with the reason)."""

    status: int
    body: Any

    @property
    def stored(self) -> bool:
        return self.status in (200, 202)


def send_to_relay(url: str, envelopes: bytes, *, timeout: float = 10.0) -> RelayAnswer:
    """POST wire envelopes (one, or a JSON list) to the relay at ``url``; EdgeError if the
    relay cannot be reached. A refusal is an answer, not an error."""
    target = url.rstrip("/") + (RELAY_PATH if not url.rstrip("/").endswith(RELAY_PATH) else "")
    if not target.startswith(("http://", "https://")):
        raise EdgeError(f"a relay URL reads http(s)://host:port, not {url!r}")
    request = urllib.request.Request(
        target, data=envelopes, method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return RelayAnswer(response.status, _json(response.read()))
    except urllib.error.HTTPError as exc:
        return RelayAnswer(exc.code, _json(exc.read()))
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise EdgeError(f"cannot reach the relay at {target}: {reason}") from None


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")
