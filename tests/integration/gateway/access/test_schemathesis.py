"""Schemathesis against ``/api/v1/openapi.json`` on a real running hub (real HTTP on
127.0.0.1, real broker, real SQLite), bounded examples per operation: no input makes a 500.

Requests carry a valid hospital token (admin paths: the admin token), so generated
parameters reach the handlers rather than stopping at authentication."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from gateway.api.openapi import build_spec
from tests.support.access import HOSPITAL, HospitalClient, consent_document
from tests.support.broker import Mosquitto
from tests.support.hub import ADMIN_TOKEN, ThreadHub, _handle

schema = schemathesis.openapi.from_dict(build_spec()).exclude(
    # An endless server-sent event stream: nothing to fuzz, and it never completes.
    path="/api/v1/dashboard/stream"
)


@pytest.fixture(scope="module")
def fuzzed_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root: Path = tmp_path_factory.mktemp("schemathesis")
    (root / "mosquitto").mkdir()
    broker = Mosquitto(root / "mosquitto")
    broker.start()
    hub: ThreadHub = _handle(ThreadHub, root / "hub", broker.url, batch_max_ms=2)
    hub.start()
    try:
        client = HospitalClient(hub, "fuzz-ehr", HOSPITAL).register()
        token = client.token()
        client.call("POST", "/fhir/Consent", token, body=consent_document("c-1", "pt-fuzz0001"))
        yield {"hub": hub, "token": token}
    finally:
        hub.stop()
        broker.stop()


@schema.parametrize()
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_input_makes_a_server_error(case: schemathesis.Case, fuzzed_hub: dict[str, Any]) -> None:
    hub: ThreadHub = fuzzed_hub["hub"]
    admin = case.path.startswith("/api/v1/admin")
    token = ADMIN_TOKEN if admin else fuzzed_hub["token"]
    headers = {"Authorization": f"Bearer {token}", **(case.headers or {})}
    if "X-Purpose-Of-Use" not in headers:
        headers["X-Purpose-Of-Use"] = "TREAT"
    case.call_and_validate(
        base_url=hub.http_url, headers=headers, checks=[not_a_server_error], timeout=30
    )
