"""The DPO console: server-rendered pages (jinja2, autoescaped, StrictUndefined, sandboxed), a
little JavaScript for the countdowns, no front-end build.

    GET  /login, POST /login         the API token -> a session cookie (HttpOnly, SameSite=Strict)
    POST /logout
    GET  /console                    -> /console/cases
    GET  /console/cases              open cases, a live countdown for every legal clock
    POST /console/cases              open a case from selected alerts
    GET  /console/cases/{id}         clocks, next step, risk worksheet, draft (edit, render, approve,
                                     submit), evidence, timeline
    POST /console/cases/{id}/<step>  one workflow step (triage, awareness, dismissal, details,
                                     assessment, no-notification, draft, approval, submission,
                                     subjects-decision, closure), then back to the case (303)
    GET  /console/alerts             the alert list (?rule_id=, ?since=&until= on first seen)
    GET  /console/activity           access events and alerts over time, top users, resources and
                                     source addresses; every bar and row links to its query
    GET  /console/subjects           a form: which data subject's report (?subject_id= -> the report)
    GET  /console/subjects/{id}      who saw data subject {id}'s data (Art. 15): per actor who, role,
                                     from where, through which service, for what purpose; every
                                     access on a timeline; who looked the subject up (self-audit)
    GET  /console/register           the breach register, with CSV and JSON export

Forms post ``application/x-www-form-urlencoded`` with the session's CSRF token. Every page shows
data through ``auth.protect``: an auditor sees pseudonyms. Countdowns are computed from the
server's clock (``data-now``) so a wrong client clock does not move a deadline.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import FileSystemLoader, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool

from access_audit.api.auth import (
    SESSION_COOKIE,
    AuthError,
    Perm,
    Principal,
    form_fields,
    protect,
    require,
)
from access_audit.breach.machine import NEXT_STEP
from access_audit.breach.model import (
    BreachDetails,
    BreachError,
    BreachState,
    BreachType,
    CaseNotFoundError,
    DataCategory,
    DataEffect,
    Protection,
    RiskLevel,
    SubjectsDecisionKind,
)
from access_audit.breach.risk import Consequences, Identifiability, RiskWorksheet
from access_audit.core.errors import QueryError
from access_audit.core.events import Outcome

TEMPLATES = Path(__file__).parent / "templates"
S = BreachState
H24, H6 = 24 * 3600, 6 * 3600

DONE = {
    "opened": "Case opened.", "triage": "Triage started.",
    "awareness": "Awareness time recorded: the legal clocks are running.",
    "dismissal": "Recorded as not a breach.", "details": "Case details saved.",
    "assessment": "Risk assessment recorded.", "no-notification": "Recorded that no notification is needed.",
    "draft": "Draft rendered and kept on the case.", "approval": "Draft approved.",
    "submission": "Submission to the authority recorded.", "subjects-decision": "Decision on the data subjects "
    "recorded.", "closure": "Case closed.",
}
SECTION = {"assessment": "risk", "draft": "draft", "approval": "draft", "submission": "draft", "details": "draft"}
TEXT_DETAILS = ("summary", "cause", "likely_consequences", "measures_taken", "measures_proposed", "advice_to_subjects")
NUMBER_DETAILS = ("subjects_min", "subjects_max", "records_min", "records_max")
LIST_DETAILS = {"breach_types": BreachType, "data_effects": DataEffect, "data_categories": DataCategory}
COMMA_DETAILS = ("subject_categories", "systems")


@lru_cache(maxsize=1)
def _env() -> SandboxedEnvironment:
    env = SandboxedEnvironment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=True, undefined=StrictUndefined,
                               trim_blocks=True, lstrip_blocks=True)
    env.filters["label"] = lambda v: str(v).replace("_", " ")
    return env


@lru_cache(maxsize=1)
def _assets() -> tuple[Markup, Markup]:
    return Markup((TEMPLATES / "console.css").read_text()), Markup((TEMPLATES / "countdown.js").read_text())


def due_class(remaining: int | None, status: str) -> str:
    """The colour class of a clock: due-later, due-24h (< 24 h), due-6h (< 6 h), overdue."""
    if status == "overdue" or (remaining is not None and remaining < 0):
        return "overdue"
    if remaining is None:
        return "due-none"
    return "due-6h" if remaining < H6 else "due-24h" if remaining < H24 else "due-later"


def page(request: Request, template: str, *, status: int = 200, principal: Principal | None = None,
         **ctx: Any) -> HTMLResponse:
    """Render a console page with its own CSP nonce (inline CSS and JS are allowed by nonce only)."""
    nonce = secrets.token_urlsafe(16)
    css, js = _assets()
    now = request.app.state.clock.now()
    p = principal or getattr(request.state, "principal", None)
    can = {perm.value: bool(p and p.can(perm)) for perm in Perm}
    html = _env().get_template(template).render(
        nonce=nonce, css=css, js=js, now_iso=now.isoformat(), principal=p, can=can,
        csrf=p.csrf if p and p.csrf else "", pseudonymised=bool(p and not p.sees_personal_data),
        flash=ctx.pop("flash", None), error=ctx.pop("error", None), **ctx)
    csp = (f"default-src 'none'; style-src 'nonce-{nonce}'; script-src 'nonce-{nonce}'; img-src 'self' data:; "
           "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
    return HTMLResponse(html, status_code=status, headers={"Content-Security-Policy": csp})


def error_page(request: Request, status: int, detail: str) -> HTMLResponse:
    title = {403: "Not allowed", 404: "Not found"}.get(status, "Error")
    return page(request, "error.html", status=status, title=title, detail=detail, nav="")


# --- forms ------------------------------------------------------------------------------------------

class Form:
    def __init__(self, fields: dict[str, list[str]]) -> None:
        self.fields = fields

    def get(self, name: str) -> str | None:
        v = (self.fields.get(name) or [""])[0].strip()
        return v or None

    def list(self, name: str) -> list[str]:
        return [v for v in self.fields.get(name, []) if v.strip()]

    def flag(self, name: str) -> bool:
        return self.get(name) in ("on", "true", "1", "yes")

    def int(self, name: str) -> int | None:
        v = self.get(name)
        if v is None:
            return None
        try:
            return int(v)
        except ValueError:
            raise BreachError(f"{name.replace('_', ' ')} must be a whole number (got {v!r})") from None

    def time(self, name: str, tz: ZoneInfo) -> datetime | None:
        """A ``datetime-local`` value, read in the organisation's time zone (or ISO with an offset)."""
        v = self.get(name)
        if v is None:
            return None
        try:
            t = datetime.fromisoformat(v.replace("Z", "+00:00"))
        except ValueError:
            raise BreachError(f"{name.replace('_', ' ')}: not a date and time ({v!r})") from None
        return t if t.tzinfo else t.replace(tzinfo=tz)


async def _form(request: Request) -> Form:
    return Form(form_fields(await request.body()))


def _local_input(t: datetime | None, tz: ZoneInfo) -> str:
    return t.astimezone(tz).strftime("%Y-%m-%dT%H:%M") if t else ""


# --- view models ------------------------------------------------------------------------------------

def _clocks(wf: Any, case: Any) -> list[dict[str, Any]]:
    out = []
    for s in wf.clocks(case):
        j = s.to_json(wf.config.tz)
        j["css"] = due_class(j["remaining_seconds"], j["status"])
        out.append(j)
    return out


def _case_view(request: Request, case_id: str) -> dict[str, Any]:
    from markdown_it import MarkdownIt

    from access_audit.breach.service import case_json

    st = request.app.state
    wf = st.workflow
    case = wf.get(case_id)
    doc = case_json(wf, case)
    doc["clocks"] = _clocks(wf, case)
    latest = case.latest_draft("authority")
    doc["draft_html"] = MarkdownIt("commonmark", {"html": False}).render(latest.markdown) if latest else None
    doc = protect_cases(request, doc, [case])
    if doc["draft_html"] is not None:
        doc["draft_html"] = Markup(doc["draft_html"])  # markdown-it with raw HTML disabled: escaped text only
    tz = wf.config.tz
    ws = (case.risk.worksheet if case.risk else RiskWorksheet.from_case(case).model_dump(mode="json"))
    state = case.state
    return {
        "case": doc, "state": state.value, "next_step": NEXT_STEP[state],
        "ws": ws, "tz": wf.config.timezone, "now_local": _local_input(st.clock.now(), tz),
        "occurred_from": _local_input(case.occurred_from, tz), "occurred_to": _local_input(case.occurred_to, tz),
        "detected_at": _local_input(case.detected_at, tz),
        "show": {
            "triage": state is S.reported,
            "awareness": state in (S.reported, S.triage),
            "dismissal": state in (S.reported, S.triage),
            "assessment": state in (S.confirmed, S.assessed, S.no_notification_needed, S.notification_drafted,
                                    S.approved, S.submitted, S.subjects_decided),
            "no_notification": state is S.assessed,
            "details": state is not S.closed,
            "draft": state in (S.assessed, S.notification_drafted, S.approved),
            "approval": state is S.notification_drafted,
            "submission": state is S.approved,
            "subjects": state is S.submitted,
            "closure": state in (S.not_a_breach, S.no_notification_needed, S.subjects_decided),
        },
        "enums": {"breach_types": list(BreachType), "data_effects": list(DataEffect),
                  "data_categories": list(DataCategory), "protection": list(Protection),
                  "identifiability": list(Identifiability), "consequences": list(Consequences),
                  "risk_levels": list(RiskLevel), "subjects_decisions": list(SubjectsDecisionKind)},
    }


# --- the activity page ------------------------------------------------------------------------------

TOP_FIELDS = (("user.name", "Top users"), ("resource.name", "Top resources"), ("source.ip", "Top source addresses"))
MAX_ACTIVITY_DAYS = 366


def query_text(field: str, value: str) -> str:
    """``field:"value"`` in the query language (quotes and backslashes escaped)."""
    return f'{field}:"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def events_link(q: str, since: datetime, until: datetime) -> dict[str, str]:
    """The query behind a bar or a row: the API's search URL and the same query for the CLI."""
    s, u = _iso(since), _iso(until)
    quoted = "'" + q.replace("'", "'\\''") + "' " if q else ""  # one shell word, as typed
    cli = f"access-audit query {quoted}--since {s} --until {u}"
    return {"q": q, "href": "/api/events?" + urlencode({"q": q, "since": s, "until": u, "order": "asc",
                                                         "limit": 1000}), "cli": cli}


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def bars(buckets: list[tuple[datetime, int]], seconds: int, lo: datetime, hi: datetime, tz: ZoneInfo, fmt: str,
         link: Callable[[datetime, datetime], dict[str, str]] | None = None) -> dict[str, Any]:
    """An SVG bar chart's model: one bar per bucket (x, height in a 100-high box), each linked to
    what it counts (default: the search of its events), the bucket cut to the page's range as the
    store counted it."""
    to = link or (lambda a, b: events_link("", a, b))
    top = max((n for _, n in buckets), default=0)
    out = []
    for i, (t, n) in enumerate(buckets):
        end = t + timedelta(seconds=seconds)
        out.append({"x": i * 10, "h": round(100 * n / top, 2) if top else 0, "n": n, "start": _iso(t),
                    "label": t.astimezone(tz).strftime(fmt), "link": to(max(t, lo), min(end, hi)) if n else None})
    return {"bars": out, "max": top, "total": sum(n for _, n in buckets), "width": max(len(out), 1) * 10}


def alerts_link(since: datetime, until: datetime) -> dict[str, str]:
    """The alerts of one bar: the console's alert list, by first seen."""
    return {"q": "", "cli": "", "href": "/console/alerts?" + urlencode({"since": _iso(since), "until": _iso(until)})}


def alert_days(alerts: list[Any], since: datetime, until: datetime) -> dict[datetime, int]:
    from access_audit.store.aggregations import bucket_start

    counts: dict[datetime, int] = {}
    for a in alerts:
        if since <= a.first_seen < until:
            day = bucket_start(a.first_seen, 86400)
            counts[day] = counts.get(day, 0) + 1
    return counts


def subject_view(doc: dict[str, Any], tz: ZoneInfo) -> dict[str, Any]:
    """A subject report (its JSON, already protected) as the page shows it: local times, an index
    per actor (its colour on the timeline), the accesses oldest first, the lookups newest first."""
    def local(t: str | None) -> str:
        return datetime.fromisoformat(t).astimezone(tz).strftime("%Y-%m-%d %H:%M:%S") if t else "—"

    actors = []
    index: dict[str, int] = {}
    for i, a in enumerate(doc["actors"]):
        key = a["user"] or (a["source_ips"][0] if a["source_ips"] else "")
        index.setdefault(key, i)
        actors.append({**a, "n": i, "who": a["user"] or "(no user)", "first_local": local(a["first"]),
                       "last_local": local(a["last"])})
    accesses = []
    for x in doc.get("accesses", []):
        key = x["user"] or x["source_ip"] or ""
        accesses.append({**x, "n": index.get(key, 0), "when": local(x["@timestamp"]),
                         "iso": x["@timestamp"], "who": x["user"] or "(no user)"})
    lookups = None
    if "lookups" in doc:
        lookups = [{**r, "when": local(r["@timestamp"])} for r in sorted(doc["lookups"],
                   key=lambda r: r["@timestamp"], reverse=True)]
    return {**doc, "actors": actors, "accesses": accesses, "lookups": lookups,
            "first_local": local(doc["first"]), "last_local": local(doc["last"])}


# --- routes -----------------------------------------------------------------------------------------

def protect_cases(request: Request, docs: Any, cases: list[Any]) -> Any:
    from access_audit.api.app import protect_cases as pc

    return pc(request, docs, cases)


def protect_alerts(request: Request, docs: Any, alerts: list[Any]) -> Any:
    from access_audit.api.app import protect_alerts as pa

    return pa(request, docs, alerts)


def add_console_routes(app: FastAPI) -> None:
    st = app.state

    @app.get("/login", tags=["console"], include_in_schema=False, dependencies=[require(Perm.public)])
    def login_form(request: Request, next: str = "/console/cases") -> HTMLResponse:
        return page(request, "login.html", next=_local_path(next), nav="")

    @app.post("/login", tags=["console"], dependencies=[require(Perm.public)])
    async def login(request: Request) -> Response:
        """The console's sign-in: a form with the API token; answers with a session cookie."""
        from access_audit.api.edges import client_ip, is_https

        if not _same_origin(request):
            request.state.audit_action = "login"
            request.state.audit_reason = f"refused: cross-origin sign-in from {request.headers.get('origin')!r}"
            return page(request, "login.html", status=403, next="/console/cases", nav="",
                        error="Sign-in refused: the form was not sent from this site.")
        f = await _form(request)
        nxt = _local_path(f.get("next") or "/console/cases")
        ip = client_ip(request.scope, st.trusted_proxies) or "?"
        raw = f.get("token") or ""
        tid = raw.split("_")[1] if raw.startswith("aa_") and raw.count("_") >= 2 else ""
        keys = (f"ip:{ip}", f"token:{tid}" if tid else "")
        throttle = st.login_throttle
        request.state.audit_action = "login"
        request.state.audit_token_id = tid[:12] or None
        if throttle.locked(*keys):
            request.state.audit_reason = "locked out: too many failed sign-ins"
            return page(request, "login.html", status=429, next=nxt, nav="",
                        error="Too many failed sign-ins: try again later.")
        try:
            info = st.tokens.verify(raw)
        except AuthError as e:
            throttle.failed(*keys)
            request.state.audit_reason = f"sign-in failed: {e.detail}"
            return page(request, "login.html", status=401, next=nxt, nav="", error=f"Sign-in failed: {e.detail}.")
        throttle.succeeded(*keys)
        sid, _ = st.tokens.start_session(info)
        request.state.audit_actor = info.name
        request.state.audit_reason = f"signed in as {info.name} ({info.role.value}) with token {info.id}"
        request.state.audit_token_id = info.id
        resp = RedirectResponse(nxt, status_code=303)
        resp.set_cookie(SESSION_COOKIE, sid, httponly=True, samesite="strict", path="/",
                        secure=is_https(request.scope, st.trusted_proxies),
                        max_age=int(min(timedelta(hours=12), info.expires - st.clock.now()).total_seconds()))
        return resp

    @app.post("/logout", tags=["console"], include_in_schema=False)
    async def logout(request: Request, _: Annotated[Principal, require(Perm.session, html=True)]) -> Response:
        sid = request.cookies.get(SESSION_COOKIE)
        if sid:
            st.tokens.end_session(sid)
        resp = RedirectResponse("/login", status_code=303)
        resp.delete_cookie(SESSION_COOKIE, path="/")
        return resp

    @app.get("/console", include_in_schema=False)
    def console_home(_: Annotated[Principal, require(Perm.session, html=True)]) -> Response:
        return RedirectResponse("/console/cases", status_code=303)

    @app.get("/console/cases", include_in_schema=False)
    def cases_page(request: Request, _: Annotated[Principal, require(Perm.cases_read, html=True)], all: bool = False,
                   done: str | None = None) -> HTMLResponse:
        wf = st.workflow
        rows = []
        listed = []
        for c in wf.repo.list(open_only=not all):
            if not all and c.state in (S.closed, S.not_a_breach):
                continue
            listed.append(c)
            clocks = [k for k in _clocks(wf, c) if k["status"] in ("open", "overdue")]
            rows.append({"id": c.id, "title": c.details.title or "(untitled)", "state": c.state.value,
                         "opened_at": c.opened_at.astimezone(wf.config.tz).strftime("%Y-%m-%d %H:%M"),
                         "clocks": clocks, "next_step": NEXT_STEP[c.state],
                         "soonest": min((k["remaining_seconds"] for k in clocks), default=None)})
        rows.sort(key=lambda r: (r["soonest"] is None, r["soonest"] or 0, r["id"]))
        return page(request, "cases.html", cases=protect_cases(request, rows, listed), all=all, nav="cases",
                    flash=DONE.get(done or ""))

    @app.post("/console/cases", include_in_schema=False)
    async def open_from_alerts(request: Request, p: Annotated[Principal, require(Perm.cases_write,
                               html=True)]) -> Response:
        from access_audit.breach.prefill import open_case_from_alerts

        f = await _form(request)
        ids = f.list("alert_id")
        by_id = {a.id: a for a in await run_in_threadpool(st.store.alerts, limit=100_000)}
        chosen = [by_id[i] for i in ids if i in by_id]
        if not chosen:
            return error_page(request, 422, "Select at least one alert to open a case from.")
        try:
            case = await run_in_threadpool(open_case_from_alerts, chosen, st.store, st.repo, st.clock, p.signature,
                                           config=st.workflow.config, source="console", existing="refuse")
        except BreachError as e:  # e.g. an alert already in a case: say which, open no duplicate
            return error_page(request, 409, str(e))
        return RedirectResponse(f"/console/cases/{quote(case.id)}?done=opened", status_code=303)

    @app.get("/console/cases/{case_id}", include_in_schema=False)
    def case_page(request: Request, _: Annotated[Principal, require(Perm.cases_read, html=True)], case_id: str,
                  done: str | None = None) -> HTMLResponse:
        try:
            view = _case_view(request, case_id)
        except CaseNotFoundError as e:
            return error_page(request, 404, e.message)
        return page(request, "case.html", nav="cases", flash=DONE.get(done or ""), **view)

    def step(name: str, perm: Perm) -> None:
        async def run(request: Request, case_id: str) -> Response:
            p: Principal = request.state.principal  # set by the route's require(perm)
            f = await _form(request)
            try:
                await run_in_threadpool(_apply, st.workflow, name, case_id, p.signature, f)
            except CaseNotFoundError as e:
                return error_page(request, 404, e.message)
            except BreachError as e:
                view = _case_view(request, case_id)
                return page(request, "case.html", status=409, nav="cases", error=e.message, **view)
            anchor = SECTION.get(name, "top")
            return RedirectResponse(f"/console/cases/{quote(case_id)}?done={name}#{anchor}", status_code=303)

        run.__name__ = f"console_{name.replace('-', '_')}"
        app.add_api_route(f"/console/cases/{{case_id}}/{name}", run, methods=["POST"], include_in_schema=False,
                          name=run.__name__, dependencies=[require(perm, html=True)])

    for name in ("triage", "awareness", "dismissal", "details", "assessment", "no-notification", "draft",
                 "subjects-decision", "closure"):
        step(name, Perm.cases_write)
    for name in ("approval", "submission"):
        step(name, Perm.cases_approve)

    @app.get("/console/alerts", include_in_schema=False)
    def alerts_page(request: Request, _: Annotated[Principal, require(Perm.alerts_read, html=True)],
                    rule_id: str | None = None, since: str | None = None, until: str | None = None) -> HTMLResponse:
        from access_audit.store.query import parse_when

        tz = st.workflow.config.tz
        try:
            lo = parse_when(since, st.clock.now()) if since else None
            hi = parse_when(until, st.clock.now()) if until else None
        except QueryError as e:
            return error_page(request, 400, str(e))
        found = st.store.alerts(rule_id=rule_id, limit=500 if lo is None and hi is None else 100_000)
        if lo is not None or hi is not None:  # the alerts of one bar of the activity page (by first seen)
            found = [a for a in found if (lo is None or a.first_seen >= lo) and (hi is None or a.first_seen < hi)]
        rows = [{**a.to_doc(), "first": a.first_seen.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
                 "last": a.last_seen.astimezone(tz).strftime("%Y-%m-%d %H:%M")} for a in found]
        return page(request, "alerts.html", alerts=protect_alerts(request, rows, found), rule_id=rule_id,
                    nav="alerts", since=since or "", until=until or "")

    @app.get("/console/activity", include_in_schema=False)
    def activity_page(request: Request, p: Annotated[Principal, require(Perm.events_aggregate, html=True)],
                      days: int = 7, since: str | None = None, until: str | None = None) -> HTMLResponse:
        """Access events per hour and per day, alerts per day, the top users, resources and source
        addresses of a time range (default the last 7 days); each bar and row links to its query.
        Values are shown as the role may see them (pseudonyms), and the read is in the self-audit."""
        from access_audit.api.app import QueryParams, audit
        from access_audit.store.aggregations import check_terms_field_for_pseudonyms, fill
        from access_audit.store.query import Query as EventQuery

        tz = st.workflow.config.tz
        now = st.clock.now()
        try:
            if not 1 <= days <= MAX_ACTIVITY_DAYS:
                raise QueryError(f"days must be between 1 and {MAX_ACTIVITY_DAYS} (got {days})")
            qp = QueryParams("", since, until, now)
            hi = qp.until or now
            lo = qp.since or hi - timedelta(days=days)
            if lo >= hi:
                raise QueryError("'since' must be before 'until'")
            if (hi - lo) > timedelta(days=MAX_ACTIVITY_DAYS):
                raise QueryError(f"at most {MAX_ACTIVITY_DAYS} days at once")
        except QueryError as e:
            audit(request, p, "aggregate", "activity page", outcome=Outcome.failure, reason=str(e)[:500], status=400)
            return error_page(request, 400, str(e))
        eq = EventQuery(since=lo, until=hi)
        hourly = (hi - lo) <= timedelta(days=31)
        step = 3600 if hourly else 86400
        if not p.sees_personal_data:
            for f, _ in TOP_FIELDS:
                check_terms_field_for_pseudonyms(f, f"your role ({p.role.value})")
        per_step = st.store.histogram(eq, "1h" if hourly else "1d")
        per_day = st.store.histogram(eq, "1d")
        tops = {f: [{f: str(v), "events": n} for v, n in st.store.aggregate(eq, f, 10)] for f, _ in TOP_FIELDS}
        described = f"activity since {lo.isoformat()} until {hi.isoformat()} by {', '.join(tops)}"
        audit(request, p, "aggregate", described, hits=sum(n for _, n in per_day), status=200)
        request.state.protected = True
        tops = protect(request, tops)  # pseudonyms for a role that sees them (as /api/aggregations)
        lists = []
        for f, title in TOP_FIELDS:
            most = max((r["events"] for r in tops[f]), default=0)
            lists.append({"field": f, "title": title, "max": most, "rows": [
                {"value": r[f], "events": r["events"], "link": events_link(query_text(f, r[f]), lo, hi)}
                for r in tops[f]]})
        alerts = None
        if p.can(Perm.alerts_read):
            counts = alert_days(st.store.alerts(limit=100_000), lo, hi)
            alerts = bars(fill(counts, eq, 86400), 86400, lo, hi, tz, "%a %d %b", alerts_link)
        return page(request, "activity.html", nav="activity", tz=st.workflow.config.timezone,
                    since=_iso(lo), until=_iso(hi), since_local=lo.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
                    until_local=hi.astimezone(tz).strftime("%Y-%m-%d %H:%M"), days=days,
                    per_step=bars(per_step, step, lo, hi, tz, "%a %d %b %H:00" if hourly else "%a %d %b"),
                    per_day=bars(per_day, 86400, lo, hi, tz, "%a %d %b"), hourly=hourly, lists=lists,
                    alerts=alerts,
                    all_events=events_link("", lo, hi))

    @app.get("/console/subjects", include_in_schema=False)
    def subjects_form(request: Request, _: Annotated[Principal, require(Perm.subjects_report, html=True)],
                      subject_id: str | None = None, purpose: str | None = None) -> Response:
        """The form for a subject report; submitted, it leads to the report's page."""
        sid = (subject_id or "").strip()
        if not sid:
            blank = subject_id is not None  # the form was sent empty
            return page(request, "subject.html", status=422 if blank else 200, nav="subjects", report=None,
                        subject_id="", purpose=purpose or "", error="Enter a data subject id." if blank else None)
        query = "?" + urlencode({"purpose": purpose}) if purpose else ""
        return RedirectResponse(f"/console/subjects/{quote(sid, safe='')}{query}", status_code=303)

    @app.get("/console/subjects/{subject_id:path}", include_in_schema=False)  # an id may hold a "/"
    def subject_page(request: Request, p: Annotated[Principal, require(Perm.subjects_report, html=True)],
                     subject_id: str, since: str | None = None, until: str | None = None,
                     purpose: str | None = None) -> HTMLResponse:
        """The subject access report of /api/subjects/{id}/report as a page: the same permission, the
        same self-audit record (with the purpose), the same pseudonyms for a role that sees them."""
        from access_audit.api.app import audit, parse_params
        from access_audit.store.subject_report import subject_report as build

        if not subject_id.strip() or len(subject_id) > 200 or (purpose and len(purpose) > 200):
            return error_page(request, 400, "A subject id (and a purpose) of 1 to 200 characters is needed.")
        try:
            qp = parse_params(request, p, "subject_report", "", since, until)
        except QueryError as e:
            return error_page(request, 400, str(e))
        rep = build(st.store, subject_id, now=st.clock.now(), since=qp.since, until=qp.until)
        lookups = st.store.self_audit(subject_id=subject_id, since=qp.since, until=qp.until, limit=10_000) \
            if p.can(Perm.audit_read) else None
        audit(request, p, "subject_report", f"subject {subject_id}", expr=qp.expr, hits=rep.total,
              subject_ids=[subject_id], purpose=purpose, status=200)
        doc = rep.to_json()
        if lookups is not None:
            doc["lookups"] = [{k: r.get(k) for k in ("@timestamp", "actor", "role", "token_id", "interface",
                                                     "action", "purpose", "outcome")} for r in lookups]
        request.state.protected = True
        doc = protect(request, doc)  # pseudonyms for a role that sees them (as the API's JSON)
        return page(request, "subject.html", nav="subjects", report=subject_view(doc, st.workflow.config.tz),
                    subject_id=doc["subject_id"], purpose=purpose or "", tz=st.workflow.config.timezone,
                    csv_href=f"/api/subjects/{quote(subject_id, safe='')}/report?" + urlencode(
                        {k: v for k, v in (("format", "csv"), ("since", since), ("until", until),
                                           ("purpose", purpose)) if v}))

    @app.get("/console/register", include_in_schema=False)
    def register_page(request: Request, _: Annotated[Principal, require(Perm.register_read,
                      html=True)]) -> HTMLResponse:
        from access_audit.breach.register import register_rows

        cases = st.repo.list()
        rows = register_rows(cases, st.workflow.config.tz)
        return page(request, "register.html", rows=protect_cases(request, rows, cases), nav="register")

    @app.get("/console/audit", include_in_schema=False)
    def audit_page(request: Request, _: Annotated[Principal, require(Perm.audit_read, html=True)],
                   actor: str | None = None) -> HTMLResponse:
        """Who did what with which token: the self-audit, newest first."""
        from access_audit.api.app import protect_audit

        recs = st.store.self_audit(actor=actor or None, limit=500)
        return page(request, "audit.html", records=protect_audit(request, recs), actor=actor or "", nav="audit")


def _same_origin(request: Request) -> bool:
    """A sign-in form sent from this site: no ``Origin`` (not a browser), or an ``Origin`` equal to
    this server's own (as the client sees it, through a trusted proxy too) or a configured one;
    ``Sec-Fetch-Site: cross-site`` is refused as well."""
    from access_audit.api.edges import is_https

    if request.headers.get("sec-fetch-site", "").lower() == "cross-site":
        return False
    origin = request.headers.get("origin")
    if origin is None:
        return True
    if origin == "null":
        # Our Referrer-Policy (no-referrer) makes browsers send "Origin: null" on form posts: then
        # the browser's own Sec-Fetch-Site says whether the form came from this site.
        return request.headers.get("sec-fetch-site", "").lower() == "same-origin"
    st = request.app.state
    scheme = "https" if is_https(request.scope, st.trusted_proxies) else request.url.scheme
    own = {f"{scheme}://{request.headers.get('host', '')}".lower()}
    fwd = request.headers.get("x-forwarded-host")
    if fwd and request.client and request.client.host and \
            st.trusted_proxies and any(_ip_in(request.client.host, n) for n in st.trusted_proxies):
        own.add(f"https://{fwd}".lower())
    allowed = own | {o.rstrip("/").lower() for o in getattr(st.settings, "api_allowed_origins", [])}
    return origin.rstrip("/").lower() in allowed


def _ip_in(ip: str, net: Any) -> bool:
    import ipaddress

    try:
        return ipaddress.ip_address(ip) in net
    except ValueError:
        return False


def _local_path(p: str) -> str:
    """Only a path on this site (no open redirect to //evil or https://evil)."""
    return p if p.startswith("/") and not p.startswith("//") and "\\" not in p else "/console/cases"


def _apply(wf: Any, name: str, case_id: str, actor: str, f: Form) -> None:
    """Run one console form through the workflow (BreachError: refused, with the reason)."""
    tz = wf.config.tz
    if name == "triage":
        wf.start_triage(case_id, actor, f.get("reason"))
    elif name == "awareness":
        at = f.time("at", tz)
        if at is None:
            raise BreachError("give the time the organisation became aware")
        doubts = [] if f.get("confirm") else wf.awareness_doubts(wf.get(case_id), at)
        if doubts:  # as the CLI and the API ask (issue 13): every clock runs from this time
            raise BreachError(f"the awareness time is {' and '.join(doubts)}: check it, or tick "
                              "'the time is right'")
        wf.set_awareness(case_id, actor, at, f.get("reason") or "", by=f.get("by"))
    elif name == "dismissal":
        wf.dismiss(case_id, actor, f.get("reason") or "")
    elif name == "details":
        wf.edit(case_id, actor, _detail_changes(wf.get(case_id), f, tz), f.get("reason") or "edited in the console")
    elif name == "assessment":
        answers: dict[str, Any] = {
            "breach_types": f.list("breach_types"), "data_categories": f.list("data_categories"),
            "identifiability": f.get("identifiability"), "consequences": f.get("consequences"),
            "individuals": f.int("individuals"), "records": f.int("records"),
            "malicious": f.flag("malicious"), "unknown_recipients": f.flag("unknown_recipients"),
            "vulnerable_individuals": f.flag("vulnerable_individuals"), "unintelligible": f.flag("unintelligible"),
            "controller_context": f.get("controller_context"),
        }
        over = f.get("overrule_to")
        wf.assess(case_id, actor, answers, overrule_to=RiskLevel(over) if over else None,
                  overrule_reason=f.get("overrule_reason"))
    elif name == "no-notification":
        wf.skip_notification(case_id, actor, f.get("reason") or "")
    elif name == "draft":
        _, res = wf.draft(case_id, actor, f.get("kind") or "authority", f.get("lang") or "nl",
                          phased=f.flag("phased"))
        if res.markdown is None:
            raise BreachError(res.missing_text() + "\nFill them in under 'Edit the case details', or render a "
                              "phased notification (Art. 33(4)).")
    elif name == "approval":
        wf.approve(case_id, actor, delay_reasons=f.get("delay_reasons"), phased_reason=f.get("phased_reason"))
    elif name == "submission":
        wf.submit(case_id, actor, channel=f.get("channel") or "", reference=f.get("reference") or "",
                  at=f.time("at", tz))
    elif name == "subjects-decision":
        d = f.get("decision")
        if d not in {k.value for k in SubjectsDecisionKind}:
            raise BreachError("choose a decision on telling the data subjects")
        wf.decide_subjects(case_id, actor, SubjectsDecisionKind(d), f.get("reasoning") or "",
                           communicated_at=f.time("communicated_at", tz), channel=f.get("channel"))
    elif name == "closure":
        wf.close(case_id, actor, f.get("reason") or "")
    else:  # pragma: no cover - the routes are made from the names above
        raise BreachError(f"unknown step {name}")


def _detail_changes(case: Any, f: Form, tz: ZoneInfo) -> dict[str, Any]:
    """Only what the form changed (unchanged fields keep their provenance)."""
    cur = case.details.model_dump(mode="json")
    new: dict[str, Any] = {}
    for k in TEXT_DETAILS:
        new[k] = f.get(k)
    for k in NUMBER_DETAILS:
        new[k] = f.int(k)
    for k in LIST_DETAILS:
        new[k] = f.list(k)
    for k in COMMA_DETAILS:
        new[k] = [x.strip() for x in (f.get(k) or "").split(",") if x.strip()]
    new["protection"] = f.get("protection") or "unknown"
    for k in ("cross_border", "malicious"):
        v = f.get(k)
        new[k] = None if v in (None, "unknown") else v == "yes"
    changes = {k: v for k, v in new.items() if k in BreachDetails.model_fields and cur.get(k) != v}
    for k in ("occurred_from", "occurred_to", "detected_at"):
        t = f.time(k, tz)
        if _local_input(t, tz) != _local_input(getattr(case, k), tz):  # the form has minutes only
            changes[k] = t.isoformat() if t else None
    return changes
