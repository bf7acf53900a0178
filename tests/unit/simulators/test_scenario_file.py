"""Reading and writing scenario files: round trips, order, and errors that name the line."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from simulators import ScenarioError, build_scenario, read_scenario, write_scenario
from simulators.scenario import EVENT_KEYS, RecordEvent, Scenario


@pytest.fixture(scope="module")
def small() -> Scenario:
    return build_scenario(seed=5, hours=12, scale="small")


def _write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_round_trip(tmp_path: Path, small: Scenario) -> None:
    path = tmp_path / "s.ndjson"
    write_scenario(path, small)
    header, events = read_scenario(path)
    assert header == small.header
    assert list(events) == small.events


def test_events_are_sorted_and_counted(demo: Scenario) -> None:
    moments = [datetime.fromisoformat(e.t.replace("Z", "+00:00")) for e in demo.events]
    assert moments == sorted(moments)
    start = datetime.fromisoformat(demo.header.start.replace("Z", "+00:00"))
    assert moments[0] >= start
    assert (moments[-1] - start).total_seconds() < demo.header.duration_s
    assert demo.header.counts.total == len(demo.events)
    assert sum(demo.header.counts.by_pilot.values()) == len(demo.events)


def test_default_scenario_is_demo_sized_and_tells_the_story(demo: Scenario) -> None:
    counts = demo.header.counts
    assert 3_000 <= counts.total <= 8_000
    assert set(counts.by_pilot) == {
        "air-quality",
        "traffic-flow",
        "smart-parking",
        "chronic-care",
        "cross-hospital-referral",
    }
    assert counts.by_kind["consent.withdraw"] >= 1
    expectations = [(e.payload.org, e.payload.purpose, e.payload.expect)
                    for e in demo.events if e.kind == "query"]  # fmt: skip
    assert ("harbour-peoples-hospital", "TREAT", "allow") in expectations
    assert ("urban-health-institute", "HRESCH", "deny") in expectations
    assert ("harbour-cdc", "PUBHLTH", "allow") in expectations
    assert ("harbour-peoples-hospital", "TREAT", "deny") in expectations  # after the withdrawal


def test_every_line_has_the_same_keys_in_order(tmp_path: Path, small: Scenario) -> None:
    lines = small.to_bytes().decode().splitlines()
    assert json.loads(lines[0])["format"] == "swiftchain-scenario"
    for line in lines[1:]:
        assert tuple(json.loads(line)) == EVENT_KEYS
        assert ", " not in line[:40] and ": " not in line[:40]  # fixed separators


def test_header_names_every_source_once(demo: Scenario) -> None:
    sources = {(s.pilot, s.source) for s in demo.header.sources}
    assert len(sources) == len(demo.header.sources)
    # A home device's readings are published by its relay, which is the source listed.
    publishers = {
        (e.pilot, demo.header.relay(e.pilot, e.source) or e.source)
        for e in demo.events
        if e.kind != "query"
    }
    assert publishers == sources
    assert {c.client for c in demo.header.clients} == {
        e.source for e in demo.events if e.kind == "query"
    }


def _lines(small: Scenario) -> list[str]:
    return small.to_bytes().decode().splitlines()


def _error(path: Path) -> ScenarioError:
    with pytest.raises(ScenarioError) as caught:
        _, events = read_scenario(path)
        for _ in events:
            pass
    return caught.value


def test_bad_json_names_its_line(tmp_path: Path, small: Scenario) -> None:
    lines = _lines(small)
    lines[3] = lines[3][:-5]
    err = _error(_write_lines(tmp_path / "s.ndjson", lines))
    assert err.line == 4 and "line 4" in str(err) and "not JSON" in str(err)
    assert str(tmp_path / "s.ndjson") in str(err)


def test_invalid_event_names_its_line_and_field(tmp_path: Path, small: Scenario) -> None:
    lines = _lines(small)
    event = json.loads(lines[5])
    del event["source"]
    lines[5] = json.dumps(event)
    err = _error(_write_lines(tmp_path / "s.ndjson", lines))
    assert err.line == 6 and "source" in err.detail


def test_unknown_kind_names_its_line(tmp_path: Path, small: Scenario) -> None:
    lines = _lines(small)
    event = json.loads(lines[2])
    event["kind"] = "telemetry"
    lines[2] = json.dumps(event)
    err = _error(_write_lines(tmp_path / "s.ndjson", lines))
    assert err.line == 3 and "telemetry" in err.detail


def test_events_out_of_order_name_the_line(tmp_path: Path, small: Scenario) -> None:
    lines = _lines(small)
    lines.insert(2, lines.pop())  # the last event now comes second: line 4 is too early
    err = _error(_write_lines(tmp_path / "s.ndjson", lines))
    assert err.line == 4 and "time order" in err.detail


def test_blank_line_and_count_mismatch(tmp_path: Path, small: Scenario) -> None:
    lines = _lines(small)
    err = _error(_write_lines(tmp_path / "blank.ndjson", [*lines[:4], "", *lines[4:]]))
    assert err.line == 5 and "blank" in err.detail
    err = _error(_write_lines(tmp_path / "short.ndjson", lines[:-2]))
    assert "header counts" in err.detail and err.line == len(lines) - 2


@pytest.mark.parametrize(
    ("first", "words"),
    [
        ("", "empty file"),
        ('{"format":"something-else"}', "not a scenario file"),
        ('{"format":"swiftchain-scenario","version":9}', "version 9"),
        ('{"format":"swiftchain-scenario","version":1,"seed":"7"}', "seed"),
        ("[1, 2]", "JSON object"),
    ],
)
def test_bad_header_names_line_1(tmp_path: Path, first: str, words: str) -> None:
    path = tmp_path / "h.ndjson"
    path.write_text(first + ("\n" if first else ""), encoding="utf-8")
    with pytest.raises(ScenarioError) as caught:
        read_scenario(path)
    assert caught.value.line == 1 and words in str(caught.value)


def test_missing_file_is_a_scenario_error(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="cannot open"):
        read_scenario(tmp_path / "nope.ndjson")


def test_personal_record_needs_its_consent() -> None:
    with pytest.raises(ValidationError, match="both set"):
        RecordEvent.model_validate(
            {
                "t": "2026-05-04T00:00:00Z",
                "kind": "record",
                "pilot": "chronic-care",
                "source": "home-bp-gw-01",
                "type": "fhir.Observation",
                "patient": "HOSP-A-000123",
                "consent": None,
                "payload": {"resourceType": "Observation"},
            }
        )


@pytest.mark.parametrize(
    ("bad", "words"),
    [
        (b"\xff\xfe{}", "not UTF-8"),
        (b"null", "JSON object"),
        (b'{"t":"yesterday","kind":"record"}', "t"),
        (b"[" * 10 + b"]" * 10, "JSON object"),
    ],
)
def test_garbage_lines_are_scenario_errors(
    tmp_path: Path, small: Scenario, bad: bytes, words: str
) -> None:
    lines = [line.encode() for line in _lines(small)]
    lines[2] = bad
    path = tmp_path / "g.ndjson"
    path.write_bytes(b"\n".join(lines) + b"\n")
    err = _error(path)
    assert err.line == 3 and words in err.detail
