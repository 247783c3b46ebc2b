"""Slack audit logs on Panther's fixtures (the only samples).

Counts are computed from the vendor JSON: 34 of the 66 rows of ``Slack.AuditLogs.jsonl`` have a
``date_create`` and parse, by log type and auto-detected; the other 32 have no time at all and
are dead letters ``missing timestamp``. With the API's epoch ``date_create`` added by the test,
all 66 parse.
"""

from __future__ import annotations

import orjson
import pytest

from access_audit.core.events import AccessEvent, Outcome
from access_audit.core.records import DeadLetter, RawRecord

TIME_KEYS = ("date_create", "p_event_time")
EPOCH = 1763632800  # 2025-11-20T10:00:00Z


def test_audit_logs_with_a_time_parse_and_autodetect(panther, run_dataset):
    rows = panther("Slack.AuditLogs")
    rep = run_dataset(rows, "slack.audit", TIME_KEYS)
    rep.assert_ok(min_rate=1.0)
    assert len(rows) == 66
    assert rep.parsed == rep.with_time == sum("date_create" in r["event"] for r in rows) == 34
    assert len(rep.timeless_failures) == 32
    for i, ev in rep.events.items():
        src = rows[i]["event"]
        actor = src["actor"]["user"]
        assert ev.event.action == src["action"] and (ev.user.id, ev.user.email) == (actor["id"], actor["email"])
        assert ev.source.ip == src["context"]["ip_address"] and ev.user_agent.original == src["context"]["ua"]
        entity = src.get("entity")
        if entity:
            assert ev.resource.type == entity["type"] and ev.resource.id == entity[entity["type"]]["id"]
    logouts = [ev for ev in rep.events.values() if ev.event.action == "user_logout"]
    assert len(logouts) == sum(r["event"]["action"] == "user_logout" for r in rows) == 18
    assert all(ev.event.category == ["authentication"] and ev.event.type == ["end"] and ev.user.target is None
               for ev in logouts)
    by_name = {rows[i]["test_name"]: ev for i, ev in rep.events.items()}
    ev = by_name["Role Changed to Admin"]
    assert ev.event.category == ["iam"] and ev.user.name == "slack-enterprise-example@example.io"
    assert (ev.user.target.id, ev.user.target.email) == ("U04R70MM40K", "example-account@example.com")
    assert ev.timestamp.isoformat() == "2023-02-24T18:33:21+00:00"
    assert ev.labels["slack_audit_id"] == "1ad8fa51-f18e-450a-8e18-cfe31278be96"
    ev = by_name["App added to workspace - Admin not in app scopes"]
    assert (ev.resource.type, ev.resource.id, ev.resource.name) == ("app", "A049JV0H0KC", "Notion")
    assert ev.event.type == ["creation"] and ev.labels["slack_workspace"] == "test-panther-1"
    ev = by_name["Session Fingerprint"]
    assert ev.event.kind == "alert" and ev.event.reason == "session_fingerprint"
    assert ev.timestamp.isoformat() == "2024-08-19T13:54:53+00:00"
    ev = by_name["IDP Configuration Deleted"]  # no entity: the workspace of context.location
    assert (ev.resource.type, ev.resource.id, ev.resource.name) == ("workspace", "T01234N56GB", "test-workspace")
    assert ev.event.type == ["deletion"]


def test_audit_logs_with_their_time(panther, registry):
    rows = [r["event"] for r in panther("Slack.AuditLogs")]
    events = {}
    for i, rec in enumerate(rows):
        data = orjson.dumps({**rec, "date_create": EPOCH})
        typed = registry.parse(RawRecord(data=data, origin=f"s:{i}", source="t", log_type="slack.audit"))
        auto = registry.parse(RawRecord(data=data, origin=f"s:{i}", source="t"))
        assert typed.events, typed.dead_letters
        assert auto.events and auto.events[0].id == typed.events[0].id
        events[i] = typed.events[0]
    assert len(events) == 66
    assert all(ev.timestamp.isoformat() == "2025-11-20T10:00:00+00:00" for ev in events.values())
    reset = events[15]  # "User Session Reset By Admin"
    assert reset.event.category == ["session"] and reset.event.type == ["end"]
    assert reset.user.name == "admin@example.com" and reset.user.target.email == "target@example.com"
    assert events[51].event.kind == "alert"  # "Malicious Content Detected"
    assert events[53].event.category == ["configuration"]  # "Private Channel Made Public"
    assert events[46].event.type == ["deletion"]  # "Organization Deleted"


def test_documented_file_download_and_failed_login(parse_one):
    base = {"date_create": EPOCH, "actor": {"type": "user", "user": {"id": "W1", "name": "ann",
                                                                     "email": "ann@example.com"}},
            "context": {"ip_address": "198.51.100.9", "ua": "Slack/4.0", "session_id": "847288190092",
                        "location": {"type": "enterprise", "id": "E1", "name": "acme", "domain": "acme"}}}
    ev = parse_one({**base, "id": "0123", "action": "file_downloaded",
                    "entity": {"type": "file", "file": {"id": "F1", "name": "q4.pdf", "filetype": "pdf"}}})
    assert isinstance(ev, AccessEvent) and ev.event.dataset == "slack.audit"
    assert (ev.event.category, ev.event.type, ev.event.outcome) == (["file"], ["access"], Outcome.success)
    assert (ev.resource.type, ev.resource.id, ev.resource.name) == ("file", "F1", "q4.pdf")
    assert ev.labels["slack_session_id"] == "847288190092" and ev.labels["slack_location_type"] == "enterprise"
    ev = parse_one({**base, "action": "user_login_failed", "entity": {"type": "user", "user": base["actor"]["user"]}})
    assert (ev.event.category, ev.event.type, ev.event.outcome) == (["authentication"], ["start"], Outcome.failure)
    ev = parse_one({**base, "action": "user_channel_join",
                    "entity": {"type": "channel", "channel": {"id": "C1", "name": "finance", "privacy": "private"}}})
    assert (ev.resource.type, ev.resource.name, ev.labels["slack_channel_privacy"]) == ("channel", "finance", "private")


CTX = {"ip_address": "1.2.3.4", "ua": "x"}


@pytest.mark.parametrize(("rec", "log_type", "names"), [
    ({"action": "user_login", "actor": {"user": {"id": "W1"}}, "context": CTX, "date_create": "later"}, None,
     "date_create='later'"),
    ({"action": "user_login", "actor": {"user": {"id": "W1"}}, "context": CTX}, None,
     "none of date_create, p_event_time"),
    ({"action": "user_login", "actor": {"user": None}, "context": CTX, "date_create": EPOCH}, None,
     "actor.user is absent"),
    ({"action": "user_login", "actor": {"user": {"team": "T1"}}, "context": CTX, "date_create": EPOCH}, None,
     "actor.user has no email"),
    ({"action": "user_login", "actor": {"user": {"id": 5}}, "context": CTX, "date_create": EPOCH}, None,
     "actor.user.id is int"),
    ({"actor": {"user": {"id": "W1"}}, "context": CTX, "date_create": EPOCH}, "slack.audit", "action is absent"),
])
def test_broken_records_are_dead_letters_naming_the_field(parse_one, rec, log_type, names):
    dl = parse_one(rec, log_type)
    assert isinstance(dl, DeadLetter) and names in dl.reason and dl.log_type == "slack.audit", dl
