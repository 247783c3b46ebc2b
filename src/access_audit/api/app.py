"""The HTTP API and the DPO console: ``create_app(settings, store=None, repo=None, clock=None)``.

Routes (the permission of each is declared with ``auth.require``; see ``auth.PERMISSIONS``)::

    GET  /health                          public      liveness, for the compose file
    GET  /openapi.json                    public      the OpenAPI document
    GET  /login, POST /login              public      token -> console session (cookie)
    POST /logout                          session
    GET  /api/whoami                      session     name, role, permissions
    GET  /api/events                      events:search     q, since, until, order, limit, after (cursor)
    GET  /api/events/export               events:export     the same, streamed as NDJSON or CSV, paged
    GET  /api/aggregations                events:aggregate  top values of fields, a time histogram
    GET  /api/alerts                      alerts:read
    GET  /api/subjects/{id}/report        subjects:report   who accessed data subject {id}'s data
    *    /api/breaches...                 cases:read / cases:write / cases:approve (breach.api router)
    GET  /api/register                    register:read     the breach register, JSON or CSV
    GET/POST/DELETE /api/tokens...        tokens:manage     (not tokens of a role that approves)
    POST /api/dpo/tokens                  cases:approve     a DPO mints an approver token
    GET  /api/audit                       audit:read        the self-audit (DPO clear, auditor pseudonymised)
    POST /slack/interactions              public            Slack's buttons (signed; users mapped to roles)
    GET/POST /console/...                 see access_audit.api.console

Roles without ``see_personal_data`` see pseudonyms everywhere and may filter personal fields by
pseudonym only (docs/privacy.md). Every request is in the self-audit (``api.audit``, ``api.edges``).

The query text (``q``) is the engineers' query language of ``store.query``: it is parsed into our
own model and translated by each store; it never reaches a store as a query string or SQL. A
malformed query is a 400 that says where it went wrong. Every query of the access logs is
recorded in the self-audit (``api.audit``) before its results are returned.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import re
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated, Any, Literal

import orjson
from fastapi import Body, Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from access_audit import __version__
from access_audit.api.audit import SelfAudit, csv_cell
from access_audit.api.auth import (
    PERMISSIONS,
    AuthError,
    Perm,
    Principal,
    PseudonymiseMiddleware,
    Pseudonymiser,
    TokenStore,
    parse_role,
    protect,
    pseudonym_key,
    require,
    route_permission,
)
from access_audit.api.edges import (
    BodyLimitMiddleware,
    LoginThrottle,
    SelfAuditMiddleware,
    is_https,
    trusted_networks,
)
from access_audit.api.privacy import PseudonymIndex, personal_values
from access_audit.core.clock import Clock, SystemClock
from access_audit.core.csvcells import LINE_END
from access_audit.core.errors import ConfigError, QueryError, StoreError, StoreUnavailableError
from access_audit.core.events import Outcome
from access_audit.store.aggregations import check_terms_field_for_pseudonyms
from access_audit.store.query import (
    And,
    Expr,
    MatchAll,
    Not,
    Or,
    PseudonymRefusedError,
    Term,
    for_pseudonyms,
    parse_query,
    parse_when,
)
from access_audit.store.query import Query as EventQuery

MAX_PAGE = 1000
MAX_TERMS = 200
MAX_DEPTH = 16
MAX_EXPORT = 1_000_000
EXPORT_PAGE = 1000
DEFAULT_TOP = ("user.name", "resource.name", "source.ip")
EXPORT_COLUMNS = ("@timestamp", "event.id", "event.dataset", "event.action", "event.outcome", "user.name",
                  "source.ip", "host.name", "service.name", "resource.name", "resource.subject_ids", "labels.purpose",
                  "url.path", "message")

#: the permission of each route of ``breach.api.router``, by endpoint name (a new route without an
#: entry here makes create_app fail: every route must say who may call it)
BREACH_PERMISSIONS: dict[str, Perm] = {
    "list_cases": Perm.cases_read, "show": Perm.cases_read, "clocks": Perm.cases_read, "preview": Perm.cases_read,
    "register": Perm.register_read,
    "open_case": Perm.cases_write, "open_from_alerts": Perm.cases_write, "triage": Perm.cases_write,
    "aware": Perm.cases_write, "dismiss": Perm.cases_write, "edit": Perm.cases_write,
    "milestone": Perm.cases_write, "assess": Perm.cases_write, "no_notification": Perm.cases_write,
    "draft": Perm.cases_write, "supplement": Perm.cases_write, "subjects": Perm.cases_write,
    "close": Perm.cases_write, "reconsider": Perm.cases_write, "subjects_told": Perm.cases_write,
    "dora_report": Perm.cases_write,
    # telling an authority (or taking a notification back) is the DPO's act, as submitting is
    "approve": Perm.cases_approve, "submit": Perm.cases_approve, "notify": Perm.cases_approve,
    "amend": Perm.cases_approve, "withdraw": Perm.cases_approve,
}


# --- cursors and query parameters -------------------------------------------------------------------

def encode_cursor(ts: datetime, event_id: str) -> str:
    """An opaque cursor for the next page: the sort key (@timestamp, id) of the last hit."""
    return base64.urlsafe_b64encode(orjson.dumps([ts.isoformat(), event_id])).rstrip(b"=").decode()


def decode_cursor(text: str) -> tuple[str, str]:
    try:
        ts, eid = orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        datetime.fromisoformat(ts)
        if not isinstance(eid, str) or not re.fullmatch(r"[0-9a-f]{1,64}", eid):
            raise ValueError(eid)
    except (ValueError, TypeError, orjson.JSONDecodeError):
        raise QueryError("invalid cursor 'after': pass the 'next' value of the previous page unchanged") from None
    return ts, eid


def check_complexity(expr: Expr) -> None:
    """Refuse queries that would overflow a store's limits (SQLite's expression depth, Elasticsearch's
    nested bool depth) instead of failing there: at most MAX_TERMS terms and MAX_DEPTH levels."""
    terms, stack = 0, [(expr, 1)]
    while stack:
        e, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise QueryError(f"query nested too deeply (at most {MAX_DEPTH} levels)")
        if isinstance(e, (And, Or)):
            stack += [(x, depth + 1) for x in e.items]
        elif isinstance(e, Not):
            stack.append((e.item, depth + 1))
        elif isinstance(e, Term):
            terms += 1
    if terms > MAX_TERMS:
        raise QueryError(f"query has {terms} terms (at most {MAX_TERMS})")


class QueryParams:
    """The common parameters of the event routes, parsed (QueryError -> 400)."""

    def __init__(self, q: str, since: str | None, until: str | None, now: datetime) -> None:
        self.text = q
        try:
            self.expr = parse_query(q)
        except RecursionError:
            raise QueryError(f"query nested too deeply (at most {MAX_DEPTH} levels)") from None
        check_complexity(self.expr)
        self.since = parse_when(since, now) if since else None
        self.until = parse_when(until, now) if until else None
        if self.since and self.until and self.since >= self.until:
            raise QueryError("'since' must be before 'until'")

    def described(self) -> str:
        parts = [self.text or "*"]
        if self.since:
            parts.append(f"since {self.since.isoformat()}")
        if self.until:
            parts.append(f"until {self.until.isoformat()}")
        return " ".join(parts)


Q = Annotated[str, Query(max_length=4000, description='Query language, e.g. "user.name:alice AND NOT '
                                                      'source.ip:10.0.0.0/8"; empty: everything')]
Since = Annotated[str | None, Query(description="24h, 7d or an ISO 8601 time (inclusive)")]
Until = Annotated[str | None, Query(description="24h, 7d or an ISO 8601 time (exclusive)")]


def resolve_pseudonyms(expr: Expr, p: Principal, store: Any, pseudo: Pseudonymiser, since: datetime | None,
                       until: datetime | None) -> Expr:
    """For a role that sees pseudonyms: the query as ``store.query.for_pseudonyms`` allows it (a
    personal or free-text field is filtered by a pseudonym it was shown, nothing else). A pseudonym
    is resolved through the pseudonym index of this API (every pseudonym it has shown), else among
    the stored values of the field in the time range (computed); its clear value never reaches the
    caller. Raises PseudonymRefusedError (403)."""
    if p.sees_personal_data:
        return expr
    cache: dict[str, dict[str, str]] = {}

    def resolve(field: str, value: str) -> list[str]:
        clear = pseudo.resolve(value)
        if clear is not None:
            return [clear]
        if field not in cache:
            try:
                cand = store.aggregate(EventQuery(since=since, until=until), field, 10_000)
            except QueryError:
                cand = []
            cache[field] = {pseudo(str(v)): str(v) for v, _ in cand}
        found = cache[field].get(value)
        return [found] if found is not None else []

    return for_pseudonyms(expr, resolve, f"your role ({p.role.value})")


def evidence_values(store: Any, event_ids: list[str]) -> set[str]:
    """The personal values of the events with these ids (the evidence of alerts and cases): what
    their titles and texts may name, to be replaced there for a role that sees pseudonyms."""
    ids = list(dict.fromkeys(i for i in event_ids if i))[:5000]
    out: set[str] = set()
    for i in range(0, len(ids), 100):
        chunk = ids[i:i + 100]
        expr: Expr = Or(tuple(Term("event.id", "eq", x) for x in chunk)) if len(chunk) > 1 else \
            Term("event.id", "eq", chunk[0])
        for ev in store.search(EventQuery(expr=expr, limit=len(chunk))):
            out |= personal_values(ev.to_doc())
    return out


def case_values(store: Any, cases: list[Any]) -> set[str]:
    """Personal values of cases' evidence: their alerts' users, addresses and evidence events."""
    out: set[str] = set()
    ids: list[str] = []
    for c in cases:
        for a in c.alerts:
            out |= {v for v in (a.user, a.source_ip) if v}
            ids += a.event_ids
    return out | evidence_values(store, ids)


def protect_alerts(request: Request, docs: Any, alerts: list[Any]) -> Any:
    """Alerts (documents) as the caller may see them: for a role that sees pseudonyms, with the
    personal values of their evidence replaced in titles, resources and context too."""
    if not getattr(request.state, "pseudonymise", True):
        return docs
    request.state.protected = True
    known = evidence_values(request.app.state.store, [i for a in alerts for i in a.event_ids])
    return protect(request, docs, known)


def protect_cases(request: Request, docs: Any, cases: list[Any]) -> Any:
    """Cases, register rows and drafts as the caller may see them: for a role that sees pseudonyms,
    the people in the evidence are pseudonyms wherever they are named (staff stay named)."""
    if not getattr(request.state, "pseudonymise", True):
        return docs
    request.state.protected = True
    known = case_values(request.app.state.store, cases)
    return protect(request, docs, known | {html.escape(v) for v in known})


def protect_audit(request: Request, recs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Self-audit records for a role that sees pseudonyms: the values a query named are replaced in
    its text; a query that did not parse (its values unknown) is one pseudonym as a whole."""
    if not getattr(request.state, "pseudonymise", True):
        return recs
    request.state.protected = True
    pseudo = request.app.state.pseudonymiser
    out = []
    for r in recs:
        r = dict(r)
        if not r.get("parsed", True):
            r["query"] = pseudo(r["query"]) if r.get("query") else r.get("query")
            r["reason"] = pseudo(r["reason"]) if r.get("reason") else r.get("reason")
        known = [*r.get("users", []), *r.get("ips", []), *r.get("subject_ids", []), *r.get("values", [])]
        out.append(pseudo.protect(r, known))
    return out


def register_csv_of(rows: list[dict[str, Any]]) -> str:
    """The register as CSV (breach.register's columns), every cell formula-escaped."""
    from access_audit.breach.register import COLUMNS

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator=LINE_END)
    w.writerow(COLUMNS)
    for row in rows:
        cells = []
        for k in COLUMNS:
            v = row.get(k)
            if k == "supplements":
                v = " | ".join(f"v{x['version']} {x['at']}: {x['text']}" for x in v or [])
            cells.append(csv_cell(v))
        w.writerow(cells)
    return buf.getvalue()


def dotted(doc: dict[str, Any], path: str) -> Any:
    if path.startswith("labels."):
        return (doc.get("labels") or {}).get(path[7:])
    cur: Any = doc
    for part in path.split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


# --- bodies -----------------------------------------------------------------------------------------

class TokenBody(BaseModel):
    role: str
    name: str = Field(min_length=1, max_length=100, description="the named holder of the token")
    ttl_days: float | None = Field(default=None, gt=0, le=3660)


# --- the app ----------------------------------------------------------------------------------------

class SecurityHeadersMiddleware:
    """No caching of personal data, no framing, no sniffing; a strict CSP unless the page set one."""

    def __init__(self, app: Any, trusted: Any = ()) -> None:
        self.app = app
        self.trusted = trusted

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tls = is_https(scope, self.trusted)

        async def wrapped(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                have = {k.lower() for k, _ in headers}
                if tls:  # behind a TLS proxy (or TLS itself): browsers keep to https for a year
                    headers.append((b"strict-transport-security", b"max-age=31536000; includeSubDomains"))
                for k, v in ((b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
                             (b"referrer-policy", b"no-referrer"), (b"cache-control", b"no-store"),
                             (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")):
                    if k not in have:
                        headers.append((k, v))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, wrapped)


def create_app(settings: Any, store: Any = None, repo: Any = None, clock: Clock | None = None, *,
               tokens: TokenStore | None = None, interactions: Any = None) -> FastAPI:
    """The API and the console over ``store`` (default: ``app.open_store(settings)``), the breach
    cases in ``repo`` (default: ``<data_dir>/breach.db``) and the tokens in ``<data_dir>/auth.db``.
    Resources opened here are closed when the app shuts down; those passed in are the caller's."""
    from access_audit.breach.repo import BreachRepo
    from access_audit.breach.workflow import BreachConfig, BreachWorkflow

    clock = clock or SystemClock()
    owned: list[Any] = []
    if store is None:
        from access_audit.store.opening import open_store

        store = open_store(settings)
        owned.append(store)
    if repo is None:
        repo = BreachRepo.from_settings(settings)
        owned.append(repo)
    if tokens is None:
        tokens = TokenStore(settings.data_dir / "auth.db", clock)
        owned.append(tokens)
    wf = BreachWorkflow(repo, clock, BreachConfig.from_settings(settings))

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        for r in owned:
            r.close()

    app = FastAPI(title="access-audit", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None, description=(
                      "Query API over the access events (Elasticsearch or the embedded SQLite store), alerts, "
                      "data-subject access reports, GDPR breach cases and the breach register. Every route "
                      "except /health, /login and /openapi.json needs `Authorization: Bearer <token>` "
                      "(`access-audit tokens create --role ROLE --name HOLDER`); each operation's "
                      "`x-permission` says which permission its role must have."))
    app.state.settings = settings
    app.state.store = store
    app.state.repo = repo
    app.state.workflow = wf
    app.state.clock = clock
    app.state.tokens = tokens
    app.state.interactions = interactions  # notify.interactive.InteractionHandler: POST /slack/interactions
    _private(settings.data_dir)
    index = PseudonymIndex(settings.data_dir / "pseudonyms.db")
    owned.append(index)
    app.state.pseudonymiser = Pseudonymiser(pseudonym_key(settings), index)
    app.state.audit = SelfAudit(store, clock)
    app.state.trusted_proxies = trusted_networks(getattr(settings, "api_trusted_proxies", []))
    app.state.login_throttle = LoginThrottle(int(getattr(settings, "api_login_max_failures", 5)),
                                             float(getattr(settings, "api_login_window_s", 900)))
    app.add_middleware(PseudonymiseMiddleware, pseudonymiser=lambda: app.state.pseudonymiser)
    app.add_middleware(BodyLimitMiddleware, max_bytes=int(getattr(settings, "api_max_body_bytes", 1 << 20)))
    app.add_middleware(SelfAuditMiddleware, state=app.state)
    app.add_middleware(SecurityHeadersMiddleware, trusted=app.state.trusted_proxies)
    _handlers(app)
    _routes(app)
    _mount_breach(app)
    from access_audit.api.console import add_console_routes

    add_console_routes(app)
    for route in app.routes:  # no route without a declared permission
        if isinstance(route, APIRoute) and route_permission(route.dependant) is None:
            raise ConfigError(f"route {sorted(route.methods or ())} {route.path} declares no permission")
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _private(data_dir: Any) -> None:
    """The data directory and its files for the service user only (0700/0600): whoever reads them
    reads everything (see docs/privacy.md)."""
    import contextlib
    import os
    from pathlib import Path

    d = Path(data_dir)
    with contextlib.suppress(OSError):
        d.mkdir(parents=True, exist_ok=True)
        os.chmod(d, 0o700)
        for f in d.iterdir():
            if f.is_file():
                os.chmod(f, 0o600)


def _openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    from fastapi.openapi.utils import get_openapi

    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    schema.setdefault("components", {})["securitySchemes"] = {
        "bearer": {"type": "http", "scheme": "bearer", "description": "an access-audit API token"}}
    for route in app.routes:
        if not isinstance(route, APIRoute) or not route.include_in_schema:
            continue
        perm = route_permission(route.dependant)
        for method in route.methods or ():
            op = schema["paths"].get(route.path_format, {}).get(method.lower())
            if op is not None and perm is not None:
                op["x-permission"] = perm.value
                op["x-roles"] = sorted(r.value for r, ps in PERMISSIONS.items() if perm in ps) \
                    if perm is not Perm.public else ["anyone"]
                if perm is not Perm.public:
                    op["security"] = [{"bearer": []}]
    app.openapi_schema = schema
    return schema


def _handlers(app: FastAPI) -> None:
    @app.exception_handler(AuthError)
    async def auth_error(request: Request, e: AuthError) -> Response:
        if e.html:
            if e.status == 401:
                nxt = request.url.path if request.method == "GET" else "/console/cases"
                return RedirectResponse(f"/login?next={nxt}", status_code=303)
            from access_audit.api.console import error_page

            return error_page(request, e.status, e.detail)
        headers = {"WWW-Authenticate": 'Bearer realm="access-audit"'} if e.status == 401 else None
        return JSONResponse({"detail": e.detail}, status_code=e.status, headers=headers)

    @app.exception_handler(PseudonymRefusedError)
    async def refused(_: Request, e: PseudonymRefusedError) -> Response:
        return JSONResponse({"detail": str(e)}, status_code=403)

    @app.exception_handler(QueryError)
    async def query_error(_: Request, e: QueryError) -> Response:
        return JSONResponse({"detail": f"invalid query: {e}"}, status_code=400)

    @app.exception_handler(OverflowError)
    async def overflow(_: Request, e: OverflowError) -> Response:
        return JSONResponse({"detail": "invalid query: a number or time is out of range"}, status_code=400)

    @app.exception_handler(StoreUnavailableError)
    async def unavailable(_: Request, e: StoreUnavailableError) -> Response:
        return JSONResponse({"detail": f"the event store is unavailable, try again: {e}"}, status_code=503,
                            headers={"Retry-After": "5"})

    @app.exception_handler(StoreError)
    async def store_error(_: Request, e: StoreError) -> Response:
        return JSONResponse({"detail": f"the event store refused the request: {e}"}, status_code=502)


def _who(request: Request) -> str | None:
    from access_audit.api.edges import client_ip

    return client_ip(request.scope, request.app.state.trusted_proxies)


def audit(request: Request, p: Principal, action: str, query: str, **kw: Any) -> None:
    """Record one read (raises when it cannot: the results are then withheld). The request is then
    marked, so the self-audit middleware does not record it a second time."""
    request.app.state.audit.record(actor=p.actor, role=p.role.value, token_id=p.token_id, action=action,
                                   query=query, path=request.url.path, method=request.method,
                                   client_ip=_who(request), interface="console" if p.via == "session" else "api",
                                   **kw)
    request.state.audited = True


def parse_params(request: Request, p: Principal, action: str, q: str, since: str | None,
                 until: str | None) -> QueryParams:
    """Parse the query parameters; a refused query is recorded too (outcome failure), then raised."""
    st = request.app.state
    try:
        qp = QueryParams(q, since, until, st.clock.now())
        qp.expr = resolve_pseudonyms(qp.expr, p, st.store, st.pseudonymiser, qp.since, qp.until)
    except (QueryError, AuthError) as e:
        status = 403 if isinstance(e, (PseudonymRefusedError, AuthError)) else 400
        audit(request, p, action, q or "*", outcome=Outcome.failure, reason=str(e)[:500], status=status,
              parsed=False)
        raise
    return qp


def _routes(app: FastAPI) -> None:
    st = app.state

    @app.get("/health", tags=["meta"], dependencies=[require(Perm.public)])
    def health() -> dict[str, Any]:
        return {"status": "ok", "version": __version__, "store": type(st.store).__name__}

    @app.get("/healthz", tags=["meta"], dependencies=[require(Perm.public)])
    def healthz() -> dict[str, Any]:
        """Liveness: the process answers (for container probes)."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["meta"], dependencies=[require(Perm.public)])
    def readyz() -> JSONResponse:
        """Readiness: the store answers a query. 503 with the reason when it does not."""
        from access_audit.store.query import Query as _Query

        try:
            st.store.count(_Query(limit=1))
        except Exception as e:  # any store failure means: do not send traffic here yet
            return JSONResponse({"status": "unavailable", "store": f"{type(e).__name__}: {e}"[:300]},
                                status_code=503)
        return JSONResponse({"status": "ready", "store": "ok"})

    @app.get("/openapi.json", include_in_schema=False, dependencies=[require(Perm.public)])
    def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False, dependencies=[require(Perm.public)])
    def docs() -> Response:
        """Swagger UI over /openapi.json, every file served from here (no CDN, works air-gapped)."""
        return HTMLResponse(_DOCS_HTML, headers={"Content-Security-Policy": _DOCS_CSP, "Cache-Control": "no-store"})

    @app.get("/docs/assets/{name}", include_in_schema=False, dependencies=[require(Perm.public)])
    def docs_asset(name: str) -> Response:
        if name == "init.js":
            return Response(_DOCS_INIT, media_type="text/javascript")
        kind = _DOCS_ASSETS.get(name)
        if kind is None:
            raise HTTPException(404, "not found")
        from importlib.resources import files

        # fastapi-offline ships Swagger UI 5 (OpenAPI 3.1, which FastAPI writes); we serve its files ourselves
        return Response((files("fastapi_offline") / "static" / name).read_bytes(), media_type=kind,
                        headers={"Cache-Control": "public, max-age=86400"})

    @app.post("/slack/interactions", include_in_schema=False, dependencies=[require(Perm.public)])
    async def slack_interactions(request: Request) -> Response:
        """Slack's buttons: signed by Slack (the signing secret), each clicking user authorised
        through ``slack_user_roles``. 404 when ``serve`` has no signing secret configured."""
        handler = st.interactions
        if handler is None:
            raise HTTPException(404, "Slack interactions are not configured (ACCESS_AUDIT_SLACK_SIGNING_SECRET)")
        body = await request.body()
        status, headers, out = await run_in_threadpool(handler.handle, dict(request.headers), body)
        request.state.audit_action = "slack_action"
        return Response(out, status_code=status, headers=headers)

    @app.get("/api/whoami", tags=["meta"])
    def whoami(p: Annotated[Principal, require(Perm.session)]) -> dict[str, Any]:
        return {"name": p.name, "role": p.role.value, "token_id": p.token_id,
                "permissions": sorted(x.value for x in PERMISSIONS[p.role]),
                "pseudonymised": not p.sees_personal_data}

    @app.get("/api/events", tags=["events"])
    def events(request: Request, p: Annotated[Principal, require(Perm.events_search)], q: Q = "",
               since: Since = None, until: Until = None, order: Literal["desc", "asc"] = "desc",
               limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
               after: Annotated[str | None, Query(description="the 'next' cursor of the previous page")] = None,
               ) -> dict[str, Any]:
        """Events matching the query, newest first (or oldest with order=asc), one page at a time:
        pass ``next`` back as ``after`` for the next page (search_after; deep pages stay cheap)."""
        qp = parse_params(request, p, "search", q, since, until)
        try:
            cursor = decode_cursor(after) if after else None
        except QueryError as e:
            audit(request, p, "search", qp.described(), outcome=Outcome.failure, reason=str(e))
            raise
        found = st.store.search(EventQuery(expr=qp.expr, since=qp.since, until=qp.until, limit=limit, order=order,
                                           after=cursor))
        audit(request, p, "search", qp.described(), expr=qp.expr, hits=len(found), status=200)
        nxt = encode_cursor(found[-1].timestamp, found[-1].id) if len(found) == limit else None
        return {"events": [e.to_doc() for e in found], "next": nxt, "count": len(found)}

    @app.get("/api/events/export", tags=["events"])
    def export(request: Request, p: Annotated[Principal, require(Perm.events_export)], q: Q = "",
               since: Since = None, until: Until = None, order: Literal["desc", "asc"] = "desc",
               limit: Annotated[int, Query(ge=1, le=MAX_EXPORT)] = 10_000,
               format: Literal["ndjson", "csv"] = "ndjson") -> Response:
        """Every matching event (up to ``limit``), streamed page by page: NDJSON (one ECS document
        per line) or CSV (the main columns)."""
        qp = parse_params(request, p, "export", q, since, until)
        audit(request, p, "export", f"{qp.described()} (limit {limit}, {format})", expr=qp.expr, status=200)

        def pages() -> Iterator[list[dict[str, Any]]]:
            after: tuple[str, str] | None = None
            left = limit
            while left > 0:
                page = st.store.search(EventQuery(expr=qp.expr, since=qp.since, until=qp.until,
                                                  limit=min(EXPORT_PAGE, left), order=order, after=after))
                if not page:
                    return
                yield [protect(request, e.to_doc()) for e in page]
                left -= len(page)
                if len(page) < EXPORT_PAGE:
                    return
                after = (page[-1].timestamp.isoformat(), page[-1].id)

        def ndjson() -> Iterator[bytes]:
            for docs in pages():
                yield b"".join(orjson.dumps(d) + b"\n" for d in docs)

        def as_csv() -> Iterator[str]:
            buf = io.StringIO()
            w = csv.writer(buf, lineterminator=LINE_END)
            w.writerow(EXPORT_COLUMNS)
            for docs in pages():
                for d in docs:
                    w.writerow([csv_cell(dotted(d, c)) for c in EXPORT_COLUMNS])
                yield buf.getvalue()
                buf.seek(0)
                buf.truncate()
            if buf.getvalue():
                yield buf.getvalue()

        name = f"access-events.{format}"
        headers = {"Content-Disposition": f'attachment; filename="{name}"'}
        if format == "csv":
            return StreamingResponse(as_csv(), media_type="text/csv; charset=utf-8", headers=headers)
        return StreamingResponse(ndjson(), media_type="application/x-ndjson", headers=headers)

    @app.get("/api/aggregations", tags=["events"])
    def aggregations(request: Request, p: Annotated[Principal, require(Perm.events_aggregate)], q: Q = "",
                     since: Since = None, until: Until = None,
                     field: Annotated[list[str] | None, Query(description="fields to count (repeatable); default "
                                                              "user.name, resource.name, source.ip")] = None,
                     size: Annotated[int, Query(ge=1, le=1000)] = 10,
                     interval: Annotated[str | None, Query(description="histogram interval: 30s, 5m, 1h, 1d, 1w; "
                                                           "none for no histogram")] = "1h") -> dict[str, Any]:
        """The most frequent users, resources and source addresses (or the given fields) and the
        number of events per interval, for the events matching the query."""
        qp = parse_params(request, p, "aggregate", q, since, until)
        eq = EventQuery(expr=qp.expr, since=qp.since, until=qp.until)
        fields = list(dict.fromkeys(field or DEFAULT_TOP))
        try:
            if len(fields) > 10:
                raise QueryError("at most 10 fields at once")
            for f in fields:
                if not p.sees_personal_data:
                    check_terms_field_for_pseudonyms(f, f"your role ({p.role.value})")
            top = {f: [{f: v, "events": n} for v, n in st.store.aggregate(eq, f, size)] for f in fields}
            hist = st.store.histogram(eq, interval) if interval else None
        except QueryError as e:
            audit(request, p, "aggregate", f"{qp.described()} by {', '.join(fields)}", outcome=Outcome.failure,
                  reason=str(e), status=403 if isinstance(e, PseudonymRefusedError) else 400)
            raise
        audit(request, p, "aggregate", f"{qp.described()} by {', '.join(fields)}", expr=qp.expr,
              hits=sum(n for _, n in hist) if hist is not None else None, status=200)
        return {"top": top, "histogram": None if hist is None else {
            "interval": interval, "buckets": [{"start": t.isoformat(), "events": n} for t, n in hist]}}

    @app.get("/api/alerts", tags=["alerts"])
    def alerts(request: Request, p: Annotated[Principal, require(Perm.alerts_read)], rule_id: str | None = None,
               limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100) -> dict[str, Any]:
        """The latest alerts (by last seen), optionally of one rule. For a role that sees pseudonyms,
        every personal value of an alert and of its evidence is a pseudonym, in its texts too."""
        found = st.store.alerts(rule_id=rule_id, limit=limit)
        audit(request, p, "alerts", f"alerts rule_id={rule_id or '*'} limit={limit}", hits=len(found), status=200)
        return {"alerts": protect_alerts(request, [a.to_doc() for a in found], found), "count": len(found)}

    @app.get("/api/subjects/{subject_id}/report", tags=["subjects"])
    def subject_report(request: Request, p: Annotated[Principal, require(Perm.subjects_report)], subject_id: str,
                       since: Since = None, until: Until = None, q: Q = "",
                       purpose: Annotated[str | None, Query(max_length=200, description="why this report is made, "
                                                            "e.g. 'Art. 15 request 2026-014' (recorded)")] = None,
                       format: Literal["json", "csv"] = "json", events: bool = True) -> Any:
        """Who accessed the data of data subject ``subject_id``: per actor when, from where,
        through which service and for what declared purpose, and every access (Art. 15 GDPR)."""
        from access_audit.store.subject_report import CSV_COLUMNS, access_row
        from access_audit.store.subject_report import subject_report as build

        if not subject_id.strip() or len(subject_id) > 200:
            raise QueryError("a subject id of 1 to 200 characters is needed")
        qp = parse_params(request, p, "subject_report", q, since, until)
        rep = build(st.store, subject_id, now=st.clock.now(), since=qp.since, until=qp.until,
                    extra=None if isinstance(qp.expr, MatchAll) else qp.expr)
        lookups = st.store.self_audit(subject_id=subject_id, since=qp.since, until=qp.until, limit=10_000) \
            if p.can(Perm.audit_read) else None
        audit(request, p, "subject_report", f"subject {subject_id}" + (f" AND ({q})" if q else ""), expr=qp.expr,
              hits=rep.total, subject_ids=[subject_id], purpose=purpose, status=200)
        if format == "csv":
            buf = io.StringIO()
            w = csv.writer(buf, lineterminator=LINE_END)
            w.writerow(CSV_COLUMNS)
            for ev in rep.accesses:
                row = protect(request, access_row(ev))
                w.writerow([csv_cell(row[c]) for c in CSV_COLUMNS])
            return PlainTextResponse(buf.getvalue(), media_type="text/csv; charset=utf-8", headers={
                "Content-Disposition": f'attachment; filename="subject-report-{_safe_name(subject_id)}.csv"'})
        doc = rep.to_json(with_events=events)
        if lookups is not None:  # who looked this subject up (the self-audit), for the roles that may see it
            doc["lookups"] = [{k: r.get(k) for k in ("@timestamp", "actor", "role", "token_id", "interface",
                                                     "action", "purpose", "outcome")} for r in lookups]
        return doc

    @app.get("/api/register", tags=["breach"])
    def register(request: Request, p: Annotated[Principal, require(Perm.register_read)], format: Literal["json",
                 "csv"] = "json") -> Any:
        """The breach register (GDPR Art. 33(5)): every case, notified or not. The export is recorded."""
        from access_audit.breach.register import register_rows

        cases = st.repo.list()
        audit(request, p, "export", f"breach register ({format})", hits=len(cases), status=200)
        rows = protect_cases(request, register_rows(cases, st.workflow.config.tz), cases)
        if format == "csv":
            return PlainTextResponse(register_csv_of(rows), media_type="text/csv; charset=utf-8",
                                     headers={"Content-Disposition": 'attachment; filename="breach-register.csv"'})
        return {"cases": rows}

    @app.get("/api/tokens", tags=["tokens"])
    def list_tokens(request: Request, p: Annotated[Principal, require(Perm.tokens_manage)]) -> dict[str, Any]:
        now = st.clock.now()
        found = st.tokens.list()
        audit(request, p, "tokens_list", "tokens", hits=len(found), status=200)
        return {"tokens": [t.to_json(now) for t in found]}

    def mint(request: Request, p: Principal, body: TokenBody) -> dict[str, Any]:
        try:
            role = parse_role(body.role)
        except ConfigError as e:
            raise HTTPException(422, str(e)) from None
        approver = Perm.cases_approve in PERMISSIONS[role]
        if approver and not p.can(Perm.cases_approve):
            request.state.audit_action = "token_create"
            request.state.audit_reason = f"refused: a {role.value} token approves notifications; only a DPO mints one"
            raise AuthError(403, f"a {role.value} token approves notifications: only a DPO can mint one "
                                 "(POST /api/dpo/tokens), or the bootstrap step (access-audit tokens create)")
        if not approver and not p.can(Perm.tokens_manage):
            raise AuthError(403, f"your role ({p.role.value}) mints DPO tokens only")
        token, info = st.tokens.create(role, body.name, body.ttl_days or settings_ttl(st.settings),
                                       issued_by=p.signature)
        audit(request, p, "token_create", f"token {info.id} for {info.name} ({role.value})", status=201,
              target_token=info.id, target_role=role.value, holder=info.name)
        return {"token": token, **info.to_json(st.clock.now())}

    @app.post("/api/tokens", tags=["tokens"], status_code=201)
    def create_token(request: Request, p: Annotated[Principal, require(Perm.tokens_manage)],
                     body: Annotated[TokenBody, Body()]) -> dict[str, Any]:
        """A new token for a named holder; the token itself is in this response only. Tokens of a
        role that approves notifications (dpo) are minted by a DPO only (separation of duties)."""
        return mint(request, p, body)

    @app.post("/api/dpo/tokens", tags=["tokens"], status_code=201)
    def create_dpo_token(request: Request, p: Annotated[Principal, require(Perm.cases_approve)],
                         body: Annotated[TokenBody, Body()]) -> dict[str, Any]:
        """A DPO mints a token of a role that approves notifications (a deputy DPO, a successor)."""
        return mint(request, p, body)

    @app.delete("/api/tokens/{token_id}", tags=["tokens"])
    def revoke_token(request: Request, p: Annotated[Principal, require(Perm.tokens_manage)],
                     token_id: str) -> dict[str, Any]:
        if not st.tokens.revoke(token_id, by=p.signature):
            raise HTTPException(404, f"no token {token_id!r}")
        audit(request, p, "token_revoke", f"token {token_id}", status=200, target_token=token_id)
        return {"revoked": token_id}

    @app.get("/api/audit", tags=["audit"])
    def self_audit(request: Request, p: Annotated[Principal, require(Perm.audit_read)],
                   since: Since = None, until: Until = None,
                   actor: Annotated[str | None, Query(max_length=200)] = None,
                   subject_id: Annotated[str | None, Query(max_length=200)] = None,
                   limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100) -> dict[str, Any]:
        """The self-audit, newest first: who read what, who was refused, with which token. For a
        role that sees pseudonyms, the people named in the queries are pseudonyms (staff stay named)."""
        now = st.clock.now()
        s, u = (parse_when(since, now) if since else None), (parse_when(until, now) if until else None)
        recs = st.store.self_audit(since=s, until=u, actor=actor, subject_id=subject_id, limit=limit)
        audit(request, p, "audit_read", f"self-audit actor={actor or '*'} subject={subject_id or '*'}",
              hits=len(recs), status=200, subject_ids=[subject_id] if subject_id else None)
        return {"records": protect_audit(request, recs), "count": len(recs)}


def interaction_handler(settings: Any, store: Any, workflow: Any) -> Any:
    """The Slack interactive endpoint's handler for ``serve``: None without a signing secret. Every
    clicking Slack user must be in ``slack_user_roles`` with a role that may work cases."""
    from access_audit.api.auth import allowed
    from access_audit.notify.interactive import InteractionHandler, SignatureVerifier, role_authoriser
    from access_audit.notify.slack import SlackNotifier, read_secret

    secret = read_secret(settings.slack_signing_secret, settings.slack_signing_secret_file)
    if not secret:
        return None
    notifier = SlackNotifier.from_settings(settings)

    def may(role: str, action: str) -> bool:
        try:
            return allowed(parse_role(role), Perm.cases_write)
        except ConfigError:
            return False

    def escalate(alerts: list[Any], by: str) -> str | None:
        from access_audit.breach.prefill import open_case_from_alerts

        case = open_case_from_alerts(alerts, store, workflow.repo, workflow.clock, f"slack:{by}",
                                     config=workflow.config, source="slack")
        return str(case.id)

    return InteractionHandler(notifier, SignatureVerifier(secret), store=store, on_escalate=escalate,
                              authorise=role_authoriser(settings.slack_user_roles, may))


def settings_ttl(settings: Any) -> float:
    return float(getattr(settings, "api_token_ttl_days", 90))


def _safe_name(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", s)[:60]


def _mount_breach(app: FastAPI) -> None:
    """The breach workflow's router under /api, each route with its permission, acting as the
    token's holder (``<holder> (token <id>)``: approvals and every step record the token), on this
    app's workflow and store. For a role that sees pseudonyms, the people in a case's evidence are
    pseudonyms in every answer (JSON through the middleware, drafts and the CSV register here)."""
    from access_audit.breach import api as breach_api

    def actor(request: Request) -> str:
        return str(request.state.principal.signature)

    def evidence(request: Request) -> None:
        if not getattr(request.state, "pseudonymise", True):
            return
        wf = app.state.workflow
        case_id = request.path_params.get("case_id")
        try:
            cases = [wf.get(case_id)] if case_id else wf.repo.list()
        except Exception:  # an unknown case: the route answers 404
            cases = []
        known = case_values(app.state.store, cases)
        request.state.known = known | {html.escape(v) for v in known}

    replaced: dict[str, Callable[..., Any]] = {"preview": _preview, "register": _breach_register}
    app.dependency_overrides[breach_api.get_workflow] = lambda: app.state.workflow
    app.dependency_overrides[breach_api.get_event_store] = lambda: app.state.store
    app.dependency_overrides[breach_api.get_actor] = actor
    for r in breach_api.router.routes:
        if not isinstance(r, APIRoute):
            continue
        perm = BREACH_PERMISSIONS.get(r.name)
        if perm is None:
            raise ConfigError(f"breach route {r.name} ({r.path}) has no permission in api.app.BREACH_PERMISSIONS")
        app.add_api_route("/api" + r.path, replaced.get(r.name, r.endpoint), methods=sorted(r.methods or ()),
                          status_code=r.status_code, response_model=r.response_model,
                          response_class=r.response_class,
                          dependencies=[require(perm), Depends(evidence), *r.dependencies],
                          tags=list(r.tags) or ["breach"], summary=r.summary, description=r.description,
                          name=f"breach_{r.name}", responses=dict(r.responses), include_in_schema=r.include_in_schema,
                          openapi_extra=r.openapi_extra)


def _preview(request: Request, case_id: str, kind: str, lang: str = "nl",
             format: Annotated[str, Query(pattern="^(md|html|pdf)$")] = "md") -> Response:
    """Render a draft without recording it (422 lists the missing elements). For a role that sees
    pseudonyms, the people in the evidence are pseudonyms in the text, the HTML and the PDF."""
    from access_audit.breach import drafts
    from access_audit.breach.model import BreachError, CaseNotFoundError

    wf = request.app.state.workflow
    try:
        case = wf.get(case_id)
        res = drafts.render(case, kind, lang, tz=wf.config.tz, now=wf.clock.now())
    except CaseNotFoundError as e:
        raise HTTPException(404, e.message) from None
    except BreachError as e:
        raise HTTPException(422, e.message) from None
    if res.markdown is None or res.html is None:
        raise HTTPException(422, {"detail": res.missing_text(), "missing": [m.__dict__ for m in res.missing]})
    md, page = protect_cases(request, [res.markdown, res.html], [case])
    if format == "html":
        return HTMLResponse(page)
    if format == "pdf":
        try:
            return Response(drafts.to_pdf(page), media_type="application/pdf")
        except BreachError as e:
            raise HTTPException(501, e.message) from None
    return PlainTextResponse(md, media_type="text/markdown")


def _breach_register(request: Request, format: Annotated[str, Query(pattern="^(json|csv)$")] = "json") -> Any:
    """The breach register (JSON rows or CSV), pseudonymised for the roles that see pseudonyms."""
    from access_audit.breach.register import register_rows

    st = request.app.state
    cases = st.repo.list()
    rows = protect_cases(request, register_rows(cases, st.workflow.config.tz), cases)
    if format == "csv":
        return PlainTextResponse(register_csv_of(rows), media_type="text/csv")
    return rows


# --- /docs: Swagger UI from the fastapi-offline package ---------------------------------------------

_DOCS_ASSETS = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css", "favicon.png": "image/png"}
# Swagger UI sets style attributes from script: styles need 'unsafe-inline'; scripts come from here only.
_DOCS_CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
             "font-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
_DOCS_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>access-audit API</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
<link rel="icon" type="image/png" href="/docs/assets/favicon.png"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/assets/init.js"></script></body></html>
"""
_DOCS_INIT = """window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true,
  persistAuthorization: false, presets: [SwaggerUIBundle.presets.apis], layout: "BaseLayout"});
"""
