# ruff: noqa: E501  (the decision table is kept one record per line, to be read as a table)
"""Who may write about a patient: source x its organisation x the Consent it names ->
accept/refuse and why. A record about a person is accepted only from a source of the
Consent's custodian, or a source the Consent names (``Device/<source>`` in the root
provision's actors)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fhir.resources.R4B.consent import Consent

from pilots import ConsentError, decide_writer, make_consent
from pilots.ingest import named_sources

PEOPLES = "harbour-peoples-hospital"
UNIVERSITY = "harbour-university-hospital"


def _consent(**kw: object) -> Consent:
    return make_consent(
        consent_id="c-001",
        subject="p-001",
        recorded_at=datetime(2025, 1, 1, tzinfo=UTC),
        actors=[PEOPLES, UNIVERSITY],
        **kw,  # type: ignore[arg-type]
    )


CONSENTS = {
    "plain": _consent(),
    "names-vitalink": _consent(sources=["vitalink-bp-01"]),
}

# fmt: off
TABLE = [
    # consent,          custodian,  source,            source org,  allowed, reason
    ("plain",           PEOPLES,    "home-bp-gw-01",   PEOPLES,     True,  "source_of_custodian"),
    ("plain",           PEOPLES,    "home-bp-gw-02",   UNIVERSITY,  False, "source_not_permitted"),
    ("plain",           PEOPLES,    "vitalink-bp-01",  "vitalink",  False, "source_not_permitted"),
    ("names-vitalink",  PEOPLES,    "vitalink-bp-01",  "vitalink",  True,  "source_named_by_consent"),
    ("names-vitalink",  PEOPLES,    "vitalink-bp-02",  "vitalink",  False, "source_not_permitted"),
    ("names-vitalink",  PEOPLES,    "home-bp-gw-02",   UNIVERSITY,  False, "source_not_permitted"),
    ("names-vitalink",  UNIVERSITY, "home-bp-gw-02",   UNIVERSITY,  True,  "source_of_custodian"),
    # custodian unknown (an old ledger): only named sources
    ("plain",           None,       "home-bp-gw-01",   PEOPLES,     False, "source_not_permitted"),
    ("names-vitalink",  None,       "vitalink-bp-01",  "vitalink",  True,  "source_named_by_consent"),
]
# fmt: on


@pytest.mark.parametrize(
    ("consent", "custodian", "source", "source_org", "allowed", "reason"),
    TABLE,
    ids=[f"{r[0]}|{r[1]}|{r[2]}" for r in TABLE],
)
def test_writer_decision(
    consent: str,
    custodian: str | None,
    source: str,
    source_org: str,
    allowed: bool,
    reason: str,
) -> None:
    decision = decide_writer(
        CONSENTS[consent], custodian=custodian, source=source, source_org=source_org
    )
    assert (decision.allowed, decision.reason) == (allowed, reason), decision.detail
    assert decision.detail


def test_named_sources_are_root_device_actors() -> None:
    assert named_sources(CONSENTS["names-vitalink"]) == {"vitalink-bp-01"}
    assert named_sources(CONSENTS["plain"]) == frozenset()
    document = CONSENTS["plain"].model_dump(mode="json")
    document["provision"]["provision"] = [
        {"type": "deny", "actor": [{"role": {"text": "x"}, "reference": {"reference": "Device/x"}}]}
    ]
    document["provision"]["actor"].append(
        {
            "role": {"text": "source"},
            "reference": {"reference": "https://hub.example/fhir/Device/y"},
        }
    )
    assert named_sources(Consent.model_validate(document)) == {"y"}


def test_sources_need_recipients() -> None:
    with pytest.raises(ConsentError, match="recipients"):
        make_consent(
            consent_id="c-1",
            subject="p-001",
            recorded_at=datetime(2025, 1, 1, tzinfo=UTC),
            sources=["vitalink-bp-01"],
        )
