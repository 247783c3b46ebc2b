"""The query API with the same expectations on the embedded store and on a real Elasticsearch:
search (filters, free text, time range, order, search_after pages), aggregations, alerts, the
subject access report, the register, exports, self-audit and pseudonymisation."""

from __future__ import annotations

import csv
import io
import json

import pytest
from api_helpers import XSS_USER

from access_audit.api.auth import Role

REAL = "NOT event.dataset:access_audit"  # the self-audit lives apart now: this matches all the test data


def users(r) -> list[str]:
    assert r.status_code == 200, r.text
    return [e["user"]["name"] for e in r.json()["events"]]


def test_search_filters_free_text_time_and_order(env):
    assert users(env.get("/api/events", q="user.name:bob")) == ["bob", "bob"]
    r = env.get("/api/events", q="user.name:bob AND event.outcome:failure")
    assert [e["resource"]["name"] for e in r.json()["events"]] == ["payroll"]
    assert users(env.get("/api/events", q='"failed password"')) == ["carol"]
    assert users(env.get("/api/events", q="resource.subject_ids:c-1 AND NOT source.ip:10.0.0.0/8")) == ["bob"]
    assert users(env.get("/api/events", q=f"{REAL} AND user.name:(alice OR eve)", order="asc")) == \
        ["alice", "alice", "eve"]
    since = env.get("/api/events", q=REAL, since="2026-11-21T00:00:00Z", until="2026-11-21T12:30:00Z")
    assert users(since) == [XSS_USER, "carol", "eve"]
    assert users(env.get("/api/events", q=f"{REAL} AND NOT user.name:dave", since="72h")) == \
        [XSS_USER, "carol", "eve"]  # relative to the app's clock


def test_search_after_pages_through_ties_without_gaps(env):
    everything = [e["event"]["id"] for e in env.get("/api/events", q="user.name:dave", limit=100).json()["events"]]
    assert len(everything) == 8
    for order in ("desc", "asc"):
        seen, after, pages = [], None, 0
        while True:
            params = {"q": "user.name:dave", "limit": 3, "order": order, **({"after": after} if after else {})}
            body = env.get("/api/events", **params).json()
            seen += [e["event"]["id"] for e in body["events"]]
            pages += 1
            after = body["next"]
            if after is None:
                break
        assert seen == (everything if order == "desc" else everything[::-1])
        assert pages == 3


@pytest.mark.parametrize("after", ["nonsense", "eyJ4IjoxfQ", "WyJub3QgYSB0aW1lIiwiYWIiXQ"])
def test_a_forged_cursor_is_refused(env, after):
    r = env.get("/api/events", after=after)
    assert r.status_code == 400 and "cursor" in r.json()["detail"]


def test_aggregations_top_values_and_histogram(env):
    r = env.get("/api/aggregations", q=REAL, size=3, interval="1d")
    assert r.status_code == 200, r.text
    top = r.json()["top"]
    assert top["user.name"] == [{"user.name": "dave", "events": 8}, {"user.name": "alice", "events": 2},
                                {"user.name": "bob", "events": 2}]
    assert top["resource.name"] == [{"resource.name": "wiki", "events": 9},
                                    {"resource.name": "customers", "events": 4},
                                    {"resource.name": "bastion", "events": 1}]
    assert top["source.ip"][0] == {"source.ip": "10.1.2.4", "events": 8}
    assert r.json()["histogram"] == {"interval": "1d", "buckets": [
        {"start": "2026-11-20T00:00:00+00:00", "events": 4}, {"start": "2026-11-21T00:00:00+00:00", "events": 11}]}
    r = env.get("/api/aggregations", q=REAL, field=["resource.subject_ids", "labels.purpose"], interval="")
    assert r.json()["top"] == {
        "resource.subject_ids": [{"resource.subject_ids": "c-1", "events": 3},
                                 {"resource.subject_ids": "c-2", "events": 2},
                                 {"resource.subject_ids": "c-3", "events": 1}],
        "labels.purpose": [{"labels.purpose": "claim handling", "events": 2}]}
    assert r.json()["histogram"] is None
    for bad in ({"field": ["message"]}, {"field": ["nope"]}, {"interval": "1y"}, {"interval": "1s", "since": "30d"}):
        r = env.get("/api/aggregations", **bad)
        assert r.status_code == 400, (bad, r.text)


def test_alerts_newest_first(env):
    r = env.get("/api/alerts", Role.security_analyst)
    assert [a["id"] for a in r.json()["alerts"]] == ["a-xss", "a-export"]
    assert [a["id"] for a in env.get("/api/alerts", rule_id="mass_read_personal_data").json()["alerts"]] == \
        ["a-export"]


def test_subject_access_report(env):
    r = env.get("/api/subjects/c-1/report", purpose="Art. 15 request 2026-014")
    assert r.status_code == 200, r.text
    rep = r.json()
    assert rep["subject_id"] == "c-1" and rep["events"] == 3 and rep["without_purpose"] == 1
    assert [(a["user"], a["events"], a["source_ips"], a["services"], a["purposes"]) for a in rep["actors"]] == [
        ("alice", 2, ["10.1.2.3"], ["crm"], ["claim handling"]),
        ("bob", 1, ["203.0.113.9"], ["crm"], ["(none declared)"])]
    assert [x["action"] for x in rep["accesses"]] == ["read", "read", "export"]
    c2 = env.get("/api/subjects/c-2/report").json()
    assert {a["user"]: a["purposes"] for a in c2["actors"]} == {"alice": ["claim handling"],
                                                                "eve": ["fraud check"]}
    rows = list(csv.DictReader(io.StringIO(env.get("/api/subjects/c-3/report", format="csv").text)))
    assert [(x["user"], x["source_ip"], x["service"], x["action"]) for x in rows] == \
        [("bob", "203.0.113.9", "crm", "export")]
    # the reports were themselves reads of c-1's data: the next report shows who looked (self-audit)
    again = env.get("/api/subjects/c-1/report", since="1h").json()
    assert again["events"] == 0 and again["actors"] == []  # the self-audit is not among the access events
    assert [(x["actor"], x["action"], x["purpose"]) for x in again["lookups"]] == \
        [("dpo-person", "subject_report", "Art. 15 request 2026-014")]
    assert "lookups" not in env.get("/api/subjects/c-1/report", Role.security_analyst).json()
    assert env.get("/api/subjects/nobody/report").json()["events"] == 0


def test_every_query_is_recorded_in_the_self_audit(env):
    pseudo = env.app.state.pseudonymiser
    for who, path, params in [
        (Role.security_analyst, "/api/events", {"q": "user.name:bob AND event.outcome:failure"}),
        (Role.security_analyst, "/api/events", {"q": "user.name:("}),  # refused: recorded as a failure
        (Role.engineer, "/api/aggregations", {"q": REAL}),
        (Role.dpo, "/api/events/export", {"q": "user.name:alice", "format": "csv"}),
    ]:
        env.clock.advance(seconds=1)
        env.get(path, who, **params)
    env.clock.advance(seconds=1)
    r = env.get("/api/audit", Role.auditor, since="1h", limit=50)
    assert r.status_code == 200, r.text
    got = [(x["action"], x["outcome"], x["query"]) for x in r.json()["records"] if x["path"] != "/api/audit"][::-1]
    assert got == [("search", "success", f"user.name:{pseudo('bob')} AND event.outcome:failure"),
                   ("search", "failure", pseudo("user.name:(")),  # unparsed: its values are unknown
                   ("aggregate", "success", f"{REAL} by user.name, resource.name, source.ip"),
                   ("export", "success", f"user.name:{pseudo('alice')} (limit 10000, csv)")]
    # the auditor sees who searched (staff are named), with the token and the route
    first = r.json()["records"][-1]
    assert first["actor"] == "security_analyst-person" and first["path"] == "/api/events"
    assert first["hits"] == 1 and first["role"] == "security_analyst" and len(first["token_id"]) == 12
    # the DPO sees the same records in clear
    clear = env.get("/api/audit", Role.dpo, actor="security_analyst-person").json()["records"][::-1]
    assert [x["query"] for x in clear] == ["user.name:bob AND event.outcome:failure", "user.name:("]
    assert clear[0]["users"] == ["bob"]
    assert "unexpected end of query" in clear[1]["reason"]
    for who in (Role.engineer, Role.security_analyst, Role.admin):
        assert env.get("/api/audit", who).status_code == 403
    # apart from the access events: no query of the events finds them
    assert env.get("/api/events", Role.dpo, q="service.name:access-audit").json()["count"] == 0


def test_exports_stream_every_page(env, monkeypatch):
    import access_audit.api.app as app_module

    monkeypatch.setattr(app_module, "EXPORT_PAGE", 3)  # several pages for a few events
    r = env.get("/api/events/export", q=REAL, order="asc", limit=100)
    assert r.headers["content-type"] == "application/x-ndjson"
    docs = [json.loads(x) for x in r.text.splitlines()]
    assert len(docs) == 15 and docs[0]["user"]["name"] == "alice" and docs[-1]["user"]["name"] == "dave"
    assert len(env.get("/api/events/export", q=REAL, limit=4).text.splitlines()) == 4
    rows = list(csv.DictReader(io.StringIO(env.get("/api/events/export", q="user.name:bob", format="csv").text)))
    assert [(x["user.name"], x["event.action"], x["resource.subject_ids"]) for x in rows] == \
        [("bob", "read", ""), ("bob", "export", "c-1; c-3")]


def test_register_json_and_csv(env):
    r = env.get("/api/register", Role.auditor)
    assert [c["state"] for c in r.json()["cases"]] == ["confirmed", "confirmed", "not_a_breach"]
    text = env.get("/api/register", Role.dpo, format="csv").text
    assert text.startswith("id,state,title") and len(text.splitlines()) == 4
    # the breach router is mounted too, with its own register route
    assert env.get("/api/breaches/register", Role.dpo).status_code == 200


def test_pseudonymised_roles(env):
    pseudo = env.app.state.pseudonymiser
    r = env.get("/api/events", Role.engineer, q="user.name:" + pseudo("bob"))
    assert r.status_code == 200, r.text
    evs = r.json()["events"]
    assert len(evs) == 2
    for e in evs:
        assert e["user"]["name"] == pseudo("bob") and e["source"]["ip"] == pseudo("203.0.113.9")
        assert e["related"]["ip"] == [pseudo("203.0.113.9")] and "bob" not in json.dumps(e)
        assert e["message"] == pseudo(f"bob {e['event']['action']} {e['resource']['name']} from 203.0.113.9")
    assert env.get("/api/events", Role.engineer, q="user.name:bob").status_code == 403
    assert env.get("/api/events", Role.engineer, q="source.ip:203.0.113.9").status_code == 403
    assert env.get("/api/events", Role.engineer, q="source.ip:203.0.113.0/24").status_code == 403
    subj = env.get("/api/events", Role.auditor, q="resource.subject_ids:" + pseudo("c-3")).json()["events"]
    assert [e["resource"]["subject_ids"] for e in subj] == [[pseudo("c-1"), pseudo("c-3")]]
    top = env.get("/api/aggregations", Role.engineer, q=REAL, size=1).json()["top"]
    assert top["user.name"] == [{"user.name": pseudo("dave"), "events": 8}]
    nd = env.get("/api/events/export", Role.engineer, q="user.name:" + pseudo("alice")).text
    assert "alice" not in nd and "10.1.2.3" not in nd and pseudo("alice") in nd
    alerts = env.get("/api/alerts", Role.auditor).json()["alerts"]
    export = next(a for a in alerts if a["id"] == "a-export")
    assert export["user"] == pseudo("bob") and export["group"] == {"user.name": pseudo("bob")}
    assert export["title"] == f"Mass export of customer records by {pseudo('bob')}"
    case = env.get(f"/api/breaches/{env.case_ids['export']}", Role.auditor).json()
    assert case["alerts"][0]["user"] == pseudo("bob") and case["alerts"][0]["source_ip"] == pseudo("203.0.113.9")
    assert env.get(f"/api/breaches/{env.case_ids['export']}", Role.dpo).json()["alerts"][0]["user"] == "bob"
    # the same people get the same pseudonyms everywhere; the key decides them
    assert pseudo("bob") == pseudo("bob") != pseudo("bob ")
