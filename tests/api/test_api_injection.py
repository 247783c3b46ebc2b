"""Injection attempts: in the query language (SQL-ish, Elasticsearch query_string syntax, script
tags, pathological nesting) on both stores, and in names shown on the console's pages."""

from __future__ import annotations

import re

from api_helpers import XSS_CASE, XSS_TITLE, XSS_USER

from access_audit.api.auth import Role

# (query, expected status); 200 means "treated as data": no test event matches
ATTEMPTS = [
    ('user.name:"bob\' OR \'1\'=\'1"', 200),
    ("user.name:bob' OR '1'='1", 200),
    ("' OR 1=1 --", 400),  # '--' reads as a negation: refused, use NOT
    ("user.name:x') UNION SELECT doc FROM events --", 400),
    ('user.name:"x\') UNION SELECT doc FROM events --"', 200),
    ("user.name:alice; DROP TABLE events; --", 400),
    ("user.name:alice; DROP TABLE events", 200),
    ("labels.a'b:1", 200),  # a label key is user text too: it must not end the SQL literal
    ("labels.x'||':*", 200),
    ("user.name);DROP TABLE events;--:x", 400),
    ("_exists_:user.name", 400),  # query_string syntax is not ours
    ("*:*", 400),
    ("user.name:bob~1", 200),
    ("user.name:/b.b/", 200),
    ("user.name:[a TO z]", 200),
    ('{"query": {"match_all": {}}}', 400),
    ("user.name:bob^5", 200),
    ("<script>alert(1)</script>", 400),
    ('"<script>alert(1)</script>"', 200),
    ("user.name:*alice", 400),
    ('"\\"', 400),
    ("NOT " * 40 + "user.name:bob", 400),  # too deep for the stores: refused here, with a reason
    ("(" * 1500 + "a" + ")" * 1500, 400),
    (" ".join(["word"] * 700), 400),  # too many terms
    ("x" * 5000, 422),  # longer than the query parameter allows
]


def test_query_language_injection(env):
    for q, status in ATTEMPTS:
        r = env.get("/api/events", Role.dpo, q=q)
        assert r.status_code == status, (q, r.text)
        if status == 200:
            assert r.json()["events"] == [], q  # matched nothing (the self-audit is not among the events)
        else:
            detail = r.json()["detail"]
            assert detail if status == 422 else detail.startswith("invalid query: "), (q, detail)
            assert r.headers["content-type"] == "application/json"
    # the store is intact and answers as before
    body = env.get("/api/events", Role.dpo, q="NOT event.dataset:access_audit", limit=100).json()
    assert body["count"] == 15
    # the same attempts through the other routes that take a query
    for q, status in ATTEMPTS[:8]:
        for path in ("/api/aggregations", "/api/events/export", "/api/subjects/c-1/report"):
            r = env.get(path, Role.dpo, q=q)
            assert r.status_code == status, (path, q, r.text)


def test_error_messages_say_where(sqlite_env):
    r = sqlite_env.get("/api/events", q="user.name:bob AND (event.outcome:failure")
    assert r.json() == {"detail": "invalid query: missing ')' for '(' at position 19"}
    r = sqlite_env.get("/api/events", q="user.nam:bob")
    assert r.json() == {"detail": "invalid query: unknown field 'user.nam' at position 1; did you mean user.name, "
                                 "user.full_name, service.name?"}


def test_names_with_markup_render_escaped_in_the_console(sqlite_env):
    env = sqlite_env
    pages = {
        "cases": env.client.get("/console/cases", headers=env.headers(Role.dpo)),
        "case": env.client.get(f"/console/cases/{env.case_ids['export']}", headers=env.headers(Role.dpo)),
        "alerts": env.client.get("/console/alerts", headers=env.headers(Role.dpo)),
        "register": env.client.get("/console/register", headers=env.headers(Role.dpo)),
    }
    for name, r in pages.items():
        assert r.status_code == 200, (name, r.text[:300])
        html = r.text
        for raw in (XSS_CASE, XSS_TITLE, XSS_USER):
            assert raw not in html, (name, raw)
        assert "<img" not in html and "onerror=\"alert" not in html
        # exactly one script element, the page's own, allowed by its nonce
        scripts = re.findall(r"<script[^>]*>", html)
        assert len(scripts) == 1, (name, scripts)
        nonce = re.search(r'nonce="([^"]+)"', scripts[0])[1]
        assert f"'nonce-{nonce}'" in r.headers["content-security-policy"]
        assert "unsafe-inline" not in r.headers["content-security-policy"]
    assert "&lt;script&gt;alert(&#39;case&#39;)&lt;/script&gt; Mass export by bob" in pages["cases"].text
    assert "&lt;script&gt;alert(&#39;alert&#39;)&lt;/script&gt; brute force" in pages["alerts"].text
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in pages["alerts"].text


def test_markup_typed_into_a_form_stays_text(sqlite_env):
    env = sqlite_env
    cid = env.case_ids["urgent"]
    evil = '</textarea><script>alert("summary")</script>'
    r = env.client.post(f"/console/cases/{cid}/details", headers=env.headers(Role.dpo),
                        data={"summary": evil, "reason": "<b>why</b>"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    html = env.client.get(f"/console/cases/{cid}", headers=env.headers(Role.dpo)).text
    assert evil not in html and "<b>why</b>" not in html
    assert "&lt;/textarea&gt;&lt;script&gt;alert(&#34;summary&#34;)&lt;/script&gt;" in html
    assert len(re.findall(r"<script", html)) == 1
    # and a refusal that quotes user input is escaped too
    r = env.client.post(f"/console/cases/{cid}/details", headers=env.headers(Role.dpo),
                        data={"subjects_min": "<script>1</script>"}, follow_redirects=False)
    assert r.status_code == 409 and "&lt;script&gt;1&lt;/script&gt;" in r.text and "<script>1" not in r.text
