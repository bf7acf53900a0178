"""A hospital's private key leaks, and the operator cuts the client off. Over real HTTP, a
real broker and real SQLite files: the hospital searches; an attacker process holding the
same key gets a token of its own and searches too; the operator runs `swiftchain clients
revoke` against the running hub's admin API; both tokens fail on their very next request,
the leaked key gets no new token and cannot be registered again, the log shows who revoked
the client, when and why, and the hospital, registered again with a new key, reads again.

Also: a revocation made with no hub running is in force when the hub starts again, even
for a token issued before; a revocation on the log that never reached the access file (a
crash between the two) is too; the ledger verifies throughout."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from joserfc.jwk import ECKey

from gateway.access.db import AccessDb
from gateway.access.revocation import ClientRevoke, plan_revocation
from ledger.entries import ClientEntry
from ledger.envelope import utc_now
from ledger.store import LedgerWriter, NewEntry
from ledger.verify import verify_ledger
from tests.support.access import HOSPITAL, Device, HospitalClient, consent_document
from tests.support.broker import Mosquitto
from tests.support.hub import ADMIN_TOKEN, SWIFTCHAIN, ThreadHub, _handle

SUBJECT = "pt-leak00001"
SEARCH = f"/fhir/Observation?subject=Patient/{SUBJECT}"
REASON = "private key leaked (incident 7)"

#: What the attacker runs: an assertion signed with the stolen key, for a token of its own.
ATTACKER = """
import json, sys, time, uuid, urllib.error, urllib.parse, urllib.request
from joserfc import jwt
from joserfc.jwk import ECKey
key_file, client_id, token_url = sys.argv[1:4]
stolen = json.loads(open(key_file).read())
now = int(time.time())
claims = {"iss": client_id, "sub": client_id, "aud": token_url, "iat": now,
          "exp": now + 60, "jti": uuid.uuid4().hex}
assertion = jwt.encode({"alg": "ES384", "kid": stolen["kid"], "typ": "JWT"}, claims,
                       ECKey.import_key(stolen), algorithms=["ES384"])
form = urllib.parse.urlencode({
    "grant_type": "client_credentials",
    "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
    "client_assertion": assertion, "scope": "system/Observation.rs"}).encode()
req = urllib.request.Request(token_url, data=form,
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
try:
    with urllib.request.urlopen(req, timeout=30) as resp:
        print(json.dumps({"status": resp.status, "body": json.loads(resp.read())}))
except urllib.error.HTTPError as exc:
    print(json.dumps({"status": exc.code, "body": json.loads(exc.read())}))
"""


def swiftchain(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SWIFTCHAIN, *args], capture_output=True, text=True, timeout=60)


def steal(hospital: HospitalClient, where: Path) -> Path:
    """The hospital's private key, as it leaked: a JWK file."""
    where.write_text(json.dumps({**hospital.key.as_dict(private=True), "kid": hospital.kid}))
    return where


def attacker_token_request(stolen: Path, hospital: HospitalClient) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", ATTACKER, str(stolen), hospital.client_id, hospital.token_url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


def diagnostics(outcome: dict[str, Any]) -> str:
    return str(outcome["issue"][0]["diagnostics"])


def client_entries(hub: ThreadHub) -> list[dict[str, Any]]:
    page = hub.get_json("/api/v1/ledger/entries?start=0&end=1000")
    return [
        json.loads(base64.b64decode(e["leaf"])) for e in page["entries"] if e["kind"] == "client"
    ]


def test_a_leaked_key_is_cut_off_and_the_hospital_comes_back_with_a_new_one(
    access_hub: ThreadHub, hospital: HospitalClient, tmp_path: Path
) -> None:
    device = Device(access_hub)
    token = hospital.token()
    consent = consent_document("c-leak-1", SUBJECT, sources=[device.source])
    assert hospital.call("POST", "/fhir/Consent", token, body=consent)[0] == 201
    (receipt,) = asyncio.run(device.publish(SUBJECT, "c-leak-1"))
    assert receipt["status"] == "accepted", receipt
    status, _, bundle = hospital.call("GET", SEARCH, token)
    assert status == 200 and bundle["total"] == 1, bundle

    # The key leaks: another process signs with it and gets a token of its own.
    stolen = steal(hospital, tmp_path / "stolen.jwk")
    got = attacker_token_request(stolen, hospital)
    assert got["status"] == 200, got
    attacker_token = got["body"]["access_token"]
    assert hospital.call("GET", SEARCH, attacker_token)[0] == 200

    # The operator revokes the client through the running hub's admin API.
    revoked = swiftchain(
        "clients",
        "revoke",
        hospital.client_id,
        "--reason",
        REASON,
        "--url",
        access_hub.http_url,
        "--token",
        ADMIN_TOKEN,
    )
    assert revoked.returncode == 0, revoked.stderr
    assert f"client.revoke {hospital.client_id} ({HOSPITAL} in chronic-care)" in revoked.stdout

    # Both tokens fail on their very next request, whatever the route.
    for bearer in (token, attacker_token):
        status, _, outcome = hospital.call("GET", SEARCH, bearer)
        assert status == 401, outcome
        assert diagnostics(outcome).startswith(f"client revoked: {hospital.client_id} at ")
        assert REASON in diagnostics(outcome)
        status, _, body = hospital.call("GET", f"/api/v1/audit?subject={SUBJECT}", bearer)
        assert (status, body["error"]) == (401, "invalid_token"), body
        assert "client revoked" in body["detail"]
    # A new assertion signed with the leaked key is refused.
    again = attacker_token_request(stolen, hospital)
    assert again["status"] == 401 and again["body"]["error"] == "invalid_client", again
    assert again["body"]["error_description"].startswith(f"client revoked: {hospital.client_id}")

    # The log says who revoked which client, when and why; the listing shows it.
    (entry,) = client_entries(access_hub)
    assert entry["action"] == "client.revoke" and entry["client"] == hospital.client_id
    assert entry["actor"].startswith("admin-api/cli:") and entry["reason"] == REASON
    assert entry["keys"] == [hospital.key.thumbprint()] and entry["at"].endswith("Z")
    listed = swiftchain("clients", "list", "--url", access_hub.http_url, "--token", ADMIN_TOKEN)
    assert listed.returncode == 0, listed.stderr
    assert f"revoked at {entry['at']} by {entry['actor']}" in listed.stdout
    assert REASON in listed.stdout
    status, answer = access_hub.request("GET", "/api/v1/admin/clients")
    (row,) = answer["clients"]
    assert row["state"] == "revoked" and row["revoked"]["reason"] == REASON

    # Revoking again says so; the leaked key cannot come back under any client id.
    body = {"client_id": hospital.client_id, "reason": "again"}
    status, answer = access_hub.request("POST", "/api/v1/admin/clients/revoke", body)
    assert (status, answer["error"]) == (409, "client_revoked"), answer
    for client_id in (hospital.client_id, "php-ehr-spare"):
        reuse = HospitalClient(access_hub, client_id, HOSPITAL, key=hospital.key, kid="k2")
        status, answer = access_hub.request(
            "POST",
            "/api/v1/admin/clients",
            {
                "client_id": client_id,
                "org": HOSPITAL,
                "pilot": "chronic-care",
                "jwks": reuse.jwks(),
                "scopes": ["system/*.rs"],
            },
        )
        assert (status, answer["error"]) == (409, "key_revoked"), answer

    # Registered again with a new key, the hospital reads again; the attacker does not.
    hospital.key = ECKey.generate_key("P-384", private=True)
    hospital.register()
    status, _, bundle = hospital.call("GET", SEARCH, hospital.token())
    assert status == 200 and bundle["total"] == 1, bundle
    assert attacker_token_request(stolen, hospital)["status"] == 401
    status, answer = access_hub.request("GET", "/api/v1/admin/clients")
    assert [r["state"] for r in answer["clients"]] == ["active"]

    access_hub.stop()
    checked = swiftchain("ledger", "verify", str(access_hub.db_path))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert verify_ledger(access_hub.db_path).client_revocations == 1


def test_a_revocation_made_offline_holds_when_the_hub_starts_again(
    tmp_path: Path, hub_broker: Mosquitto
) -> None:
    hub: ThreadHub = _handle(ThreadHub, tmp_path / "hub", hub_broker.url, batch_max_ms=2)
    hub.start()
    try:
        hospital = HospitalClient(hub, "php-ehr", HOSPITAL).register()
        token = hospital.token()
        assert hospital.call("GET", SEARCH, token)[0] == 403  # no Consent: a logged deny
        config = str(hub.config_path)
        busy = swiftchain("clients", "revoke", "php-ehr", "--reason", REASON, "--config", config)
        assert busy.returncode == 1
        assert "HubRunningError" in busy.stderr and "--url" in busy.stderr
    finally:
        hub.stop()

    done = swiftchain("clients", "revoke", "php-ehr", "--reason", REASON, "--config", config)
    assert done.returncode == 0, done.stderr
    assert "by cli:" in done.stdout
    listed = swiftchain("clients", "list", "--config", config, "--json")
    (row,) = json.loads(listed.stdout)["clients"]
    assert row["state"] == "revoked" and row["revoked"]["by"].startswith("cli:")
    missing = swiftchain("clients", "revoke", "nobody", "--reason", "x", "--config", config)
    assert missing.returncode == 1 and "no registered client 'nobody'" in missing.stderr

    hub.start()
    try:
        status, _, outcome = hospital.call("GET", SEARCH, token)
        assert status == 401 and "client revoked" in diagnostics(outcome), outcome
        status, answer = hospital.token_request()
        assert status == 401 and answer["error_description"].startswith("client revoked")
    finally:
        hub.stop()
    assert verify_ledger(hub.db_path).ok


def test_a_revocation_on_the_log_is_in_force_though_the_access_file_missed_it(
    tmp_path: Path, hub_broker: Mosquitto
) -> None:
    hub: ThreadHub = _handle(ThreadHub, tmp_path / "hub", hub_broker.url, batch_max_ms=2)
    hub.start()
    try:
        hospital = HospitalClient(hub, "php-ehr", HOSPITAL).register()
        token = hospital.token()
    finally:
        hub.stop()
    # A revocation committed to the log, then a crash before the access file recorded it.
    access = AccessDb(hub.db_path.with_name(hub.db_path.name + ".access"))
    change = ClientRevoke(client_id="php-ehr", reason=REASON)
    entry = plan_revocation(access.client_row("php-ehr"), change, "cli:test", utc_now())
    access.close()
    writer = LedgerWriter(hub.db_path, origin="test.swiftchain/ledger")
    try:
        writer.append([NewEntry("client", entry.leaf())])
    finally:
        writer.close()

    hub.start()
    try:
        status, _, outcome = hospital.call("GET", SEARCH, token)
        assert status == 401 and "client revoked" in diagnostics(outcome), outcome
        status, answer = hub.request("GET", "/api/v1/admin/clients")
        assert answer["clients"][0]["state"] == "revoked"
    finally:
        hub.stop()


def test_the_verifier_faults_a_client_entry_that_says_too_little(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    good = ClientEntry(
        action="client.revoke",
        at=utc_now(),
        actor="cli:test",
        client="php-ehr",
        org=HOSPITAL,
        pilot="chronic-care",
        registration="0" * 32,
        keys=("A" * 43,),
        reason=REASON,
    )
    bare = json.dumps({"kind": "client", "action": "client.revoke", "client": "php-ehr"})
    writer = LedgerWriter(path, origin="test.swiftchain/ledger")
    try:
        writer.append([NewEntry("client", good.leaf()), NewEntry("client", bare.encode())])
    finally:
        writer.close()
    report = verify_ledger(path)
    assert report.client_revocations == 1
    assert [(p.index, p.what.split(":")[0]) for p in report.problems] == [
        (1, "client entry is malformed")
    ]
