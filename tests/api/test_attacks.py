"""The attack table of issue 12, one test per row, against the real server (uvicorn on 127.0.0.1)
over either store: each probe re-identified people or escaped the self-audit before; now it fails.

The data: the API test data plus events whose free text names customers (URL query, referrer),
and an alert whose context, title and resource hold e-mail addresses, addresses and subject ids.
"""

from __future__ import annotations

import csv
import io
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_helpers import DAY1, Env, build_env, drop_store, ev

from access_audit.api.auth import Role
from access_audit.core.alerts import Alert, Severity
from access_audit.core.events import Http, HttpRequest, Url
from access_audit.store.query import Query

SURNAME = "Jansen-Vermeulen"
EMAIL = "jan.jansen@example.org"


def _extra_events() -> list[Any]:
    a = ev(900, DAY1 + timedelta(hours=2), "frank", "10.77.0.5", subjects=["c-77"], service="portal",
           path="/customers/c-77")
    a.url = Url(path="/customers/c-77", query=f"surname={SURNAME}&id=c-77")
    a.http = Http(request=HttpRequest(method="GET", referrer=f"https://portal.example/search?q={SURNAME}"))
    b = ev(901, DAY1 + timedelta(hours=3), "=cmd|' /C calc'!A0", "10.77.0.6", service="sheet",
           resource="\uff1dSUM(A1)", message=" \n=1+1", path="@evil")
    return [a, b]


def _extra_alerts(ids: list[str]) -> list[Alert]:
    return [Alert(id="a-leaky", rule_id="value_count_exfil", title=f"c-77 read by {EMAIL} from 10.77.0.5",
                  severity=Severity.high, risk_score=80, dedup_key="frank", first_seen=DAY1, last_seen=DAY1,
                  created_at=DAY1, event_ids=ids, user="frank", resource="customers/c-77",
                  context={"sample_values": [EMAIL, "10.77.0.5", "c-77"], "field": "resource.subject_ids"})]


class Served:
    def __init__(self, env: Env, base: str) -> None:
        self.env = env
        self.base = base
        self.http = httpx.Client(base_url=base, timeout=30)

    def get(self, path: str, who: str | Role | None = Role.dpo, **params: Any) -> httpx.Response:
        r = self.http.get(path, params=params, headers=self.env.headers(who))
        self.env.refresh()
        return r

    def post(self, path: str, who: str | Role | None, **kw: Any) -> httpx.Response:
        r = self.http.post(path, headers={**self.env.headers(who), **kw.pop("headers", {})}, **kw)
        self.env.refresh()
        return r

    def audit(self, **params: Any) -> list[dict[str, Any]]:
        self.env.refresh()
        return list(self.env.store.self_audit(limit=1000, **params))


def serve(app: Any) -> tuple[Any, threading.Thread, str]:
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off",
                                           proxy_headers=False))
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not t.is_alive():
            pytest.fail("uvicorn did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, t, f"http://127.0.0.1:{port}"


def _env(kind: str, tmp: Path) -> Env:
    env = build_env(kind, tmp)
    extra = _extra_events()
    env.store.write_events(extra)
    env.store.write_alerts(_extra_alerts([e.id for e in extra]))
    env.refresh()
    return env


@pytest.fixture(params=["sqlite", pytest.param("elasticsearch", marks=pytest.mark.integration)])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Served]:
    env = _env(request.param, tmp_path)
    server, t, base = serve(env.app)
    s = Served(env, base)
    yield s
    s.http.close()
    server.should_exit = True
    t.join(10)
    env.repo.close()
    env.app.state.tokens.close()
    drop_store(env.store)


def clear_values() -> list[str]:
    return ["alice", "bob", "frank", "10.1.2.3", "203.0.113.9", "10.77.0.5", SURNAME, EMAIL, "c-77"]


def assert_no_clear(text: str, *values: str) -> None:
    for v in values or clear_values():
        assert v not in text, f"{v!r} leaked: {text[:400]}"


# --- row 1: addresses through unrefused fields, /32 networks, a binary search over CIDRs ---------

def test_row1_addresses_cannot_be_tested_or_searched_for(served):
    pseudo = served.env.app.state.pseudonymiser
    for q in ("source.address:203.0.113.9", "source.ip:203.0.113.9/32", "source.ip:203.0.113.*",
              "related.ip:203.0.113.9", "source.ip:>=0", "destination.ip:203.0.113.9"):
        r = served.get("/api/events", Role.engineer, q=q)
        assert r.status_code == 403, (q, r.text)
        assert_no_clear(r.text, "bob")
    # the binary search: is bob's address in this half of the address space? Refused at the first step.
    target = pseudo("203.0.113.9")
    lo, steps = 0, 0
    for bits in range(1, 33):
        half = f"{lo >> 24 & 255}.{lo >> 16 & 255}.{lo >> 8 & 255}.{lo & 255}/{bits}"
        r = served.get("/api/aggregations", Role.engineer, q=f"source.ip:{half}", field="source.ip", interval="")
        steps += 1
        if r.status_code != 200:
            break
        if not any(b["source.ip"] == target for b in r.json()["top"]["source.ip"]):
            lo |= 1 << (32 - bits)
    assert steps == 1 and r.status_code == 403
    # what is allowed: a pseudonym it was shown, resolved without the clear value
    r = served.get("/api/events", Role.engineer, q=f"source.ip:{target}")
    assert r.status_code == 200 and r.json()["count"] == 2
    assert_no_clear(r.text)
    denied = [x for x in served.audit(actor="engineer-person") if x["outcome"] == "failure"]
    assert len(denied) >= 7 and all(x["status"] == 403 for x in denied)


# --- row 2: free text -------------------------------------------------------------------------

def test_row2_free_text_is_refused_for_pseudonymised_roles(served):
    for who in (Role.engineer, Role.auditor):
        for q in ('"alice" AND event.dataset:ecs', "alice", '"Failed password"', "message:alice"):
            r = served.get("/api/events", who, q=q)
            assert r.status_code == 403, (who, q, r.text)
    assert served.get("/api/events", Role.security_analyst, q='"failed password"').json()["count"] == 1


# --- row 3: the self-audit through aggregations ----------------------------------------------------

def test_row3_self_audit_queries_are_not_among_the_events(served):
    served.get("/api/events", Role.security_analyst, q="user.name:bob AND source.ip:203.0.113.9")
    served.get("/api/subjects/c-77/report", Role.dpo)
    for who in (Role.engineer, Role.auditor):
        r = served.get("/api/aggregations", who, field=["labels.query", "event.dataset", "user.name"], interval="")
        assert r.status_code == 200, r.text
        assert "access_audit" not in r.text and "labels.query" in r.json()["top"]
        assert r.json()["top"]["labels.query"] == []
        assert_no_clear(r.text)
    # the self-audit itself: readable by the DPO (clear) and the auditor (pseudonymised) only
    assert served.get("/api/audit", Role.engineer).status_code == 403
    assert served.get("/api/audit", Role.security_analyst).status_code == 403
    aud = served.get("/api/audit", Role.auditor, limit=200)
    assert aud.status_code == 200 and aud.json()["count"] > 0
    assert_no_clear(aud.text, "bob", "203.0.113.9", "c-77")
    assert "user.name:bob" in served.get("/api/audit", Role.dpo, limit=200).text


# --- row 4: free-text fields ----------------------------------------------------------------------

def test_row4_free_text_fields_are_neither_counted_nor_shown(served):
    for f in ("url.query", "url.path", "http.request.referrer", "url.original", "labels.purpose", "message"):
        r = served.get("/api/aggregations", Role.engineer, field=f, interval="")
        assert r.status_code in (400, 403), (f, r.text)
        assert_no_clear(r.text)
    r = served.get("/api/events", Role.engineer, q="service.name:portal")
    assert r.status_code == 200 and r.json()["count"] == 1
    doc = r.json()["events"][0]
    assert_no_clear(r.text)
    assert doc["url"]["query"].startswith("p-") and doc["http"]["request"]["referrer"].startswith("p-")
    for fmt in ("ndjson", "csv"):
        r = served.get("/api/events/export", Role.engineer, q="service.name:portal", format=fmt)
        assert r.status_code == 200 and r.text.strip()
        assert_no_clear(r.text)
    # a pseudonym of a free-text value may be searched for, like any other
    r = served.get("/api/events", Role.engineer, q=f"url.query:{doc['url']['query']}")
    assert r.status_code == 200 and r.json()["count"] == 1


# --- row 5: alerts -------------------------------------------------------------------------------

def test_row5_alerts_show_pseudonyms_in_context_titles_and_resources(served):
    for who in (Role.engineer, Role.auditor):
        r = served.get("/api/alerts", who)
        assert r.status_code == 200
        assert_no_clear(r.text)
        leaky = next(a for a in r.json()["alerts"] if a["id"] == "a-leaky")
        assert all(v.startswith("p-") for v in leaky["context"]["sample_values"])
        assert "read by p-" in leaky["title"] and leaky["resource"].startswith("customers/p-")
    page = served.http.get("/console/alerts", headers=served.env.headers(Role.auditor))
    assert page.status_code == 200 and "read by p-" in page.text
    assert_no_clear(page.text)
    r = served.get("/api/alerts", Role.security_analyst)
    assert EMAIL in r.text  # the analyst investigates: clear values


# --- row 6: register, cases, drafts ---------------------------------------------------------------

def test_row6_register_cases_and_drafts_show_pseudonyms(served):
    cid = served.env.case_ids["export"]
    who = Role.auditor
    bodies = [served.get("/api/register", who), served.get("/api/register", who, format="csv"),
              served.get("/api/breaches/register", who), served.get("/api/breaches/register", who, format="csv"),
              served.get(f"/api/breaches/{cid}", who), served.get("/api/breaches", who),
              served.get(f"/api/breaches/{cid}/drafts/authority", who, format="md"),
              served.get(f"/api/breaches/{cid}/drafts/authority", who, format="html"),
              served.http.get("/console/cases", headers=served.env.headers(who)),
              served.http.get(f"/console/cases/{cid}", headers=served.env.headers(who)),
              served.http.get("/console/register", headers=served.env.headers(who))]
    for r in bodies:
        assert r.status_code == 200, (r.url, r.text[:300])
        assert_no_clear(r.text, "bob", "203.0.113.9")
    assert "Mass export by p-" in served.get("/api/register", who).text
    # staff acting on cases stay named; the DPO sees the people in clear
    assert "analyst-person" in bodies[0].text
    assert "Mass export by bob" in served.get("/api/register", Role.dpo).text


# --- row 7: separation of duties ------------------------------------------------------------------

def test_row7_admin_cannot_mint_an_approver_and_approvals_name_the_token(served):
    r = served.post("/api/tokens", Role.admin, json={"role": "dpo", "name": "Fenna de Vries"})
    assert r.status_code == 403 and "only a DPO" in r.text
    assert not [t for t in served.env.app.state.tokens.list() if t.name == "Fenna de Vries"]
    refused = [x for x in served.audit(actor="admin-person") if x["action"] == "token_create"]
    assert refused and refused[0]["outcome"] == "failure" and refused[0]["status"] == 403
    r = served.post("/api/tokens", Role.admin, json={"role": "engineer", "name": "Eng Ineer"})
    assert r.status_code == 201 and r.json()["holder"] == "Eng Ineer"
    assert r.json()["issued_by"].startswith("admin-person (token ")
    assert served.post("/api/tokens", Role.admin, json={"role": "engineer"}).status_code == 422  # a named holder
    r = served.post("/api/dpo/tokens", Role.dpo, json={"role": "dpo", "name": "Deputy DPO"})
    assert r.status_code == 201 and r.json()["issued_by"].startswith("dpo-person (token ")
    deputy = r.json()
    assert served.http.delete(f"/api/tokens/{deputy['id']}", headers=served.env.headers(Role.admin)).status_code == 200
    minted = {x["action"]: x for x in served.audit() if x["action"] in ("token_create", "token_revoke")
              and x["outcome"] == "success"}
    assert minted["token_revoke"]["target_token"] == deputy["id"] and minted["token_create"]["holder"]
    # an approval records the holder and the token
    cid = served.env.case_ids["export"]
    served.post(f"/api/breaches/{cid}/assessment", Role.dpo, json={"answers": {"identifiability": "maximum"}})
    served.post(f"/api/breaches/{cid}/drafts", Role.dpo, json={"kind": "authority", "lang": "nl"})
    r = served.post(f"/api/breaches/{cid}/approval", Role.dpo, json={})
    assert r.status_code == 200, r.text
    dpo_id = next(t.id for t in served.env.app.state.tokens.list() if t.name == "dpo-person")
    assert served.env.repo.get(cid).approval.by == f"dpo-person (token {dpo_id})"


# --- row 8: what escaped the self-audit -----------------------------------------------------------

def test_row8_denials_alerts_cases_drafts_register_exports_are_audited(served):
    cid = served.env.case_ids["export"]
    probes = [
        ("/api/subjects/c-1/report", Role.engineer, 403, {}),
        ("/api/tokens", Role.auditor, 403, {}),
        ("/api/events", "garbage", 401, {}),
        ("/api/alerts", Role.engineer, 200, {}),
        (f"/api/breaches/{cid}", Role.auditor, 200, {}),
        (f"/api/breaches/{cid}/drafts/authority", Role.auditor, 200, {"format": "md"}),
        ("/api/breaches/register", Role.auditor, 200, {"format": "csv"}),
        ("/api/events/export", Role.engineer, 200, {"format": "csv"}),
        ("/console/cases", Role.auditor, 200, {}),
    ]
    for path, who, status, params in probes:
        r = served.get(path, who, **params)
        assert r.status_code == status, (path, r.text[:200])
    recs = served.audit()
    for path, _, status, _ in probes:
        assert any(x["path"] == path and x["status"] == status for x in recs), path
    denied = next(x for x in recs if x["path"] == "/api/subjects/c-1/report")
    assert denied["actor"] == "engineer-person" and denied["action"] == "denied" and denied["subject_ids"] == ["c-1"]


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("elasticsearch", marks=pytest.mark.integration)])
def test_row8_a_500_is_audited(tmp_path, kind):
    env = _env(kind, tmp_path)
    server, t, base = serve(env.app)
    try:
        env.repo.close()  # the breach register's database is gone: a real failure inside the route
        r = httpx.get(base + "/api/breaches", headers=env.headers(Role.dpo), timeout=30)
        assert r.status_code == 500
        env.refresh()
        (rec,) = [x for x in env.store.self_audit(limit=100) if x["path"] == "/api/breaches"]
        assert rec["status"] == 500 and rec["action"] == "error" and rec["actor"] == "dpo-person"
    finally:
        server.should_exit = True
        t.join(10)
        env.app.state.tokens.close()
        drop_store(env.store)


def test_row8_cli_reads_are_audited_with_the_os_user(tmp_path):
    from typer.testing import CliRunner

    from access_audit.api.audit import os_user
    from access_audit.cli import app
    from access_audit.store.sqlite import SqliteStore

    d = tmp_path / "data"
    s = SqliteStore(d / "events.db")
    s.write_events(_extra_events())
    runner = CliRunner()
    for args in (["query", "user.name:frank"], ["query", "user.name:frank", "--format", "csv"],
                 ["subject-report", "c-77"], ["subject-report", "c-77", "--format", "csv"]):
        r = runner.invoke(app, [*args, "--data-dir", str(d)], catch_exceptions=False)
        assert r.exit_code == 0, r.output
    recs = s.self_audit(limit=10)[::-1]
    assert [(x["interface"], x["action"], x["os_user"]) for x in recs] == \
        [("cli", a, os_user()) for a in ("search", "export", "subject_report", "subject_report")]
    assert recs[0]["users"] == ["frank"] and recs[2]["subject_ids"] == ["c-77"]
    s.close()


# --- row 9: retention -------------------------------------------------------------------------------

def test_row9_event_retention_does_not_touch_the_self_audit(served):
    env = served.env
    served.get("/api/events", Role.dpo, q="user.name:bob")
    before = served.audit()
    assert before
    now = env.clock.now() + timedelta(days=4000)
    if hasattr(env.store, "delete_indices_older_than"):
        env.store.delete_indices_older_than(1, now)
    else:
        env.store.delete_events_older_than(1, now)
    env.refresh()
    assert env.store.count(Query()) == 0  # every access event is gone
    assert len(served.audit()) >= len(before)
    day = env.clock.now().date()
    assert day in env.store.retention_days("self_audit")
    n = env.store.count_day("self_audit", day)
    assert n >= 1 and env.store.delete_day("self_audit", day) == n


def test_row9_the_sqlite_self_audit_is_append_only(tmp_path):
    import sqlite3

    from access_audit.api.audit import SelfAudit
    from access_audit.store.sqlite import SqliteStore

    s = SqliteStore(tmp_path / "events.db")
    SelfAudit(s).record(actor="x", role="dpo", action="search", query="user.name:bob")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        s.db.execute("UPDATE self_audit SET actor='y'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        s.db.execute("DELETE FROM self_audit")
    assert [r["actor"] for r in s.self_audit()] == ["x"]
    assert (tmp_path / "events.db").stat().st_mode & 0o777 == 0o600
    s.close()


# --- overflows -------------------------------------------------------------------------------------

def test_overflows_are_400(served):
    for params in ({"q": "event.severity:99999999999999999999"}, {"since": "99999999999999d"},
                   {"q": "event.severity:>99999999999999999999"}, {"q": "http.response.status_code:>1e999"}):
        r = served.get("/api/events", Role.dpo, **params)
        assert r.status_code == 400, (params, r.text)


def test_csv_exports_escape_formulas(served):
    r = served.get("/api/events/export", Role.dpo, q="service.name:sheet", format="csv")
    (row,) = list(csv.DictReader(io.StringIO(r.text)))
    assert row["user.name"] == "'=cmd|' /C calc'!A0" and row["resource.name"] == "'\uff1dSUM(A1)"
    assert row["message"] == "' \n=1+1" and row["url.path"] == "'@evil"
    r = served.get("/api/subjects/c-77/report", Role.dpo, format="csv")
    assert r.status_code == 200


# --- the route x role x token-state matrix, on the real server ------------------------------------

def test_the_route_role_token_matrix_on_the_real_server(served):
    import test_api_authz

    served.env.client = served.http  # httpx speaks TestClient's request(): the same calls, over TCP
    test_api_authz.test_the_matrix(served.env)
    denied = [x for x in served.audit() if x["status"] in (401, 403)]
    assert len(denied) > 100 and {x["action"] for x in denied} >= {"denied"}


def test_injection_probes_on_the_real_server(served):
    import test_api_injection

    for q, status in test_api_injection.ATTEMPTS:  # the same probes, over TCP
        for who in (Role.dpo, Role.engineer):
            r = served.get("/api/events", who, q=q)
            assert r.status_code in ((status,) if who is Role.dpo else (status, 403)), (who, q, r.text)
            if r.status_code == 200:
                assert r.json()["events"] == [], q
    assert served.get("/api/events", Role.dpo, limit=100).json()["count"] == 17  # the store is intact
