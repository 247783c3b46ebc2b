"""The DPO console without a browser: sign-in and sessions, CSRF, countdown markup, the workflow
through the forms, pseudonyms for the auditor."""

from __future__ import annotations

import re
from datetime import UTC, timedelta

from access_audit.api.auth import SESSION_COOKIE, Role


def login(env, who: str = "dpo") -> str:
    """Sign in through the form; returns the CSRF token of the session."""
    r = env.client.post("/login", data={"token": env.tokens[who], "next": "/console/cases"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/console/cases", r.text
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    page = env.client.get("/console/cases")
    assert page.status_code == 200
    return re.search(r'name="csrf" value="([^"]+)"', page.text)[1]


def test_sign_in_session_csrf_and_sign_out(sqlite_env):
    env = sqlite_env
    r = env.client.get("/console/cases", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/console/cases"
    r = env.client.post("/login", data={"token": "aa_nope"}, follow_redirects=False)
    assert r.status_code == 401 and "Sign-in failed: invalid token" in r.text
    r = env.client.post("/login", data={"token": env.tokens["expired"]}, follow_redirects=False)
    assert "token expired" in r.text
    csrf = login(env)
    cid = env.case_ids["urgent"]
    # a form without the session's CSRF token is refused; with it, the step runs
    r = env.client.post(f"/console/cases/{cid}/details", data={"summary": "x"}, follow_redirects=False)
    assert r.status_code == 403 and "CSRF" in r.text
    r = env.client.post(f"/console/cases/{cid}/details", data={"summary": "x", "csrf": "wrong"},
                        follow_redirects=False)
    assert r.status_code == 403
    r = env.client.post(f"/console/cases/{cid}/details", data={"summary": "Laptop lost on the train", "csrf": csrf},
                        follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].endswith("?done=details#draft")
    assert env.repo.get(cid).details.summary == "Laptop lost on the train"
    # the JSON API accepts the session too, with the token in a header for changes
    assert env.client.get("/api/whoami").json()["role"] == "dpo"
    r = env.client.post(f"/api/breaches/{cid}/milestones", json={"name": "authority_notified"})
    assert r.status_code == 403
    r = env.client.post("/logout", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert env.client.get("/console/cases", follow_redirects=False).status_code == 303


def test_sessions_end_with_their_token(sqlite_env):
    env = sqlite_env
    token, info = env.app.state.tokens.create(Role.dpo, "short", ttl_days=0.25)
    r = env.client.post("/login", data={"token": token}, follow_redirects=False)
    sid = r.cookies.get(SESSION_COOKIE) or re.search(f"{SESSION_COOKIE}=([^;]+)", r.headers["set-cookie"])[1]
    assert env.client.get("/console/cases", follow_redirects=False).status_code == 200
    env.app.state.tokens.revoke(info.id)
    assert env.client.get("/console/cases", follow_redirects=False).status_code == 303
    assert sid  # (the cookie itself is random and stored only as a hash)
    assert sid.encode() not in (env.settings.data_dir / "auth.db").read_bytes()


def test_no_open_redirect_after_sign_in(sqlite_env):
    env = sqlite_env
    for nxt in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        r = env.client.post("/login", data={"token": env.tokens["dpo"], "next": nxt}, follow_redirects=False)
        assert r.headers["location"] == "/console/cases", nxt


def test_cases_page_has_countdowns_coloured_by_deadline(sqlite_env):
    env = sqlite_env
    html = env.client.get("/console/cases", headers=env.headers(Role.dpo)).text
    assert f'data-now="{env.clock.now().isoformat()}"' in html
    spans = re.findall(r'<span class="countdown ([\w-]+)" data-due="([^"]+)"[^>]*>([^<]+)</span>', html)
    assert spans == [("due-6h", "2026-11-23T14:00:00Z", "2h 0m left"), ("due-later", "2026-11-25T06:00:00Z",
                                                                        "1d 18h 0m left")]
    env.clock.advance(hours=3)
    html = env.client.get("/console/cases", headers=env.headers(Role.dpo)).text
    assert ("overdue", "2026-11-23T14:00:00Z", "overdue by 1h 0m") in \
        re.findall(r'<span class="countdown ([\w-]+)" data-due="([^"]+)"[^>]*>([^<]+)</span>', html)
    env.clock.advance(hours=18)
    html = env.client.get(f"/console/cases/{env.case_ids['export']}", headers=env.headers(Role.dpo)).text
    assert re.search(r'class="countdown due-24h" data-due="2026-11-25T06:00:00Z"', html)
    assert "False alarm" not in env.client.get("/console/cases", headers=env.headers(Role.dpo)).text
    assert "False alarm" in env.client.get("/console/cases?all=true", headers=env.headers(Role.dpo)).text


def test_the_whole_notification_through_the_forms(sqlite_env):
    env = sqlite_env
    h = env.headers(Role.dpo)
    cid = env.case_ids["export"]

    def post(step: str, **data):
        r = env.client.post(f"/console/cases/{cid}/{step}", data=data, headers=h, follow_redirects=False)
        assert r.status_code == 303, (step, r.text[-2000:])
        return env.repo.get(cid)

    c = post("assessment", breach_types="confidentiality", data_categories=["contact", "financial"],
             identifiability="maximum", consequences="serious", individuals="3", malicious="on")
    assert c.state.value == "assessed" and c.risk.proposed.value == "high"
    assert c.risk.worksheet["data_categories"] == ["contact", "financial"]
    r = env.client.post(f"/console/cases/{cid}/approval", data={}, headers=h)
    assert r.status_code == 409 and "cannot go from assessed to approved" in r.text
    c = post("draft", kind="authority", lang="en")
    assert c.state.value == "notification_drafted"
    page = env.client.get(f"/console/cases/{cid}", headers=h).text
    preview = page.split('id="draft-preview"')[1].split("</article>")[0]
    assert "Phishing using the exported addresses" in preview and "<h1>" in preview
    c = post("approval")
    assert c.state.value == "approved" and c.approval.by == f"dpo-person (token {dpo_token_id(env)})"
    c = post("submission", channel="AP meldloket", reference="M-2026-77")
    assert c.state.value == "submitted" and c.submission.reference == "M-2026-77"
    c = post("subjects-decision", decision="communicate", reasoning="high risk", communicated_at="2026-11-23T13:00")
    assert c.subjects.communicated_at.isoformat() == "2026-11-23T12:00:00+00:00"  # read in Europe/Amsterdam
    c = post("closure", reason="done")
    assert c.state.value == "closed"
    timeline = env.client.get(f"/console/cases/{cid}", headers=h).text
    for step in ("assess", "draft", "approve", "submit", "subjects", "close"):
        assert f"<strong>{step}</strong>" in timeline


def test_an_analyst_may_draft_but_not_approve(sqlite_env):
    env = sqlite_env
    cid = env.case_ids["export"]
    h = env.headers(Role.security_analyst)
    assert env.client.post(f"/console/cases/{cid}/assessment", data={}, headers=h,
                           follow_redirects=False).status_code == 303
    env.client.post(f"/console/cases/{cid}/draft", data={"lang": "nl"}, headers=h)
    page = env.client.get(f"/console/cases/{cid}", headers=h).text
    assert 'id="render-draft"' in page and 'id="approve"' not in page
    r = env.client.post(f"/console/cases/{cid}/approval", data={}, headers=h, follow_redirects=False)
    assert r.status_code == 403 and "cases:approve" in r.text


def test_auditor_sees_pseudonyms_and_no_forms(sqlite_env):
    env = sqlite_env
    pseudo = env.app.state.pseudonymiser
    h = env.headers(Role.auditor)
    page = env.client.get(f"/console/cases/{env.case_ids['export']}", headers=h).text
    assert pseudo("bob") in page and "203.0.113.9" not in page and ">bob<" not in page
    assert "<form" not in page.split("</header>")[1]
    alerts = env.client.get("/console/alerts", headers=h).text
    assert pseudo("bob") in alerts and 'name="alert_id"' not in alerts
    assert "pseudonymised" in alerts


def test_open_a_case_from_alerts(sqlite_env):
    env = sqlite_env
    h = env.headers(Role.security_analyst)
    before = len(env.repo.list())
    # a-export is in a case already (open_cases): no duplicate case, and the page says where it is
    r = env.client.post("/console/cases", data={"alert_id": ["a-export", "a-xss"]}, headers=h, follow_redirects=False)
    assert r.status_code == 409 and "a-export is in BR-" in r.text and len(env.repo.list()) == before
    r = env.client.post("/console/cases", data={"alert_id": ["a-xss"]}, headers=h, follow_redirects=False)
    assert r.status_code == 303
    cid = r.headers["location"].split("/")[-1].split("?")[0]
    c = env.repo.get(cid)
    assert [a.id for a in c.alerts] == ["a-xss"]
    assert c.opened_by.startswith("security_analyst-person (token ")
    assert env.client.post("/console/cases", data={}, headers=h).status_code == 422
    env.clock.advance(minutes=1)
    assert env.client.get("/console/register", headers=env.headers(Role.dpo)).text.count("/console/cases/BR-") == 4
    assert timedelta(0) <= env.clock.now() - c.opened_at <= timedelta(minutes=1)


def dpo_token_id(env) -> str:
    return next(t.id for t in env.app.state.tokens.list() if t.name == "dpo-person")


def test_audit_page_shows_actor_action_and_token_of_every_record(sqlite_env):
    """Issue 12: the console shows who did what with which token: every self-audit row names the
    actor, the action and the token id (the CLI's rows: the OS user, no token)."""
    import html

    from access_audit.api.audit import SelfAudit

    env = sqlite_env
    ids = {t.name: t.id for t in env.app.state.tokens.list()}
    assert env.get("/api/events", Role.engineer, q="event.action:export").status_code == 200
    assert env.get("/api/subjects/c-1/report", Role.engineer).status_code == 403
    assert env.get("/api/alerts", Role.security_analyst).status_code == 200
    SelfAudit(env.store).record(actor="root", role="cli", action="alert_list", interface="cli", os_user="root")
    env.refresh()
    recs = env.store.self_audit(limit=500)
    page = env.client.get("/console/audit", headers=env.headers(Role.dpo))
    assert page.status_code == 200
    body = page.text.split("<tbody>")[1].split("</tbody>")[0]
    rows = [[html.unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", tr, re.S)]
            for tr in re.findall(r"<tr>(.*?)</tr>", body, re.S)]
    # the page reads the self-audit after its own request's record may be written: compare what both hold
    assert len(rows) >= len(recs) >= 4
    shown = {(r[1], r[3], r[5].removesuffix(" failed").strip()) for r in rows}
    for rec in recs:
        assert (rec["actor"], rec["token_id"] or "—", rec["action"].replace("_", " ")) in shown, rec
    assert ("engineer-person", ids["engineer-person"], "search") in shown
    assert ("engineer-person", ids["engineer-person"], "denied") in shown
    assert ("security_analyst-person", ids["security_analyst-person"], "alerts") in shown
    assert ("root", "—", "alert list") in shown
    cli_row = next(r for r in rows if r[1] == "root")
    assert cli_row[4] == "cli (root)"


def test_awareness_before_the_first_evidence_needs_the_tick_in_the_console(sqlite_env):
    """Issue 13: the console asks what the CLI and the API ask about a doubtful awareness time."""
    env = sqlite_env
    h = env.headers(Role.dpo)
    r = env.client.post("/console/cases", data={"alert_id": ["a-xss"]}, headers=h, follow_redirects=False)
    cid = r.headers["location"].split("/")[-1].split("?")[0]
    first = env.repo.get(cid).alerts[0].first_seen
    at = (first - timedelta(days=1)).astimezone(UTC)
    data = {"at": at.strftime("%Y-%m-%dT%H:%M+00:00"), "reason": "logs confirm"}
    r = env.client.post(f"/console/cases/{cid}/awareness", data=data, headers=h, follow_redirects=False)
    assert r.status_code != 303 and "before the first evidence" in r.text
    assert env.repo.get(cid).awareness is None
    r = env.client.post(f"/console/cases/{cid}/awareness", data={**data, "confirm": "yes"}, headers=h,
                        follow_redirects=False)
    assert r.status_code == 303, r.text[-500:]
    assert env.repo.get(cid).awareness.at == at.replace(second=0, microsecond=0)
