"""Search result parameters and ``Prefer: handling`` (FHIR R4B 3.1.1.4, 3.1.1.5) as pure
functions: what is applied, what is ignored under lenient handling, what strict refuses;
the Bundle they make (links of the applied parameters, the outcome entry, SUBSETTED
resources); what a client may Accept; and the required bindings of a Consent."""

from __future__ import annotations

import json

import pytest
from fhir.resources.R4B.bundle import Bundle, BundleLink
from hypothesis import given
from hypothesis import strategies as st
from multidict import MultiDict
from yarl import URL

from gateway.fhir.bindings import binding_violations
from gateway.fhir.bundle import Match, bundle_shell, searchset, subset
from gateway.fhir.consent_search import parse_consent_search
from gateway.fhir.negotiation import accepts_json, format_is_json
from gateway.fhir.params import parse_search
from gateway.fhir.results import BadSearch, prefers_strict
from pilots import parse_consent
from tests.support.access import consent_document

PATIENT = ("subject", "Patient/pt-00000001")


def q(*pairs: tuple[str, str]) -> MultiDict[str]:
    return MultiDict([PATIENT, *pairs])


def test_count_zero_and_summary_count_ask_for_the_total_only() -> None:
    for query in (q(("_count", "0")), q(("_summary", "count"))):
        results = parse_search(query).results
        assert results.count == 0 and results.total
    assert parse_search(q(("_count", "0"), ("_total", "none"))).results.total


def test_supported_result_parameters_are_applied() -> None:
    s = parse_search(
        q(("_sort", "-date"), ("_total", "none"), ("_elements", "valueQuantity,effective"))
    )
    assert s.results.descending and not s.results.total
    assert s.results.elements == frozenset({"valueQuantity", "effective"})
    assert s.ignored == ()
    assert s.applied == (
        PATIENT,
        ("_sort", "-date"),
        ("_total", "none"),
        ("_elements", "valueQuantity,effective"),
    )
    assert not parse_search(q(("_sort", "date"), ("_summary", "false"))).results.descending


UNSUPPORTED = [
    ("_totalMethod", "count"),
    ("_pretty", "true"),
    ("_summary", "text"),
    ("_sort", "_lastUpdated"),
    ("_total", "sometimes"),
    ("_elements", "subject.reference"),
    ("_elements", "-text"),
    ("code:text", "pressure"),
    ("_include", "Observation:subject"),
]


@pytest.mark.parametrize(("name", "value"), UNSUPPORTED)
def test_lenient_ignores_and_names_what_it_does_not_support(name: str, value: str) -> None:
    s = parse_search(q((name, value)))
    assert [(i.name, i.value) for i in s.ignored] == [(name, value)]
    assert (name, value) not in s.applied


@pytest.mark.parametrize(("name", "value"), UNSUPPORTED)
def test_strict_refuses_what_it_does_not_support(name: str, value: str) -> None:
    with pytest.raises(BadSearch) as err:
        parse_search(q((name, value)), strict=True)
    assert err.value.code == "unsupported_parameter"


def test_bad_values_of_supported_parameters_are_a_400_either_way() -> None:
    for query in (q(("_count", "x")), q(("_count", "101")), q(("_offset", "-1"))):
        for strict in (False, True):
            with pytest.raises(BadSearch):
                parse_search(query, strict=strict)


@pytest.mark.parametrize(
    ("prefer", "strict"),
    [
        (None, False),
        ("handling=strict", True),
        ("return=minimal, handling=strict", True),
        ('handling="strict"', True),
        ("HANDLING=Strict; foo=bar", True),
        ("handling=lenient", False),
        ("handling=whatever", False),
        ("respond-async", False),
    ],
)
def test_prefer_handling(prefer: str | None, strict: bool) -> None:
    assert prefers_strict(prefer) is strict


def test_consent_search_takes_patient_and_status_and_sorts_by_nothing() -> None:
    found = parse_consent_search(
        MultiDict([("patient", "Patient/pt-00000001"), ("status", "active,inactive")])
    )
    assert found.subject == "pt-00000001" and found.statuses == {"active", "inactive"}
    with pytest.raises(BadSearch):
        parse_consent_search(MultiDict([("patient", "Patient/pt-00000001"), ("status", "x")]))
    with pytest.raises(BadSearch):
        parse_consent_search(MultiDict([("subject", "Patient/pt-00000001")]))
    lenient = parse_consent_search(
        MultiDict([("patient", "Patient/pt-00000001"), ("_sort", "date")])
    )
    assert [i.name for i in lenient.taken.ignored] == ["_sort"]


@given(
    total=st.none() | st.integers(min_value=0, max_value=10**6),
    queries=st.lists(
        st.lists(st.tuples(st.text(min_size=1, max_size=12), st.text(max_size=40)), max_size=4),
        min_size=1,
        max_size=2,
    ),
)
def test_the_bundle_shell_is_the_bytes_of_the_fhir_model(
    total: int | None, queries: list[list[tuple[str, str]]]
) -> None:
    this = URL("http://hub.example:8080/fhir/Observation")
    links = [
        (relation, str(this.with_query(query)))
        for relation, query in zip(("self", "next"), queries, strict=False)
    ]
    model = Bundle(
        type="searchset",
        total=total,
        link=[BundleLink(relation=relation, url=url) for relation, url in links],
    )
    assert bundle_shell(total, links) == model.model_dump_json().encode()


def test_the_bundle_links_what_was_applied_and_says_what_was_not() -> None:
    s = parse_search(q(("_count", "1"), ("_pretty", "true")))
    page = [Match("http://h/fhir/Observation/a", b'{"resourceType":"Observation","id":"a"}')]
    bundle = json.loads(
        searchset(
            base="http://h",
            path="/fhir/Observation",
            applied=s.applied,
            results=s.results,
            page=page,
            total=2,
            ignored=s.ignored,
        )
    )
    links = {link["relation"]: link["url"] for link in bundle["link"]}
    assert links["self"] == "http://h/fhir/Observation?subject=Patient/pt-00000001&_count=1"
    assert links["next"] == links["self"] + "&_offset=1"
    match, outcome = bundle["entry"]
    assert match["search"] == {"mode": "match"} and bundle["total"] == 2
    assert outcome["search"] == {"mode": "outcome"}
    issue = outcome["resource"]["issue"][0]
    assert outcome["resource"]["resourceType"] == "OperationOutcome"
    assert issue["code"] == "not-supported" and "_pretty" in issue["diagnostics"]


def test_elements_keep_what_was_asked_what_is_mandatory_and_tag_subsetted() -> None:
    observation = {
        "resourceType": "Observation",
        "id": "a",
        "meta": {"source": "x"},
        "status": "final",
        "code": {"text": "bp"},
        "subject": {"reference": "Patient/p"},
        "effectiveDateTime": "2026-01-01T00:00:00Z",
        "_effectiveDateTime": {"id": "e"},
        "valueQuantity": {"value": 120},
    }
    for asked in ("effective", "effectiveDateTime"):
        kept = json.loads(subset(json.dumps(observation).encode(), frozenset({asked})))
        assert set(kept) == {
            "resourceType",
            "id",
            "meta",
            "status",
            "code",
            "effectiveDateTime",
            "_effectiveDateTime",
        }
        assert kept["meta"]["source"] == "x"
        assert kept["meta"]["tag"][-1]["code"] == "SUBSETTED"


@pytest.mark.parametrize(
    ("accept", "ok"),
    [
        (None, True),
        ("application/fhir+json", True),
        ("application/fhir+json; fhirVersion=4.3", True),
        ("application/json", True),
        ("*/*", True),
        ("application/fhir+xml, application/fhir+json;q=0.1", True),
        ("application/fhir+xml", False),
        ("application/xml, text/html", False),
        ("application/fhir+json;q=0", False),
    ],
)
def test_accept(accept: str | None, ok: bool) -> None:
    assert accepts_json(accept) is ok


def test_format() -> None:
    assert format_is_json("json") and format_is_json("application/fhir+json;fhirVersion=4.3")
    assert not format_is_json("xml") and not format_is_json("application/fhir+xml")


def test_required_bindings_of_a_consent() -> None:
    good = consent_document("c-1", "pt-00000001")
    assert binding_violations(parse_consent(good), "Consent") == []
    bad = consent_document("c-1", "pt-00000001")
    bad["status"] = "not-a-status"
    bad["provision"]["type"] = "maybe"
    bad["provision"]["provision"] = [{"type": "deny"}, {"type": "nah"}]
    found = {v.path: v.value for v in binding_violations(parse_consent(bad), "Consent")}
    assert found == {
        "Consent.status": "not-a-status",
        "Consent.provision.type": "maybe",
        "Consent.provision.provision[1].type": "nah",
    }
