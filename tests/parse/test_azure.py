"""Entra ID sign-in / audit logs and Azure activity logs, on the real samples.

Counts (asserted below, each computed from the vendor JSON, not from the parser):

* ``panther_tests/Azure.Audit.jsonl``: 48 of 48 parse: 27 sign-ins (category SignInLogs,
  NonInteractiveUserSignInLogs, ServicePrincipalSignInLogs) and 21 audit records.
* ``panther_tests/Azure.MonitorActivity.jsonl``: 216 of 249 parse; the other 33 have no time
  (neither ``time`` nor ``p_event_time``) and are dead letters naming the time fields.
* ``msticpy_testdata/aad_logons.from_pkl.jsonl`` (real Log Analytics SigninLogs rows): 86 of 86.
* ``otrf_goldensaml_azure_m365/AADAuditEvents.json`` (real LA AuditLogs rows): 4 of 4.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from access_audit.core.events import AccessEvent, Outcome
from access_audit.core.records import DeadLetter, RawRecord
from access_audit.parse import ParserRegistry

SIGNIN_CATEGORIES = {"SignInLogs", "NonInteractiveUserSignInLogs", "ServicePrincipalSignInLogs"}


def jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def parse_all(registry: ParserRegistry, records: list[dict[str, Any]], log_type: str | None = None
              ) -> list[AccessEvent | DeadLetter]:
    out: list[AccessEvent | DeadLetter] = []
    for i, rec in enumerate(records):
        res = registry.parse(RawRecord(data=orjson.dumps(rec), origin=f"t:{i}", source="t", log_type=log_type))
        out.extend(res.events or res.dead_letters)
    return out


def category(rec: dict[str, Any]) -> Any:
    return next((v for k, v in rec.items() if k.lower() == "category"), None)


def test_panther_entra_records_split_into_sign_ins_and_audit(registry, panther):
    rows = [r["event"] for r in panther("Azure.Audit")]
    want_signin = sum(category(r) in SIGNIN_CATEGORIES for r in rows)
    assert (len(rows), want_signin) == (48, 27)
    got = parse_all(registry, rows)
    assert all(isinstance(e, AccessEvent) for e in got)
    datasets = [e.event.dataset for e in got]
    assert datasets.count("azure.signinlogs") == want_signin
    assert datasets.count("azure.auditlogs") == len(rows) - want_signin
    # typed by log type, each record gives the same event, or (other kind) a dead letter saying so
    for rec, auto in zip(rows, got, strict=True):
        typed = parse_all(registry, [rec], auto.event.dataset)[0]
        assert isinstance(typed, AccessEvent) and typed.id == auto.id
        other = "azure.auditlogs" if auto.event.dataset == "azure.signinlogs" else "azure.signinlogs"
        wrong = parse_all(registry, [rec], other)[0]
        assert isinstance(wrong, DeadLetter) and "wrong log type" in wrong.reason and "category=" in wrong.reason


def test_panther_wrapper_is_accepted_and_sigma_sees_the_vendor_record(registry, panther):
    row = panther("Azure.Audit")[0]
    wrapped = parse_all(registry, [row])[0]
    plain = parse_all(registry, [row["event"]])[0]
    assert isinstance(wrapped, AccessEvent) and wrapped.event.dataset == plain.event.dataset
    assert wrapped.event.action == plain.event.action and wrapped.user == plain.user
    assert wrapped.raw_obj.get("operationName") == row["event"]["operationName"]


def test_panther_activity_logs(registry, panther):
    rows = [r["event"] for r in panther("Azure.MonitorActivity")]
    timed = [r for r in rows if any(k.lower() in ("time", "p_event_time") for k in r)]
    assert (len(rows), len(timed)) == (249, 216)
    got = parse_all(registry, rows, "azure.activitylogs")
    events = [e for e in got if isinstance(e, AccessEvent)]
    dead = [e for e in got if isinstance(e, DeadLetter)]
    assert len(events) == len(timed) and len(dead) == len(rows) - len(timed)
    assert all("missing timestamp" in d.reason and "TimeGenerated" in d.reason for d in dead)
    auto = parse_all(registry, rows)
    assert [e.id for e in auto if isinstance(e, AccessEvent)] == [e.id for e in events]


def test_activity_log_mapping(registry, panther):
    rows = [r["event"] for r in panther("Azure.MonitorActivity")]
    (ev,) = [e for e in parse_all(registry, rows[:1])]
    assert ev.event.action == "Microsoft.Insights/actionGroups/delete"
    assert ev.event.type == ["deletion"] and ev.event.outcome is Outcome.success
    assert ev.event.provider == "Microsoft.Insights"
    assert ev.resource.type == "microsoft.insights/actiongroups" and ev.resource.name == "securityteam"
    assert ev.cloud.account == {"id": "12345678-1234-1234-1234-123456789abc"} and ev.cloud.region == "eastus"
    blob = next(r for r in rows if r.get("operationName") == "GetBlob" and r.get("callerIpAddress") == "8.8.8.8:44321")
    ev = parse_all(registry, [blob])[0]
    assert ev.event.category == ["file"] and ev.event.type == ["access"]
    assert ev.resource.type == "blob" and ev.resource.name.endswith("report_2025.xlsx")
    assert (ev.source.ip, ev.source.port) == ("8.8.8.8", 44321)
    rest = next(r for r in rows if isinstance(r.get("operationName"), dict))  # REST API {"value", ...}
    ev = parse_all(registry, [rest])[0]
    assert ev.event.action == "Microsoft.Authorization/elevateAccess/action"
    assert ev.user.name == "attacker@example.com"  # from the identity claims


def test_msticpy_sign_ins_all_parse(registry, datasets):
    rows = jsonl(datasets / "msticpy_testdata" / "aad_logons.from_pkl.jsonl")
    got = parse_all(registry, rows)
    assert len(rows) == 86 and all(isinstance(e, AccessEvent) for e in got)
    assert {e.event.dataset for e in got} == {"azure.signinlogs"}
    failed = sum(str(r["ResultType"]) != "0" for r in rows)
    assert failed == 2 and sum(e.event.outcome is Outcome.failure for e in got) == failed
    ev = got[0]
    assert ev.user.name == "ctfuser3@seccxp.ninja" and ev.user.full_name == "CTFUser3"
    assert ev.source.ip == "24.13.212.221"
    assert ev.source.geo.country_iso_code == "US" and ev.source.geo.city_name == "Park Ridge"
    assert ev.resource.name == "Windows Azure Service Management API" and ev.resource.type == "application"
    assert ev.authentication.mfa is False and ev.labels["azure_auth_requirement"] == "singleFactorAuthentication"
    assert ev.labels["azure_app_name"] == "Azure Portal" and ev.user_agent.original.startswith("Mozilla/5.0")
    countries = {e.source.geo.country_iso_code for e in got}
    assert countries == {r["LocationDetails"]["countryOrRegion"] for r in rows} == {"BE", "US"}


def test_otrf_audit_rows_all_parse(registry, datasets):
    rows = jsonl(datasets / "otrf_goldensaml_azure_m365" / "AADAuditEvents.json")
    got = parse_all(registry, rows)
    assert len(rows) == 4 and all(isinstance(e, AccessEvent) for e in got)
    assert {e.event.dataset for e in got} == {"azure.auditlogs"}
    # two rows have their Type column overwritten (Application, ServicePrincipal): still audit rows
    assert sorted(r["Type"] for r in rows) == ["Application", "AuditLogs", "AuditLogs", "ServicePrincipal"]
    ev = got[0]
    assert ev.event.action == "Update application – Certificates and secrets management"  # trimmed
    assert ev.user.name == "pgustavo@simulandlabs.com" and ev.event.provider == "Core Directory"
    assert ev.resource.type == "application" and ev.resource.name == "SimuLandApp"  # JSON-string column
    grant = next(e for e in got if e.event.action == "Add delegated permission grant")
    assert grant.resource.type == "service_principal" and grant.resource.name == "Microsoft Graph"


SIGNIN = {"time": "2026-11-20T08:00:00Z", "resourceId": "/tenants/t/providers/Microsoft.aadiam",
          "operationName": "Sign-in activity", "category": "SignInLogs", "resultType": "0",
          "properties": {"userPrincipalName": "ann@example.org", "ipAddress": "145.100.10.2",
                         "location": {"countryOrRegion": "NL", "geoCoordinates": {"latitude": 52.1, "longitude": 4.3}}}}


@pytest.mark.parametrize(("record", "reason"), [
    ({**SIGNIN, "time": "yesterday"}, "time="),
    ({k: v for k, v in SIGNIN.items() if k != "time"}, "missing timestamp"),
    ({**SIGNIN, "properties": {**SIGNIN["properties"], "userPrincipalName": 7}}, "properties.userPrincipalName is int"),
    ({**SIGNIN, "properties": {**SIGNIN["properties"], "location": "NL"}}, "properties.location is str"),
    ({**SIGNIN, "properties": {**SIGNIN["properties"], "ipAddress": ["1.2.3.4"]}}, "properties.ipAddress is list"),
    ({**SIGNIN, "properties": {**SIGNIN["properties"], "location": {"geoCoordinates": {"latitude": "n",
                                                                                        "longitude": 1}}}},
     "geoCoordinates.latitude is str"),
])
def test_broken_sign_ins_are_dead_letters_naming_the_field(parse_one, record, reason):
    dl = parse_one(record, "azure.signinlogs")
    assert isinstance(dl, DeadLetter) and reason in dl.reason
    auto = parse_one(record)
    assert isinstance(auto, DeadLetter) and reason in auto.reason


def test_minimal_sign_in(parse_one):
    ev = parse_one(SIGNIN)
    assert ev.event.dataset == "azure.signinlogs" and ev.event.outcome is Outcome.success
    assert ev.source.geo.country_iso_code == "NL" and ev.labels["azure_status"] == "Success"
    failed = parse_one({**SIGNIN, "resultType": "50126", "resultDescription": "Invalid username or password"})
    assert failed.event.outcome is Outcome.failure and failed.event.reason == "Invalid username or password"


def test_audit_without_activity_is_a_dead_letter(parse_one):
    rec = {"TimeGenerated": "2026-11-20T08:00:00Z", "Type": "AuditLogs", "Category": "UserManagement",
           "InitiatedBy": "{}", "LoggedByService": "Core Directory"}
    dl = parse_one(rec, "azure.auditlogs")
    assert isinstance(dl, DeadLetter) and "activityDisplayName" in dl.reason
    dl = parse_one({**rec, "ActivityDisplayName": "Add user", "TargetResources": "[not json"}, "azure.auditlogs")
    assert isinstance(dl, DeadLetter) and "targetresources is a string that is not valid json" in dl.reason.lower()


def test_risk_detection_documented_form(parse_one):
    # No real sample exists: the documented Graph riskDetection / UserRiskEvents shape.
    ev = parse_one({"time": "2026-11-20T08:00:00Z", "operationName": "User Risk Detection",
                    "category": "UserRiskEvents", "properties": {"riskEventType": "unfamiliarFeatures",
                                                                 "userPrincipalName": "ann@example.org",
                                                                 "riskLevel": "medium", "ipAddress": "192.0.2.1"}})
    assert ev.event.dataset == "azure.riskdetection" and ev.event.action == "unfamiliarFeatures"
    assert ev.user.name == "ann@example.org" and ev.labels["azure_risk_level"] == "medium"
