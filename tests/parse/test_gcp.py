"""Google Cloud audit logs and Google Workspace activities, on the real samples.

Counts (asserted): ``plaso_test_data/gcp_logging.jsonl`` 9 of 11 (lines 8-9 are not audit logs:
``logs/testlog``, no protoPayload; no parser claims them and typed as gcp.audit they are dead
letters naming protoPayload); ``google_cloudevents_gcp_audit``: 2 of 2; Panther
``GSuite.ActivityEvent``: 98 of 165 (65 fixtures have no ``id.time``: dead letters naming it; 2
carry only Panther ``p_*`` fields and are not recognised).
"""

from __future__ import annotations

import json

import pytest
from tests.parse.test_azure import jsonl, parse_all

from access_audit.core.events import AccessEvent, Outcome
from access_audit.core.records import DeadLetter


def test_plaso_gcp_audit(registry, datasets):
    rows = jsonl(datasets / "plaso_test_data" / "gcp_logging.jsonl")
    audit = [r for r in rows if "cloudaudit.googleapis.com" in r["logName"]]
    assert (len(rows), len(audit)) == (11, 9)
    got = parse_all(registry, rows, "gcp.audit")
    events = [e for e in got if isinstance(e, AccessEvent)]
    assert len(events) == len(audit)
    dead = [e for e in got if isinstance(e, DeadLetter)]
    assert len(dead) == 2 and all("protoPayload is absent" in d.reason for d in dead)
    auto = parse_all(registry, rows)
    assert [e.id for e in auto if isinstance(e, AccessEvent)] == [e.id for e in events]
    ev = events[0]
    assert ev.event.action == "beta.compute.networks.insert" and ev.event.type == ["creation"]
    assert ev.event.provider == "compute.googleapis.com" and ev.user.name == "fakeemailxyz@gmail.com"
    assert ev.source.ip == "1.1.1.1" and ev.resource.type == "gce_network"
    assert ev.resource.name == "projects/fake-project/global/networks/test"
    assert ev.cloud.account == {"id": "fake-project"}
    assert ev.labels["gcp_log_id"] == "cloudaudit.googleapis.com%2Factivity"
    iam = [e for e in events if e.event.provider == "iam.googleapis.com"]
    assert iam and all(e.event.category == ["iam"] for e in iam)


@pytest.mark.parametrize("name", ["LogEntryData-pubsubCreateTopic.json", "LogEntryData-bigqueryjobcompleted.json"])
def test_cloudevents_samples(registry, datasets, name):
    rec = json.loads((datasets / "google_cloudevents_gcp_audit" / name).read_text())
    (ev,) = parse_all(registry, [rec])
    assert ev.event.dataset == "gcp.audit" and ev.user.name == "robot@test-project.iam.gserviceaccount.com"
    assert ev.event.outcome is Outcome.success
    # the Eventarc CloudEvent that carries the same LogEntry under "data" parses the same
    (wrapped,) = parse_all(registry, [{"specversion": "1.0", "type": "google.cloud.audit.log.v1.written",
                                      "data": rec}])
    assert wrapped.event.action == ev.event.action and wrapped.user == ev.user


def test_gcp_broken_fields_are_dead_letters(parse_one, datasets):
    rec = json.loads((datasets / "google_cloudevents_gcp_audit" / "LogEntryData-pubsubCreateTopic.json").read_text())
    pp = rec["protoPayload"]
    for bad, reason in (({**rec, "protoPayload": {**pp, "methodName": None}}, "protoPayload.methodName is absent"),
                        ({**rec, "protoPayload": {**pp, "authorizationInfo": {"x": 1}}}, "authorizationInfo is dict"),
                        ({**rec, "timestamp": "noon"}, "timestamp="),
                        ({**rec, "protoPayload": {**pp, "requestMetadata": {"callerIp": 5}}}, "callerIp is int")):
        dl = parse_one(bad, "gcp.audit")
        assert isinstance(dl, DeadLetter) and reason in dl.reason, dl


def test_panther_workspace_activities(registry, panther):
    rows = [r["event"] for r in panther("GSuite.ActivityEvent")]
    has_app = [r for r in rows if isinstance(r.get("id"), dict) and "applicationName" in r["id"]]
    timed = [r for r in has_app if r["id"].get("time") or r.get("p_event_time")]
    assert (len(rows), len(has_app), len(timed)) == (165, 163, 98)
    got = parse_all(registry, rows, "gworkspace.activity")
    assert sum(isinstance(e, AccessEvent) for e in got) == len(timed)
    dead = [e for e in got if isinstance(e, DeadLetter)]
    assert len(dead) == len(rows) - len(timed)
    auto = parse_all(registry, rows)
    assert sum(isinstance(e, AccessEvent) and e.event.dataset == "gworkspace.activity" for e in auto) == len(timed)
    unrecognised = [e for e in auto if isinstance(e, DeadLetter) and "unrecognised" in e.reason]
    assert len(unrecognised) == len(rows) - len(has_app)


def test_workspace_admin_and_login(registry, panther):
    rows = [r["event"] for r in panther("GSuite.ActivityEvent")]
    ev = parse_all(registry, rows[:1])[0]
    assert ev.event.action == "DELETE_ROLE" and ev.event.category == ["iam"] and ev.event.type == ["deletion"]
    assert ev.labels["gworkspace_service"] == "admin.googleapis.com"
    assert ev.resource.type == "role" and ev.resource.name == "CustomAdminRoleName"
    logins = [e for e in parse_all(registry, rows) if isinstance(e, AccessEvent) and e.event.provider == "login"]
    assert logins and all(e.event.category == ["authentication"] for e in logins)


API = {"kind": "admin#reports#activity", "id": {"time": "2026-11-20T08:00:00.000Z", "applicationName": "drive",
                                                "customerId": "C1", "uniqueQualifier": "1"},
       "actor": {"email": "ann@example.org", "profileId": "42"}, "ipAddress": "192.0.2.1",
       "events": [{"type": "access", "name": "download",
                   "parameters": [{"name": "doc_id", "value": "d1"}, {"name": "doc_title", "value": "Payroll"},
                                  {"name": "doc_type", "value": "spreadsheet"}]},
                  {"type": "access", "name": "view", "parameters": [{"name": "doc_id", "value": "d1"}]}]}


def test_reports_api_form_gives_one_event_per_event(registry):
    got = parse_all(registry, [API])
    assert [e.event.action for e in got] == ["download", "view"]
    assert got[0].resource.name == "Payroll" and got[0].resource.type == "spreadsheet"
    assert got[0].event.type == ["access"] and got[0].user.name == "ann@example.org"
    assert got[0].id != got[1].id


@pytest.mark.parametrize(("record", "reason"), [
    ({**API, "events": [{"type": "access"}]}, "events[0].name is absent"),
    ({**API, "events": [{"name": "view", "parameters": [{"value": "x"}]}]}, "parameters[0].name is absent"),
    ({**API, "events": "download"}, "events is str"),
    ({**API, "id": {**API["id"], "time": "late"}}, "id.time="),
])
def test_broken_workspace_records_name_the_field(parse_one, record, reason):
    dl = parse_one(record, "gworkspace.activity")
    assert isinstance(dl, DeadLetter) and reason in dl.reason, dl
