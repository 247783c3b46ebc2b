"""Salesforce event monitoring on Panther's fixtures (the only samples).

Counts are computed from the vendor JSON: every row of the nine ``Salesforce.*.jsonl`` files has
a ``TIMESTAMP`` and parses, by log type and auto-detected: ``Login`` (5) and ``LoginAs`` (1) as
``salesforce.login``; ``ApiAnomalyEventStore`` (3), ``ApiConnectedApp`` (2), ``ApiTotalUsage`` (1),
``BulkApiResultEventStore`` (4), ``ConnectedAppUsageEventStore`` (3), ``OAuthTokenRefreshFailed``
(1) and ``OAuthTokenRevoked`` (1) as ``salesforce.event``: 21 in all.
"""

from __future__ import annotations

import pytest

from access_audit.core.events import AccessEvent, Outcome
from access_audit.core.records import DeadLetter

TIME_KEYS = ("TIMESTAMP_DERIVED", "TIMESTAMP", "p_event_time")
OTHERS = {"ApiAnomalyEventStore": 3, "ApiConnectedApp": 2, "ApiTotalUsage": 1, "BulkApiResultEventStore": 4,
          "ConnectedAppUsageEventStore": 3, "OAuthTokenRefreshFailed": 1, "OAuthTokenRevoked": 1}


def test_logins(panther, run_dataset):
    rows = panther("Salesforce.Login")
    rep = run_dataset(rows, "salesforce.login", TIME_KEYS)
    rep.assert_ok(min_rate=1.0)
    assert rep.parsed == len(rows) == 5
    for i, ev in rep.events.items():
        src = rows[i]["event"]
        assert ev.event.action == "Login" and ev.event.category == ["authentication"]
        assert ev.event.outcome is Outcome.success and src["LOGIN_STATUS"] == "LOGIN_NO_ERROR"
        assert (ev.user.name, ev.user.id) == (src["USER_NAME"], src["USER_ID_DERIVED"])
        assert ev.source.ip == src["SOURCE_IP"] and ev.user_agent.original == src["BROWSER_TYPE"]
        assert (ev.resource.type, ev.resource.id) == ("organization", "00D5f000005uVo7")
    first = rep.events[0]  # "Normal Login Event": SOURCE_IP wins over CLIENT_IP 13.13.13.13
    assert first.source.ip == "12.12.12.12" and first.timestamp.isoformat() == "2023-05-04T21:36:47.569000+00:00"
    assert first.labels["salesforce_login_key"] == "HMvXV5bu8xcZOqQl" and first.labels["salesforce_uri"] == "/index.jsp"


def test_login_as_names_the_admin_and_the_user_impersonated(panther, run_dataset):
    rows = panther("Salesforce.LoginAs")
    rep = run_dataset(rows, "salesforce.login", TIME_KEYS)
    rep.assert_ok(min_rate=1.0)
    assert rep.parsed == len(rows) == 1
    ev = rep.events[0]
    assert ev.event.action == "LoginAs" and ev.event.outcome is Outcome.success
    assert (ev.user.name, ev.user.id) == ("admin.user@yourcompany.io", "0054x000001L78aAAC")
    assert ev.user.target.id == "fdokawnjf" and ev.source.ip == "12.12.12.12"
    assert ev.resource.id == "000elibsdfkjsd"


@pytest.mark.parametrize(("log_type", "count"), OTHERS.items())
def test_other_event_types(panther, run_dataset, log_type, count):
    rows = panther(f"Salesforce.{log_type}")
    rep = run_dataset(rows, "salesforce.event", TIME_KEYS)
    rep.assert_ok(min_rate=1.0)
    assert rep.parsed == len(rows) == count
    for i, ev in rep.events.items():
        src = rows[i]["event"]
        assert ev.event.action == src["EVENT_TYPE"] == log_type and ev.source.ip == src["SOURCE_IP"]
        assert ev.user.name == src.get("USER_NAME", src.get("USERNAME")) and ev.user.id == src["USER_ID_DERIVED"]
        if "CONNECTED_APP_ID" in src:
            assert (ev.resource.type, ev.resource.id, ev.resource.name) == (
                "application", src["CONNECTED_APP_ID"], src["CONNECTED_APP_NAME"])


def test_bulk_api_results_count_the_records(panther, parse_one):
    rows = [r["event"] for r in panther("Salesforce.BulkApiResultEventStore")]
    got = [(ev.event.type, ev.resource.name, ev.resource.records) for ev in map(parse_one, rows)]
    assert got == [(["access"], "Contact", 150000), (["access"], "Account", 25000),
                   (["deletion"], "Opportunity", 15000), (["creation"], "Lead", 5000)]


def test_anomalies_and_oauth_outcomes(panther, parse_one):
    ev = parse_one(panther("Salesforce.ApiAnomalyEventStore")[0]["event"])
    assert ev.event.kind == "alert" and ev.event.category == ["intrusion_detection"]
    assert ev.message == "Unusual API query volume and pattern detected" and ev.labels["salesforce_score"] == "85.5"
    ev = parse_one(panther("Salesforce.OAuthTokenRefreshFailed")[0]["event"])
    assert ev.event.outcome is Outcome.failure and ev.resource.name == "SuspiciousIntegration"
    ev = parse_one(panther("Salesforce.OAuthTokenRevoked")[0]["event"])
    assert (ev.event.category, ev.event.type, ev.event.outcome) == (["iam"], ["deletion"], Outcome.success)


def test_a_failed_login_with_the_csv_timestamp(parse_one):
    ev = parse_one({"EVENT_TYPE": "Login", "ORGANIZATION_ID": "00D1", "TIMESTAMP": "20261120100000.250",
                    "USER_ID": "0051", "USER_NAME": "ann@example.com", "LOGIN_STATUS": "LOGIN_ERROR_INVALID_PASSWORD",
                    "SOURCE_IP": "Salesforce.com IP"})
    assert isinstance(ev, AccessEvent) and ev.event.dataset == "salesforce.login"
    assert ev.timestamp.isoformat() == "2026-11-20T10:00:00.250000+00:00"
    assert ev.event.outcome is Outcome.failure and ev.event.reason == "LOGIN_ERROR_INVALID_PASSWORD"
    assert ev.source.ip is None and ev.source.address == "Salesforce.com IP"


OK = {"ORGANIZATION_ID": "00D1", "TIMESTAMP": "2026-11-20 10:00:00.000", "USER_ID": "0051"}


@pytest.mark.parametrize(("rec", "log_type", "names"), [
    ({**OK, "EVENT_TYPE": "Login", "LOGIN_STATUS": "LOGIN_NO_ERROR", "TIMESTAMP": None}, None,
     "none of TIMESTAMP_DERIVED, TIMESTAMP, p_event_time"),
    ({**OK, "EVENT_TYPE": "Login", "LOGIN_STATUS": "LOGIN_NO_ERROR", "TIMESTAMP": "20261399000000"}, None,
     "TIMESTAMP='20261399000000'"),
    ({**OK, "EVENT_TYPE": "Login", "LOGIN_STATUS": "LOGIN_NO_ERROR", "USER_ID": None}, None,
     "USER_NAME and USER_ID are absent"),
    ({**OK, "EVENT_TYPE": "Login"}, None, "LOGIN_STATUS is absent"),
    ({**OK, "EVENT_TYPE": "LoginAs"}, None, "DELEGATED_USER_NAME and DELEGATED_USER_ID are absent"),
    ({**OK, "EVENT_TYPE": "BulkApiResultEventStore", "ENTITY_NAME": "Contact", "RECORDS_PROCESSED": "many"}, None,
     "RECORDS_PROCESSED is str"),
    ({**OK, "EVENT_TYPE": "ApiTotalUsage", "USER_ID": None}, None, "USER_NAME and USER_ID are absent"),
    ({**OK, "EVENT_TYPE": None}, "salesforce.event", "EVENT_TYPE is absent"),
    ({**OK, "EVENT_TYPE": "Login", "LOGIN_STATUS": "LOGIN_NO_ERROR"}, "salesforce.event", "is salesforce.login"),
    ({**OK, "EVENT_TYPE": "ApiTotalUsage"}, "salesforce.login", "is not Login or LoginAs"),
])
def test_broken_records_are_dead_letters_naming_the_field(parse_one, rec, log_type, names):
    dl = parse_one(rec, log_type)
    assert isinstance(dl, DeadLetter) and names in dl.reason and dl.log_type.startswith("salesforce."), dl


def test_other_event_types_are_not_detected_but_parse_when_named(parse_one):
    rec = {**OK, "EVENT_TYPE": "ReportExport", "CLIENT_IP": "198.51.100.3"}
    dl = parse_one(rec)
    assert isinstance(dl, DeadLetter) and "unrecognised JSON record" in dl.reason
    ev = parse_one(rec, "salesforce.event")
    assert isinstance(ev, AccessEvent) and ev.event.action == "ReportExport" and ev.event.category == []
    assert ev.source.ip == "198.51.100.3" and (ev.resource.type, ev.resource.id) == ("organization", "00D1")
