"""The subject access report: who accessed the data of data subject Z, when, from where, through
which service, and for what declared purpose. For Art. 15 GDPR requests (the right of access
includes the recipients of the data) and for investigations.

The events are those whose ``resource.subject_ids`` contain Z (set by parsers and the resource
catalogue), read through the EventStore port, so the report is the same on SQLite and
Elasticsearch. They are grouped by actor (``user.name``; events without a user by source address).
The declared purpose is ``labels.purpose``, else ``labels.justification``; an access without one
is reported as such (that is often the finding).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from access_audit.core.events import AccessEvent, Outcome
from access_audit.store.query import Expr, Query, Term, and_of

PAGE = 1000
NO_PURPOSE = "(none declared)"
CSV_COLUMNS = ("@timestamp", "user", "source_ip", "service", "resource", "action", "outcome", "purpose",
               "log_type", "event_id")


def service_of(ev: AccessEvent) -> str | None:
    """Through which service: the service name, else the URL's domain, else the host, else the log type."""
    for v in (ev.service.name if ev.service else None, ev.url.domain if ev.url else None,
              ev.host.name if ev.host else None, ev.event.dataset):
        if v:
            return v
    return None


def purpose_of(ev: AccessEvent) -> str | None:
    return ev.labels.get("purpose") or ev.labels.get("justification") or None


def access_row(ev: AccessEvent) -> dict[str, Any]:
    """One access as a flat row (CSV, tables)."""
    return {"@timestamp": ev.timestamp.isoformat(), "user": ev.user.name if ev.user else None,
            "source_ip": ev.source.ip if ev.source else None, "service": service_of(ev),
            "resource": (ev.resource.name or ev.resource.id) if ev.resource else None,
            "action": ev.event.action, "outcome": ev.event.outcome.value if ev.event.outcome else None,
            "purpose": purpose_of(ev),
            "log_type": ev.event.dataset, "event_id": ev.event.id}


@dataclass
class ActorAccess:
    """Everything one actor did with the subject's data."""

    user: str | None
    first: datetime
    last: datetime
    events: int = 0
    failures: int = 0
    roles: Counter[str] = field(default_factory=Counter)  # user.roles of the events (the directory's)
    source_ips: Counter[str] = field(default_factory=Counter)
    services: Counter[str] = field(default_factory=Counter)
    resources: Counter[str] = field(default_factory=Counter)
    actions: Counter[str] = field(default_factory=Counter)
    purposes: Counter[str] = field(default_factory=Counter)

    def to_json(self) -> dict[str, Any]:
        def ranked(c: Counter[str]) -> list[str]:
            return [k for k, _ in sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))]

        return {"user": self.user, "first": self.first.isoformat(), "last": self.last.isoformat(),
                "events": self.events, "failures": self.failures, "roles": ranked(self.roles),
                "source_ips": ranked(self.source_ips),
                "services": ranked(self.services), "resources": ranked(self.resources),
                "actions": ranked(self.actions), "purposes": ranked(self.purposes)}


@dataclass
class SubjectReport:
    subject_id: str
    generated_at: datetime
    since: datetime | None
    until: datetime | None
    actors: list[ActorAccess]
    accesses: list[AccessEvent]
    truncated: bool  # more than max_events matched: the report covers the oldest max_events

    @property
    def total(self) -> int:
        return len(self.accesses)

    def to_json(self, *, with_events: bool = True) -> dict[str, Any]:
        return {
            "subject_id": self.subject_id, "generated_at": self.generated_at.isoformat(),
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "events": self.total, "truncated": self.truncated,
            "first": self.accesses[0].timestamp.isoformat() if self.accesses else None,
            "last": self.accesses[-1].timestamp.isoformat() if self.accesses else None,
            "actors": [a.to_json() for a in self.actors],
            "without_purpose": sum(1 for e in self.accesses if purpose_of(e) is None),
            **({"accesses": [access_row(e) for e in self.accesses]} if with_events else {}),
        }


def subject_report(store: Any, subject_id: str, *, now: datetime, since: datetime | None = None,
                   until: datetime | None = None, extra: Expr | None = None,
                   max_events: int = 100_000) -> SubjectReport:
    """Read every access to ``subject_id`` (oldest first, paged with search_after) and group it by actor.

    ``extra`` narrows the events further (a parsed query). Raises what the store raises.
    """
    sid = subject_id.strip()
    if not sid:
        raise ValueError("a subject id is needed")
    expr = and_of([Term("resource.subject_ids", "eq", sid), *([extra] if extra is not None else [])])
    accesses: list[AccessEvent] = []
    after: tuple[str, str] | None = None
    truncated = False
    while True:
        want = min(PAGE, max_events + 1 - len(accesses))
        page = store.search(Query(expr=expr, since=since, until=until, limit=want, order="asc", after=after))
        accesses += page
        if len(accesses) > max_events:
            accesses, truncated = accesses[:max_events], True
            break
        if len(page) < want:
            break
        after = (page[-1].timestamp.isoformat(), page[-1].id)
    by: dict[str, ActorAccess] = {}
    for ev in accesses:
        user = ev.user.name if ev.user and ev.user.name else None
        ip = ev.source.ip if ev.source else None
        key = f"u:{user}" if user else f"ip:{ip}"
        a = by.get(key)
        if a is None:
            a = by[key] = ActorAccess(user=user, first=ev.timestamp, last=ev.timestamp)
        a.last = ev.timestamp
        a.events += 1
        a.failures += ev.event.outcome is Outcome.failure
        for r in ev.user.roles if ev.user else ():
            a.roles[r] += 1
        if ip:
            a.source_ips[ip] += 1
        if (svc := service_of(ev)) is not None:
            a.services[svc] += 1
        if ev.resource and (ev.resource.name or ev.resource.id):
            a.resources[ev.resource.name or ev.resource.id or ""] += 1
        if ev.event.action:
            a.actions[ev.event.action] += 1
        a.purposes[purpose_of(ev) or NO_PURPOSE] += 1
    actors = sorted(by.values(), key=lambda a: (-a.events, a.user or "", a.first))
    return SubjectReport(sid, now, since, until, actors, accesses, truncated)
