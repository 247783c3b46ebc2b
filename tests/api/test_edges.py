"""The edges of issue 12 against the real server on loopback: body size, sign-in throttling and its
audit, Origin checks, Secure cookies and HSTS behind a trusted TLS proxy, forged X-Forwarded-For,
and an access log without personal data."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_helpers import build_env, drop_store
from test_attacks import serve

from access_audit.api.app import create_app
from access_audit.api.auth import SESSION_COOKIE, Role
from access_audit.settings import Settings


@pytest.fixture(params=["sqlite", pytest.param("elasticsearch", marks=pytest.mark.integration)])
def proxied(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Any, str, httpx.Client]]:
    """The app behind a "TLS proxy" on loopback (127.0.0.1 is the trusted proxy), 3 failed sign-ins
    allowed, a 64 KiB body limit."""
    env = build_env(request.param, tmp_path, with_cases=False)
    settings = Settings(data_dir=tmp_path / "data", api_pseudonym_key="test-pseudonym-key-0123456789",
                        api_trusted_proxies=["127.0.0.1/32"], api_login_max_failures=3,
                        api_max_body_bytes=65536)
    app = create_app(settings, store=env.store, repo=env.repo, clock=env.clock, tokens=env.app.state.tokens)
    server, t, base = serve(app)
    client = httpx.Client(base_url=base, timeout=30)
    yield env, base, client
    client.close()
    server.should_exit = True
    t.join(10)
    env.repo.close()
    env.app.state.tokens.close()
    drop_store(env.store)


def records(env: Any, **kw: Any) -> list[dict[str, Any]]:
    env.refresh()
    return list(env.store.self_audit(limit=500, **kw))


def test_request_bodies_are_limited(proxied):
    env, _, c = proxied
    r = c.post("/api/tokens", headers=env.headers(Role.admin), content=b"{" + b" " * 70000 + b"}",
               )
    assert r.status_code == 413
    r = c.post("/login", content=b"token=" + b"a" * 70000, headers={"Content-Type":
                                                                     "application/x-www-form-urlencoded"})
    assert r.status_code == 413


def test_login_lockout_after_failures_and_every_failure_is_audited(proxied):
    env, _, c = proxied
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    for i in range(3):
        r = c.post("/login", content=f"token=aa_000000000000_{'x' * 43}&next=/console/cases", headers=form)
        assert r.status_code == 401, i
    good = env.tokens["dpo"]
    r = c.post("/login", content=f"token={good}", headers=form)
    assert r.status_code == 429  # locked out: the right token from this address waits too
    logins = [x for x in records(env) if x["action"] == "login"]
    assert [x["status"] for x in logins][::-1] == [401, 401, 401, 429]
    assert all(x["outcome"] == "failure" and good not in str(x) for x in logins)


def test_a_cross_origin_sign_in_form_is_refused(proxied):
    env, base, c = proxied
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    body = f"token={env.tokens['dpo']}"
    r = c.post("/login", content=body, headers={**form, "Origin": "https://evil.example"})
    assert r.status_code == 403 and SESSION_COOKIE not in r.headers.get("set-cookie", "")
    r = c.post("/login", content=body, headers={**form, "Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 403
    # "Origin: null" (what browsers send under our no-referrer policy): Sec-Fetch-Site decides
    r = c.post("/login", content=body, headers={**form, "Origin": "null", "Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 403
    r = c.post("/login", content=body, headers={**form, "Origin": "null"})
    assert r.status_code == 403
    r = c.post("/login", content=body, headers={**form, "Origin": "null", "Sec-Fetch-Site": "same-origin"},
               follow_redirects=False)
    assert r.status_code == 303
    r = c.post("/login", content=body, headers={**form, "Origin": base}, follow_redirects=False)
    assert r.status_code == 303
    assert any(x["action"] == "login" and x["status"] == 403 for x in records(env))


def test_behind_the_tls_proxy_cookies_are_secure_and_hsts_is_sent(proxied):
    env, _, c = proxied
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    r = c.post("/login", content=f"token={env.tokens['dpo']}", follow_redirects=False,
               headers={**form, "X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.20"})
    assert r.status_code == 303
    assert "secure" in r.headers["set-cookie"].lower() and "httponly" in r.headers["set-cookie"].lower()
    assert r.headers["strict-transport-security"].startswith("max-age=")
    h = c.get("/health")
    assert "strict-transport-security" not in h.headers  # plain http without the proxy saying https


def test_the_audit_record_has_the_address_a_trusted_proxy_saw_and_nothing_forged(proxied):
    env, _, c = proxied
    # the proxy (127.0.0.1, trusted) appends the client's address to what the client sent
    c.get("/api/events", headers={**env.headers(Role.dpo), "X-Forwarded-For": "6.6.6.6, 203.0.113.50"},
          params={"q": "user.name:bob"})
    (rec,) = [x for x in records(env) if x["path"] == "/api/events"]
    assert rec["client_ip"] == "203.0.113.50"  # the right-most hop that is not a trusted proxy


def test_without_a_trusted_proxy_x_forwarded_for_is_ignored(tmp_path):
    env = build_env("sqlite", tmp_path, with_cases=False)
    server, t, base = serve(env.app)
    try:
        httpx.get(base + "/api/events", headers={**env.headers(Role.dpo), "X-Forwarded-For": "6.6.6.6"},
                  params={"q": "user.name:bob"}, timeout=30)
        (rec,) = [x for x in env.store.self_audit(limit=10) if x["path"] == "/api/events"]
        assert rec["client_ip"] == "127.0.0.1"
    finally:
        server.should_exit = True
        t.join(10)
        env.repo.close()
        env.app.state.tokens.close()
        env.store.close()


def test_the_access_log_holds_no_queries_or_addresses():
    from access_audit.api.edges import AccessLogFilter

    rec = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                            ("10.1.2.3:5555", "GET", "/api/events?q=user.name:alice", "1.1", 200), None)
    assert AccessLogFilter().filter(rec)
    line = rec.getMessage()
    assert "alice" not in line and "10.1.2.3" not in line and "/api/events" in line
    rec = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                            ("10.1.2.3:5555", "GET", "/api/subjects/c-1/report", "1.1", 200), None)
    AccessLogFilter().filter(rec)
    assert "c-1" not in rec.getMessage()
