"""A client assertion made for one hub, replayed at another that has the same client
registered. Without ``public_url`` the second hub used to take the expected audience from the
request's ``Host`` header, so the replay (with ``Host`` set to the first hub's) got a token.
Now a hub that does not know its own URL issues no token once a client is registered (a 503
saying what to set, and a warning at start), and one configured with ``token_audiences``
accepts exactly those."""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.access import ASSERTION_TYPE, HOSPITAL, HospitalClient, http
from tests.support.broker import Mosquitto, free_port
from tests.support.hub import ThreadHub, write_hub_config

from .conftest import AttackTally


def start_hub(directory: Path, broker: Mosquitto, **settings: object) -> ThreadHub:
    port = free_port()
    config = write_hub_config(directory, mqtt_url=broker.url, http_port=port, **settings)
    keys = directory / "keys"
    keys.mkdir(exist_ok=True)
    hub = ThreadHub(config, f"http://127.0.0.1:{port}", broker.url, keys)
    hub.start()
    return hub


@pytest.fixture
def hub_a(tmp_path: Path, hub_broker: Mosquitto) -> Iterator[ThreadHub]:
    hub = start_hub(tmp_path / "hub-a", hub_broker)
    try:
        yield hub
    finally:
        hub.stop()


def post_token(hub: ThreadHub, assertion: str, host: str | None = None) -> tuple[int, object]:
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion,
        "scope": "system/Observation.rs",
    }
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if host is not None:
        headers["Host"] = host
    status, _, body = http(
        "POST",
        hub.http_url + "/oauth/token",
        body=urllib.parse.urlencode(form).encode(),
        headers=headers,
    )
    return status, body


def test_an_assertion_for_one_hub_gets_no_token_at_another(
    tmp_path: Path,
    hub_broker: Mosquitto,
    hub_a: ThreadHub,
    attacks: AttackTally,
    caplog: pytest.LogCaptureFixture,
) -> None:
    at_a = HospitalClient(hub_a, "php-ehr", HOSPITAL).register()
    hub_b = start_hub(tmp_path / "hub-b", hub_broker, public_url=None)
    try:
        HospitalClient(hub_b, "php-ehr", HOSPITAL, key=at_a.key, kid=at_a.kid).register()
        hub_b.stop()  # and started again below, with the client registered
        with caplog.at_level(logging.WARNING, logger="swiftchain.hub.access"):
            hub_b.start()

        used_at_a = at_a.assertion()
        assert post_token(hub_a, used_at_a)[0] == 200
        a_host = urllib.parse.urlsplit(hub_a.http_url).netloc
        for host in (a_host, None):
            status, body = post_token(hub_b, used_at_a, host=host)
            assert status == 503, (host, body)
            assert isinstance(body, dict) and body["error"] == "server_error"
            assert "set public_url" in body["error_description"]
        # Not even an assertion made for hub B by its own Host gets a token.
        b_url = hub_b.http_url + "/oauth/token"
        assert post_token(hub_b, at_a.assertion(aud=b_url))[0] == 503
        attacks.tried("assertion replayed at another hub (HTTP)", 3)
        # Started with a client registered, the hub said at once what is missing.
        assert "neither public_url nor token_audiences is set" in caplog.text
    finally:
        hub_b.stop()


def test_token_audiences_are_the_only_names_accepted(
    tmp_path: Path, hub_broker: Mosquitto, hub_a: ThreadHub, attacks: AttackTally
) -> None:
    at_a = HospitalClient(hub_a, "php-ehr", HOSPITAL).register()
    alias = "https://ledger.internal.example/oauth/token"
    hub_b = start_hub(tmp_path / "hub-b", hub_broker, public_url=None, token_audiences=[alias])
    try:
        at_b = HospitalClient(hub_b, "php-ehr", HOSPITAL, key=at_a.key, kid=at_a.kid).register()
        a_host = urllib.parse.urlsplit(hub_a.http_url).netloc
        status, body = post_token(hub_b, at_a.assertion(), host=a_host)
        assert status == 401, body
        assert isinstance(body, dict) and body["error"] == "invalid_client"
        assert alias in body["error_description"]
        assert post_token(hub_b, at_b.assertion(aud=alias))[0] == 200
        attacks.tried("assertion replayed at another hub (HTTP)", 1)
    finally:
        hub_b.stop()
