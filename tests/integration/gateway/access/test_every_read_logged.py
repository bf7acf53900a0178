"""Every read about a person is on the log, and a route added later cannot skip the gate.

The application's router is walked (a real ``create_app(settings)``, running): every route
must be in the one table of ``gateway/access/exposure.py``, and every row of the table a
route. Then every ``gated`` route is called over real HTTP with a valid token and must have
committed exactly one ``access`` entry (allowed or denied) by the time its answer arrives;
every ``admin`` route refuses a call without the admin token and logs nothing; every Consent
``change`` is a ``consent`` entry naming the caller. The Consent read and the audit view, which
used to leave no entry, are shown allowed and denied with the purpose each records."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.access.exposure import ROUTES, Exposure, exposure_of
from gateway.app import create_app
from gateway.settings import load_settings
from tests.support.access import HospitalClient, consent_document, http
from tests.support.hub import ThreadHub

SUBJECT = "pt-walk00001"
CONSENT = "c-walk-1"
#: A value for each path parameter of a route template.
PATH_VALUES = {"id": CONSENT, "name": "app.js"}
RESEARCHER = "urban-health-institute"


def routes_of(app: web.Application) -> set[tuple[str, str]]:
    """(method, path template) of every route, HEAD left out (it is its GET)."""
    return {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.method != "HEAD" and route.resource is not None
    }


def unclassified(app: web.Application) -> list[tuple[str, str]]:
    return sorted(r for r in routes_of(app) if exposure_of(*r) is None)


def concrete(path: str) -> str:
    for name, value in PATH_VALUES.items():
        path = path.replace("{" + name + "}", value)
    assert "{" not in path, f"give {path} a value in PATH_VALUES"
    return path


def log_size(hub: ThreadHub) -> int:
    size: int = hub.get_json("/api/v1/ledger/entries?start=0&end=0")["size"]
    return size


def entries_since(hub: ThreadHub, start: int) -> list[tuple[str, dict[str, Any]]]:
    """(kind, leaf with its opening's fields) of the entries from ``start`` on."""
    return [(e["kind"], e) for e in hub.opened_entries(start=start)]


def test_every_route_is_classified_and_every_row_is_a_route(access_hub: ThreadHub) -> None:
    served = routes_of(access_hub.app)
    assert unclassified(access_hub.app) == [], "classify these in gateway/access/exposure.py"
    assert sorted(set(ROUTES) - served) == [], "these rows of the exposure table name no route"


def test_a_route_added_without_a_row_is_caught(access_hub: ThreadHub) -> None:
    app = create_app(load_settings(access_hub.config_path))

    async def peek(request: web.Request) -> web.Response:
        return web.json_response({"subject": request.query.get("subject")})

    app.router.add_get("/api/v1/peek", peek)
    assert unclassified(app) == [("GET", "/api/v1/peek")]


def test_every_gated_route_commits_one_access_entry_before_it_answers(
    access_hub: ThreadHub, hospital: HospitalClient
) -> None:
    token = hospital.token("system/*.rs system/Consent.cru")
    document = consent_document(CONSENT, SUBJECT)
    assert hospital.call("POST", "/fhir/Consent", token, body=document)[0] == 201
    gated = sorted(r for r in routes_of(access_hub.app) if exposure_of(*r) is Exposure.GATED)
    assert len(gated) >= 6
    for method, template in gated:
        path = concrete(template)
        before = log_size(access_hub)
        if path.endswith("/_search"):
            # A search by POST is a form, as FHIR's http.html#search has it (empty: no subject).
            status, _, body = http(
                method,
                access_hub.http_url + path,
                body=b"",
                headers={
                    "Authorization": f"Bearer {token}",
                    "X-Purpose-Of-Use": "TREAT",
                    "Content-Type": "application/x-www-form-urlencoded",
                },
            )
        else:
            status, _, body = hospital.call(method, path, token)
        assert status < 500, (method, path, status, body)
        new = entries_since(access_hub, before)
        assert [kind for kind, _ in new] == ["access"], (method, path, status, new)
        (_, leaf) = new[0]
        assert leaf["client"] == hospital.client_id
        assert leaf["request"] == f"{method} {path}"
        assert leaf["decision"] == ("allow" if status == 200 else "deny"), (path, status, leaf)


def test_admin_routes_refuse_without_the_admin_token_and_log_nothing(
    access_hub: ThreadHub,
) -> None:
    admin = sorted(r for r in routes_of(access_hub.app) if exposure_of(*r) is Exposure.ADMIN)
    before = log_size(access_hub)
    for method, template in admin:
        status, _, body = http(method, access_hub.http_url + concrete(template), body=b"{}")
        assert status == 401, (method, template, status, body)
    assert log_size(access_hub) == before


def test_every_consent_change_is_a_consent_entry_of_its_caller(
    access_hub: ThreadHub, hospital: HospitalClient
) -> None:
    token = hospital.token()
    document = consent_document(CONSENT, SUBJECT)
    calls = {
        ("POST", "/fhir/Consent"): document,
        ("PUT", "/fhir/Consent/{id}"): document,
        ("POST", "/fhir/Consent/{id}/$withdraw"): None,
    }
    changes = {r for r in routes_of(access_hub.app) if exposure_of(*r) is Exposure.CHANGE}
    assert changes == set(calls), "give each Consent change a call here"
    for (method, template), body in calls.items():
        before = log_size(access_hub)
        status, _, answer = hospital.call(method, concrete(template), token, body=body)
        assert status in (200, 201), (method, template, answer)
        kind, leaf = entries_since(access_hub, before)[0]
        assert (kind, leaf["actor"], leaf["subject"]) == ("consent", hospital.client_id, SUBJECT)


def test_a_consent_read_is_logged_about_its_person_allowed_or_denied(
    access_hub: ThreadHub, hospital: HospitalClient, auditor: HospitalClient
) -> None:
    token = hospital.token()
    document = consent_document(CONSENT, SUBJECT)
    assert hospital.call("POST", "/fhir/Consent", token, body=document)[0] == 201
    researcher = HospitalClient(access_hub, "uhi-stats", RESEARCHER).register()

    readers = [
        (hospital, token, 200, "allow", "PATADMIN"),
        (auditor, auditor.token("system/*.rs"), 200, "allow", "HCOMPL"),
        (researcher, researcher.token(), 403, "deny", None),
    ]
    for reader, bearer, status, decision, purpose in readers:
        before = log_size(access_hub)
        got, _, body = reader.call("GET", f"/fhir/Consent/{CONSENT}", bearer, purpose=None)
        assert got == status, body
        ((kind, leaf),) = entries_since(access_hub, before)
        assert (kind, leaf["client"], leaf["decision"]) == ("access", reader.client_id, decision)
        assert (leaf["subject"], leaf["type"], leaf.get("purpose")) == (
            SUBJECT,
            "fhir.Consent",
            purpose,
        )
        if status == 200:
            assert body["id"] == CONSENT and leaf["count"] == 1
    # The person's audit view shows the three reads of their Consent.
    status, _, audit = auditor.call(
        "GET", f"/api/v1/audit?subject={SUBJECT}", auditor.token("system/*.rs")
    )
    assert status == 200, audit
    assert [(e["client"], e["type"]) for e in audit["entries"]] == [
        (hospital.client_id, "fhir.Consent"),
        (auditor.client_id, "fhir.Consent"),
        (researcher.client_id, "fhir.Consent"),
    ]


def test_the_audit_view_is_itself_logged_and_shows_in_the_next_view(
    access_hub: ThreadHub, hospital: HospitalClient, auditor: HospitalClient
) -> None:
    path = f"/api/v1/audit?subject={SUBJECT}"
    audit_token = auditor.token("system/*.rs")
    status, _, first = auditor.call("GET", path, audit_token, purpose=None)
    assert status == 200 and first["entries"] == [], first
    status, _, second = hospital.call("GET", path, hospital.token(), purpose=None)
    assert status == 200, second
    assert [(e["index"], e["client"], e["purpose"], e["decision"]) for e in second["entries"]] == [
        (first["access_index"], auditor.client_id, "HCOMPL", "allow")
    ]
    researcher = HospitalClient(access_hub, "uhi-stats", RESEARCHER).register()
    status, _, refused = researcher.call("GET", path, researcher.token(), purpose=None)
    assert (status, refused["error"]) == (403, "not_auditor"), refused
    status, _, third = auditor.call("GET", path, audit_token)
    assert [(e["client"], e["purpose"], e["decision"], e["reason"]) for e in third["entries"]] == [
        (auditor.client_id, "HCOMPL", "allow", "auditor"),
        (hospital.client_id, "PATRQT", "allow", "consent_admin"),
        (researcher.client_id, None, "deny", "not_auditor"),
    ]
