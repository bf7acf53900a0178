"""A private CA and Mosquittos that speak only TLS (see ``tests/support/tls.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.broker import Mosquitto
from tests.support.tls import Pki, make_pki, tls_mosquitto


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path / "pki")


def _running(broker: Mosquitto) -> Iterator[Mosquitto]:
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def tls_broker(tmp_path: Path, pki: Pki) -> Iterator[Mosquitto]:
    """TLS only; any client that trusts the CA may connect."""
    workdir = tmp_path / "tls-mosquitto"
    workdir.mkdir()
    yield from _running(tls_mosquitto(workdir, pki))


@pytest.fixture
def mtls_broker(tmp_path: Path, pki: Pki) -> Iterator[Mosquitto]:
    """TLS only, and every client must present a certificate signed by the CA."""
    workdir = tmp_path / "mtls-mosquitto"
    workdir.mkdir()
    yield from _running(tls_mosquitto(workdir, pki, require_certificate=True))
