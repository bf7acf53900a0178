from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.app import create_app
from gateway.appkeys import ACCESS, HUB
from gateway.errors import ConfigError
from gateway.ingest.checks import no_consent_check
from gateway.ingest.receipts import Receipt, rejected
from gateway.settings import load_settings


def test_toml_then_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "hub.toml"
    config.write_text(
        'db_path = "data/ledger.db"\nbatch_max_records = 50\nmqtt_url = "mqtt://127.0.0.1:1999"\n'
    )
    monkeypatch.setenv("SWIFTCHAIN_HUB_BATCH_MAX_RECORDS", "70")
    s = load_settings(config)
    assert s.batch_max_records == 70
    assert s.db_path == tmp_path / "data" / "ledger.db"
    assert s.dead_letters == tmp_path / "data" / "ledger.db.deadletter"
    assert (s.mqtt_host, s.mqtt_port) == ("127.0.0.1", 1999)
    assert s.records_subscription == "$share/hub/swiftchain/v1/+/+/records"


def test_consent_is_enforced_unless_a_setting_turns_it_off(tmp_path: Path) -> None:
    # The factory has no switch of its own: a hub built from plain settings checks consent.
    config = tmp_path / "hub.toml"
    config.write_text("")
    on = create_app(load_settings(config))
    assert on[HUB].consent_check == on[ACCESS].consent_check
    config.write_text("enforce_consent = false\n")
    off = create_app(load_settings(config))
    assert off[HUB].consent_check is no_consent_check


def test_plain_subscription_for_brokers_without_shared_subs(tmp_path: Path) -> None:
    config = tmp_path / "hub.toml"
    config.write_text("mqtt_shared_subscription = false\n")
    assert load_settings(config).records_subscription == "swiftchain/v1/+/+/records"


@pytest.mark.parametrize(
    "text",
    [
        'batch_max_records = "many"\n',
        "unknown_setting = 1\n",
        'mqtt_url = "http://x"\n',
        "max_clock_skew_s = -1\n",
        "max_clock_skew_s = 86400\n",
        "not toml [",
    ],
)
def test_bad_config_is_a_config_error(tmp_path: Path, text: str) -> None:
    config = tmp_path / "hub.toml"
    config.write_text(text)
    with pytest.raises(ConfigError):
        load_settings(config)


def test_clock_skew_defaults_to_five_minutes(tmp_path: Path) -> None:
    config = tmp_path / "hub.toml"
    config.write_text("")
    assert load_settings(config).max_clock_skew_s == 300
    config.write_text("max_clock_skew_s = 0\n")
    assert load_settings(config).max_clock_skew_s == 0


def test_missing_config(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no hub config"):
        load_settings(tmp_path / "nope.toml")


def test_receipt_wire_shapes() -> None:
    unparseable = json.loads(rejected(None, "malformed_json", "bad").wire())
    assert unparseable == {
        "id": None,
        "status": "rejected",
        "reason": "malformed_json",
        "detail": "bad",
    }
    accepted = json.loads(
        Receipt(
            id="r1", status="accepted", index=3, leaf_hash="ab" * 32, checkpoint="note\n"
        ).wire()
    )
    assert accepted == {
        "id": "r1",
        "status": "accepted",
        "index": 3,
        "leaf_hash": "ab" * 32,
        "checkpoint": "note\n",
    }


_text = st.none() | st.text(max_size=40)


@given(
    record_id=_text,
    status=st.sampled_from(["accepted", "duplicate", "rejected"]),
    index=st.none() | st.integers(min_value=0, max_value=2**40),
    leaf_hash=st.none() | st.text("0123456789abcdef", min_size=64, max_size=64),
    checkpoint=_text,
    cosigned=_text,
    reason=_text,
    detail=_text,
)
def test_receipt_wire_is_the_models_json(record_id: str | None, **fields: Any) -> None:
    """The hand-built receipt JSON is byte for byte what the model dumps (nulls out, ``id``
    always there, fields in the model's order)."""
    receipt = Receipt.model_construct(id=record_id, **fields)
    by_model = receipt.model_dump(exclude_none=True)
    by_model.setdefault("id", None)
    ordered = {name: by_model[name] for name in Receipt.model_fields if name in by_model}
    assert receipt.wire() == json.dumps(ordered, separators=(",", ":")).encode()
