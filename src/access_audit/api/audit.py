"""The audit system audits itself: every query of the access logs (a search, an aggregation, an
export, a subject access report) is written as an AccessEvent into the same store, so "who searched
for what" is queryable like everything else::

    access-audit query "event.dataset:access_audit AND event.action:subject_report"

The event names the person (``user.name``, the token's name; ``user.roles``, its role; ``user.id``,
the token id), the query (``labels.query``), how many events it returned (``labels.hits``), the
route (``url.path``), the caller's address (``source.ip``) and, when the query names data subjects,
users or addresses, those too (``resource.subject_ids``, ``related.user``, ``related.ip``): a subject
access report about Z therefore shows who looked Z up. A query that is refused (malformed) is
recorded with ``event.outcome: failure``.

The record is written before the results are returned; when it cannot be written the results are
withheld (the caller gets the store's error), so nothing is read without a trace.
"""

from __future__ import annotations

import ipaddress
import uuid
from typing import Any

import orjson

from access_audit.core.clock import Clock
from access_audit.core.events import (
    AccessEvent,
    Endpoint,
    EventInfo,
    Http,
    HttpRequest,
    Outcome,
    Related,
    Resource,
    Service,
    Url,
    User,
    event_id,
)
from access_audit.store.query import And, Expr, Not, Or, Term

DATASET = "access_audit"
USER_FIELDS = {"user.name", "user.id", "user.email", "user.full_name", "user.target.name", "user.target.id",
               "user.target.email", "related.user"}
IP_FIELDS = {"source.ip", "related.ip"}
SUBJECT_FIELDS = {"resource.subject_ids"}


def _valid_ip(value: Any) -> bool:
    try:
        ipaddress.ip_address(str(value))
    except ValueError:
        return False
    return True


def personal_terms(expr: Expr | None) -> tuple[list[str], list[str], list[str]]:
    """(user names, addresses, subject ids) a query names, in order, without repeats."""
    users: list[str] = []
    ips: list[str] = []
    subjects: list[str] = []

    def walk(e: Expr) -> None:
        if isinstance(e, (And, Or)):
            for x in e.items:
                walk(x)
        elif isinstance(e, Not):
            walk(e.item)
        elif isinstance(e, Term) and e.value is not None and e.op in ("eq", "prefix"):
            v = str(e.value)
            if e.field in USER_FIELDS and v not in users:
                users.append(v)
            elif e.field in IP_FIELDS and _valid_ip(v) and v not in ips:
                ips.append(v)
            elif e.field in SUBJECT_FIELDS and v not in subjects:
                subjects.append(v)

    if expr is not None:
        walk(expr)
    return users, ips, subjects


class SelfAudit:
    """Writes one access event per query of the access logs into ``store``."""

    def __init__(self, store: Any, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def record(self, *, actor: str, role: str, action: str, query: str, interface: str = "api",
               token_id: str | None = None, expr: Expr | None = None, path: str | None = None,
               method: str | None = None, client_ip: str | None = None, outcome: Outcome = Outcome.success,
               hits: int | None = None, subject_ids: list[str] | None = None, purpose: str | None = None,
               reason: str | None = None) -> AccessEvent:
        """Write the event (raises what the store raises: the caller must then withhold the results)."""
        users, ips, subjects = personal_terms(expr)
        for s in subject_ids or []:
            if s not in subjects:
                subjects.append(s)
        now = self.clock.now()
        labels = {"query": query, "role": role, "interface": interface}
        if hits is not None:
            labels["hits"] = str(hits)
        if purpose:
            labels["purpose"] = purpose
        ip = client_ip if client_ip and _valid_ip(client_ip) else None
        raw = orjson.dumps({"at": now.isoformat(), "actor": actor, "action": action, "query": query,
                            "path": path, "nonce": uuid.uuid4().hex})
        ev = AccessEvent(  # type: ignore[call-arg]  # populate_by_name: timestamp is @timestamp
            timestamp=now,
            event=EventInfo(id=event_id(f"{interface}:{uuid.uuid4().hex}", DATASET, raw), kind="event",
                            category=["database"], type=["access"], action=action, outcome=outcome,
                            reason=reason, dataset=DATASET, module=DATASET, provider=interface, ingested=now),
            user=User(name=actor, id=token_id, roles=[role]),
            source=Endpoint(ip=ip) if ip else None,
            url=Url(path=path) if path else None,
            http=Http(request=HttpRequest(method=method)) if method else None,
            service=Service(name="access-audit", type=interface),
            resource=Resource(type="access_log", name="events", subject_ids=subjects),
            related=Related(user=[actor, *users], ip=[*([ip] if ip else []), *[i for i in ips if i != ip]]),
            labels=labels,
            message=f"{actor} ({role}) {action.replace('_', ' ')}: {query}"[:2000],
        )
        self.store.write_events([ev])
        return ev
