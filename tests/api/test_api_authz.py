"""The authorization matrix: every route of the app x (no token, a garbage token, an expired token,
a revoked token, each role) -> the status the permission map says. And no route without an
explicit permission: checked by walking each route's dependencies."""

from __future__ import annotations

import re

import pytest
from fastapi.routing import APIRoute

from access_audit.api.auth import PERMISSIONS, Perm, Role, route_permission

NOBODY = ("none", "garbage", "expired", "revoked")
WHO = (*NOBODY, *(r.value for r in Role))


def routes(app) -> list[tuple[str, str, Perm, bool]]:
    out = []
    for r in app.routes:
        assert isinstance(r, APIRoute), f"{r} is not an APIRoute: it would escape the permission check"
        perm = route_permission(r.dependant)
        assert perm is not None, f"{sorted(r.methods)} {r.path} declares no permission"
        html = any(getattr(d.call, "html", False) for d in r.dependant.dependencies)
        for m in sorted(r.methods - {"HEAD"}):
            out.append((m, r.path, perm, html))
    return out


def concrete(path: str, env) -> str:
    values = {"case_id": env.case_ids["urgent"], "subject_id": "c-1", "token_id": "000000000000",
              "kind": "authority", "number": "1", "name": "swagger-ui.css"}
    return re.sub(r"\{(\w+)\}", lambda m: values[m[1]], path)


def call(env, method: str, path: str, who: str):
    headers = env.headers(None if who == "none" else who)
    kw = {}
    if method in ("POST", "PATCH", "PUT"):
        kw = {"json": {}} if path.startswith("/api/") else {"data": {}}
    return env.client.request(method, concrete(path, env), headers=headers, follow_redirects=False, **kw)


def test_every_route_declares_a_permission_and_every_permission_is_used(sqlite_env):
    table = routes(sqlite_env.app)
    assert len(table) >= 45
    used = {perm for *_, perm, _ in table}
    assert used == set(Perm) - {Perm.see_personal_data}, "a permission no route uses is dead weight"
    public = sorted(p for _, p, perm, _ in table if perm is Perm.public)
    assert public == ["/docs", "/docs/assets/{name}", "/health", "/healthz", "/login", "/login", "/openapi.json",
                      "/readyz", "/slack/interactions"]  # Slack signs its requests


def test_liveness_and_readiness_need_no_token(sqlite_env):
    assert sqlite_env.client.get("/healthz").json() == {"status": "ok"}
    r = sqlite_env.client.get("/readyz")
    assert r.status_code == 200 and r.json()["status"] == "ready"
    sqlite_env.store.close()  # a store that no longer answers: not ready, and says why
    r = sqlite_env.client.get("/readyz")
    assert r.status_code == 503 and r.json()["status"] == "unavailable" and r.json()["store"]


def test_the_matrix(sqlite_env):
    env = sqlite_env
    env.app.state.login_throttle.max_failures = 10_000  # the lockout has its own test (test_edges)
    checked = 0
    for method, path, perm, html in routes(env.app):
        statuses = {}
        for who in WHO:
            r = call(env, method, path, who)
            statuses[who] = r.status_code
            role = None if who in NOBODY else Role(who)
            where = f"{method} {path} as {who}: {r.status_code} {r.text[:200]}"
            if perm is Perm.public:
                continue
            if role is None:
                if html:
                    assert r.status_code == 303 and r.headers["location"].startswith("/login?next="), where
                else:
                    assert r.status_code == 401, where
                    assert r.headers["www-authenticate"].startswith("Bearer")
            elif perm in PERMISSIONS[role]:
                assert r.status_code not in (401, 403) and r.status_code < 500, where
                assert not (r.status_code == 303 and r.headers["location"].startswith("/login?next=")), where
            else:
                assert r.status_code == 403, where
            checked += 1
        if perm is Perm.public:  # the same answer whoever asks
            assert len(set(statuses.values())) == 1, (method, path, statuses)
    assert checked > 300


@pytest.mark.parametrize("who", ["expired", "revoked"])
def test_expired_and_revoked_tokens_say_why(sqlite_env, who):
    r = sqlite_env.client.get("/api/whoami", headers=sqlite_env.headers(who))
    assert r.status_code == 401 and r.json() == {"detail": f"token {who}"}


def test_a_revoked_token_stops_working_at_once(sqlite_env):
    env = sqlite_env
    token, info = env.app.state.tokens.create(Role.dpo, "leaver")
    h = {"Authorization": f"Bearer {token}"}
    assert env.client.get("/api/whoami", headers=h).json()["name"] == "leaver"
    r = env.client.delete(f"/api/tokens/{info.id}", headers=env.headers(Role.admin))
    assert r.status_code == 200
    assert env.client.get("/api/whoami", headers=h).status_code == 401


def test_tokens_expire_with_the_clock(sqlite_env):
    env = sqlite_env
    r = env.client.post("/api/tokens", json={"role": "analyst", "name": "temp", "ttl_days": 1},
                        headers=env.headers(Role.admin))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["role"] == "security_analyst" and body["token"].startswith("aa_")
    h = {"Authorization": f"Bearer {body['token']}"}
    assert env.client.get("/api/whoami", headers=h).status_code == 200
    env.clock.advance(days=1)
    assert env.client.get("/api/whoami", headers=h).status_code == 401
    listed = {t["id"]: t for t in env.client.get("/api/tokens", headers=env.headers(Role.admin)).json()["tokens"]}
    assert listed[body["id"]]["state"] == "expired" and "token" not in listed[body["id"]]
    assert env.client.post("/api/tokens", json={"role": "root"}, headers=env.headers(Role.admin)).status_code == 422


def test_tokens_are_stored_hashed(sqlite_env):
    env = sqlite_env
    raw = (env.settings.data_dir / "auth.db").read_bytes()
    for t in env.tokens.values():
        assert t.encode() not in raw and t[16:].encode() not in raw  # the secret may itself hold "_"


def test_openapi_is_public_and_says_who_may_call_what(sqlite_env):
    r = sqlite_env.client.get("/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    ops = [(p, m, op) for p, item in doc["paths"].items() for m, op in item.items()]
    assert {"/api/events", "/api/aggregations", "/api/alerts", "/api/subjects/{subject_id}/report",
            "/api/register", "/api/breaches/{case_id}/approval", "/health"} <= set(doc["paths"])
    for p, m, op in ops:
        assert op.get("x-permission"), (p, m)
    approve = doc["paths"]["/api/breaches/{case_id}/approval"]["post"]
    assert approve["x-permission"] == "cases:approve" and approve["x-roles"] == ["dpo"]
    # what reaches an authority is the DPO's act; the analysts' steps on a case are cases:write
    for path in ("/api/breaches/{case_id}/notifications", "/api/breaches/{case_id}/notifications/{number}/amendments",
                 "/api/breaches/{case_id}/notifications/{number}/withdrawal"):
        assert doc["paths"][path]["post"]["x-roles"] == ["dpo"], path
    for path in ("/api/breaches/{case_id}/reconsideration", "/api/breaches/{case_id}/subjects-told",
                 "/api/breaches/{case_id}/dora-reports"):
        assert doc["paths"][path]["post"]["x-permission"] == "cases:write", path
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    # Swagger UI served from the package: every script and style from here, none from a CDN
    docs = sqlite_env.client.get("/docs")
    assert docs.status_code == 200 and "script-src 'self'" in docs.headers["content-security-policy"]
    refs = re.findall(r'(?:src|href)="([^"]+)"', docs.text)
    assert refs and all(r.startswith("/docs/assets/") for r in refs), refs
    for r in refs:
        assert sqlite_env.client.get(r).status_code == 200, r
    assert "SwaggerUIBundle" in sqlite_env.client.get("/docs/assets/swagger-ui-bundle.js").text
    assert sqlite_env.client.get("/docs/assets/..%2Fpyproject.toml").status_code == 404
    assert sqlite_env.client.get("/docs/assets/index.html").status_code == 404
