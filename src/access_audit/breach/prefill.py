"""Prefill a case from alerts and the event store, and say where every figure came from.

For each actor in the alerts (the user, else the source address), the events of that actor in the
alert's window are read back from the store through the EventStore port (``search`` with
``Query``/``Term``, paged with ``after``; the same on SQLite and Elasticsearch). Every successful
request that touched a data subject counts as one record read; the data subjects are the event's
``resource.subject_ids`` (set by the parser or the resource catalogue) or, when those are empty,
an id in the URL path (``/api/customers/<id>``). From that come: the distinct data subjects, the
records, the systems, the data categories, what happened to the data (read / altered / deleted)
and the breach window. Each prefilled field carries a provenance text with the query that
reproduces it.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from access_audit.breach.model import BreachCase, BreachError, BreachType, DataCategory, DataEffect, data_category
from access_audit.breach.repo import BreachRepo
from access_audit.core.alerts import Alert
from access_audit.core.clock import Clock
from access_audit.core.events import AccessEvent, Outcome
from access_audit.core.ports import EventStore
from access_audit.store.query import Query, Term

#: URL path segments that name a data subject: /<collection>/<id>; the id starts with a digit or is a UUID
DEFAULT_SUBJECT_PATTERNS: tuple[str, ...] = (
    r"/(?P<kind>customers|clients|patients|members|employees|persons|people|users|accounts|policyholders|insured"
    r"|students|applicants|citizens)/(?P<id>\d[\w-]*|[0-9a-fA-F]{8}-[0-9a-fA-F-]{27})(?=/|$)",
)
_WRITE = {"PUT": DataEffect.altered, "PATCH": DataEffect.altered, "POST": DataEffect.altered,
          "DELETE": DataEffect.deleted}
PAGE = 1000


@dataclass
class ActorFindings:
    term: Term
    label: str  # "user dmulder" / "address 203.0.113.7"
    since: datetime
    until: datetime
    lookback: timedelta = timedelta(0)
    events: int = 0
    failed: int = 0
    records: int = 0
    subjects: set[str] = field(default_factory=set)  # from since - lookback
    strict_subjects: set[str] = field(default_factory=set)  # from since (the alert's own window)
    strict_records: int = 0
    subject_source: Counter[str] = field(default_factory=Counter)  # resource.subject_ids / url.path
    subject_kinds: Counter[str] = field(default_factory=Counter)
    paths: Counter[str] = field(default_factory=Counter)
    systems: Counter[str] = field(default_factory=Counter)
    categories: set[str] = field(default_factory=set)
    effects: set[DataEffect] = field(default_factory=set)
    first: datetime | None = None
    last: datetime | None = None


@dataclass
class Prefill:
    """What the evidence says, as case fields, and where each came from."""

    details: dict[str, Any]
    provenance: dict[str, str]
    occurred_from: datetime | None
    occurred_to: datetime | None
    findings: list[ActorFindings]


def _actor_term(a: Alert) -> tuple[Term, str] | None:
    if a.user:
        return Term("user.name", "eq", a.user), f"user {a.user}"
    if a.source_ip:
        return Term("source.ip", "eq", a.source_ip), f"address {a.source_ip}"
    return None


def _windows(alerts: Iterable[Alert]) -> list[tuple[Term, str, datetime, datetime]]:
    """One (actor, since, until) per actor, the union of its alerts' windows (merged when they overlap)."""
    by: dict[tuple[str, str | float | None], list[tuple[datetime, datetime, str]]] = {}
    for a in alerts:
        t = _actor_term(a)
        if t is None:
            continue
        by.setdefault((t[0].field, t[0].value), []).append((a.first_seen, a.last_seen, t[1]))
    out: list[tuple[Term, str, datetime, datetime]] = []
    for (fname, value), spans in by.items():
        spans.sort()
        cur_a, cur_b, label = spans[0]
        for s0, s1, _ in spans[1:]:
            if s0 <= cur_b:
                cur_b = max(cur_b, s1)
            else:
                out.append((Term(fname, "eq", value), label, cur_a, cur_b))
                cur_a, cur_b = s0, s1
        out.append((Term(fname, "eq", value), label, cur_a, cur_b))
    return out


def iter_events(store: EventStore, term: Term, since: datetime, until: datetime,
                max_events: int = 1_000_000) -> Iterator[AccessEvent]:
    """Every event matching ``term`` in [since, until], oldest first, paged through ``store.search``."""
    after: tuple[str, str] | None = None
    seen = 0
    while seen < max_events:
        page = store.search(Query(expr=term, since=since, until=until + timedelta(milliseconds=1), limit=PAGE,
                                  order="asc", after=after))
        yield from page
        seen += len(page)
        if len(page) < PAGE:
            return
        last = page[-1]
        after = (last.timestamp.isoformat(), last.id)


def subjects_of(ev: AccessEvent, patterns: list[re.Pattern[str]]) -> tuple[list[str], str, str | None]:
    """(data-subject ids, where they came from, kind of subject) of one event."""
    path = ev.url.path if ev.url and ev.url.path else None
    if path is None and ev.resource and ev.resource.type == "url":
        path = ev.resource.name
    m = next((m for rx in patterns if path and (m := rx.search(path))), None)
    kind = m.groupdict().get("kind") if m else None
    if ev.resource and ev.resource.subject_ids:
        return list(ev.resource.subject_ids), "resource.subject_ids", kind
    if m:
        return [m["id"]], "url.path", kind
    return [], "", None


def _template(path: str, patterns: list[re.Pattern[str]]) -> str:
    for rx in patterns:
        m = rx.search(path)
        if m:
            return path[:m.start("id")] + "<id>" + path[m.end("id"):]
    return path


def _fmt(t: datetime) -> str:
    return t.isoformat(timespec="seconds").replace("+00:00", "Z")


def analyse(alerts: list[Alert], store: EventStore, *, subject_patterns: Iterable[str] = DEFAULT_SUBJECT_PATTERNS,
            lookback: timedelta = timedelta(hours=1), max_events: int = 1_000_000) -> list[ActorFindings]:
    """Read back each alert actor's events in the alert window and tally what personal data they touched.

    A volume rule raises its alert when the threshold is crossed, so the events that crossed it
    began up to one rule window earlier: the tally also runs from ``first_seen - lookback``
    (the maximum), next to the alert's own window (the minimum).
    """
    patterns = [re.compile(p) for p in subject_patterns]
    out: list[ActorFindings] = []
    for term, label, since, until in _windows(alerts):
        f = ActorFindings(term, label, since, until, lookback)
        for ev in iter_events(store, term, since - lookback, until, max_events):
            f.events += 1
            if ev.event.outcome is Outcome.failure:
                f.failed += 1
                continue
            ids, src, kind = subjects_of(ev, patterns)
            if not ids:
                continue
            f.subjects.update(ids)
            n_records = ev.resource.records if ev.resource and ev.resource.records else 1
            if ev.timestamp >= since:
                f.strict_subjects.update(ids)
                f.strict_records += n_records
            f.subject_source[src] += 1
            if kind:
                f.subject_kinds[kind] += 1
            f.records += n_records
            method = (ev.http.request.method or "").upper() if ev.http and ev.http.request else ""
            f.effects.add(_WRITE.get(method, DataEffect.read))
            if ev.url and ev.url.path:
                f.paths[f"{method + ' ' if method else ''}{_template(ev.url.path, patterns)}"] += 1
            system = (ev.service.name if ev.service and ev.service.name else None) or (
                ev.host.name if ev.host and ev.host.name else None) or (
                ev.url.domain if ev.url and ev.url.domain else None) or ev.event.dataset
            if system:
                f.systems[system] += 1
            if ev.resource:
                f.categories.update(ev.resource.data_categories)
            f.first = ev.timestamp if f.first is None else min(f.first, ev.timestamp)
            f.last = ev.timestamp if f.last is None else max(f.last, ev.timestamp)
        out.append(f)
    return out


def prefill_from_alerts(alerts: list[Alert], store: EventStore, *,
                        subject_patterns: Iterable[str] = DEFAULT_SUBJECT_PATTERNS,
                        lookback: timedelta = timedelta(hours=1)) -> Prefill:
    """Case fields from the alerts and the events behind them, each with its provenance."""
    findings = analyse(alerts, store, subject_patterns=subject_patterns, lookback=lookback)
    details: dict[str, Any] = {}
    prov: dict[str, str] = {}
    subjects: set[str] = set()
    strict: set[str] = set()
    records = strict_records = 0
    systems: Counter[str] = Counter()
    cats: set[str] = {c for a in alerts for c in a.data_categories}
    effects: set[DataEffect] = set()
    kinds: Counter[str] = Counter()
    lines: list[str] = []
    for f in findings:
        subjects |= f.subjects
        strict |= f.strict_subjects
        records += f.records
        strict_records += f.strict_records
        systems.update(f.systems)
        cats |= f.categories
        effects |= f.effects
        kinds.update(f.subject_kinds)
        paths = ", ".join(p for p, _ in f.paths.most_common(3)) or "(no URL paths)"
        srcs = " and ".join(sorted(f.subject_source)) or "no subject ids"
        start = f.since - f.lookback
        lines.append(
            f"{len(f.strict_subjects):,} distinct data-subject ids in {f.strict_records:,} successful requests "
            f"({paths}) by {f.label} between {_fmt(f.since)} and {_fmt(f.until)} (the alert window); "
            f"{len(f.subjects):,} in {f.records:,} from {_fmt(start)} (one detection window earlier, when the "
            f"activity that raised the alert began); ids from {srcs}; {f.failed:,} failed requests not counted "
            f"(access-audit query \"{f.term.field}:{f.term.value}\" --since {_fmt(start)} "
            f"--until {_fmt(f.until + timedelta(seconds=1))})")
    evidence = "; ".join(lines)
    alert_ref = ", ".join(f"{a.rule_id} {a.id}" for a in alerts)
    if findings:
        details["subjects_min"], details["subjects_max"] = len(strict), len(subjects)
        prov["subjects_min"] = prov["subjects_max"] = evidence
        details["records_min"], details["records_max"] = strict_records, records
        prov["records_min"] = prov["records_max"] = evidence
    if systems:
        details["systems"] = [s for s, _ in systems.most_common()]
        prov["systems"] = "service / host / URL domain of the events counted above"
    if cats:
        mapped = sorted({data_category(c) for c in cats}, key=list(DataCategory).index)
        details["data_categories"] = [c.value for c in mapped]
        unknown = sorted(c for c in cats if data_category(c) is DataCategory.other)
        if unknown:
            details["data_categories_note"] = "other: " + ", ".join(unknown)
        prov["data_categories"] = (f"resource.data_categories of the events and the alerts ({', '.join(sorted(cats))})"
                                   f" mapped to the notification form's kinds")
    if effects:
        details["data_effects"] = sorted(e.value for e in effects)
        prov["data_effects"] = "HTTP methods of the requests counted (GET read; PUT/PATCH/POST altered; DELETE deleted)"
        types = []
        if DataEffect.read in effects:
            types.append(BreachType.confidentiality.value)
        if effects & {DataEffect.altered, DataEffect.deleted}:
            types.append(BreachType.integrity.value)
        details["breach_types"] = types
        prov["breach_types"] = "from what happened to the data (read -> confidentiality; altered/deleted -> integrity)"
    if kinds:
        details["subject_categories"] = [k for k, _ in kinds.most_common()]
        prov["subject_categories"] = "the collection named in the URL paths (/api/<collection>/<id>)"
    first = min((f.first for f in findings if f.first), default=None)
    last = max((f.last for f in findings if f.last), default=None)
    if first is None and alerts:
        first, last = min(a.first_seen for a in alerts), max(a.last_seen for a in alerts)
    if alerts:
        titles = "; ".join(dict.fromkeys(a.title for a in alerts))
        who = ", ".join(f.label for f in findings) or "an unknown actor"
        n = "data subjects (number unknown)" if not findings else f"{len(subjects):,} data subjects" if len(
            strict) == len(subjects) else f"{len(strict):,} to {len(subjects):,} data subjects"
        details["summary"] = (f"Detected by access-audit ({titles}): {who} accessed the personal data of {n}"
                              + (f" between {_fmt(first)} and {_fmt(last)}." if first and last else "."))
        prov["summary"] = f"generated from alerts {alert_ref}"
        lead = max(alerts, key=lambda a: (a.severity.rank, a.risk_score))  # the case is named after the worst
        details["title"] = lead.title if len(alerts) == 1 else f"{lead.title} (+{len(alerts) - 1} alerts)"
    if first is not None:
        prov["occurred_from"] = prov["occurred_to"] = "first and last counted event (else the alerts' window)"
    return Prefill(details=details, provenance=prov, occurred_from=first, occurred_to=last, findings=findings)


def open_case_from_alerts(alerts: list[Alert], store: EventStore, repo: BreachRepo, clock: Clock, actor: str, *,
                          config: Any = None, source: str = "alerts", reason: str | None = None,
                          subject_patterns: Iterable[str] = DEFAULT_SUBJECT_PATTERNS,
                          existing: str = "allow") -> BreachCase:
    """Open a breach case (state ``reported``) from alerts, prefilled from the event store.

    An alert that is already evidence of a case: ``existing="refuse"`` raises BreachError naming that
    case (``breach open --alert``, the HTTP API); ``existing="return"`` returns it (Slack's escalate
    button, a second ``demo`` run); ``"allow"`` (the default, for callers that have not chosen yet)
    opens another case.

    ``config`` is a :class:`~access_audit.breach.workflow.BreachConfig` or the app's ``Settings``
    (organisation, DPO contact, regimes, time zone); None uses the defaults. Works with any alerts:
    alerts without a user or source address still open a case, only without counted figures.
    """
    from access_audit.breach.workflow import BreachConfig, BreachWorkflow

    if not alerts:
        raise ValueError("open_case_from_alerts needs at least one alert")
    held = repo.cases_with_alerts([a.id for a in alerts]) if existing != "allow" else {}
    if held:
        if existing == "return":
            return repo.get(sorted(held.values())[0])
        which = "; ".join(f"{a} is in {c}" for a, c in sorted(held.items()))
        raise BreachError(f"alert(s) already in a breach case ({which}): add facts to that case instead of "
                          "opening a duplicate")
    cfg = config if isinstance(config, BreachConfig) else (
        BreachConfig.from_settings(config) if config is not None else BreachConfig())
    pre = prefill_from_alerts(alerts, store, subject_patterns=subject_patterns)
    details = dict(pre.details)
    title = details.pop("title", None)
    summary = details.pop("summary", None)
    wf = BreachWorkflow(repo, clock, cfg)
    case = wf.open_case(actor, title=title, summary=summary, source=source, occurred_from=pre.occurred_from,
                        occurred_to=pre.occurred_to, alerts=alerts, details=details, provenance=pre.provenance,
                        reason=reason)
    put_hold = getattr(store, "put_legal_hold", None)
    if put_hold is not None:
        # The evidence stays while the case is open (GDPR Art. 33(5); access_audit.retention): the
        # retention run re-derives the hold from the case and ends it at closing + LEGAL_HOLD_DAYS.
        from access_audit.retention import hold_for_case

        put_hold(hold_for_case(case, legal_hold_days=0).to_doc())
    return case
