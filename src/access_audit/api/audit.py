"""The audit system audits itself: every read and every denial, from the API, the console and the
CLI, is one record of the **self-audit**, kept apart from the access events (its own SQLite table,
its own daily Elasticsearch indices), append-only, with its own retention (``self_audit``, see
docs/design/decisions.md section 5): the general event retention cannot shorten it.

A record names the person (``actor``: the token's holder, or the OS user for the CLI), the role, the
token id, the interface (api, console, cli), what was done (``action``: search, aggregate, export,
subject_report, read, denied, error, token_create...), the query text, the HTTP status, the outcome,
how many events it returned (``hits``), the route, the caller's address (``client_ip``: the peer, or
the X-Forwarded-For of a configured trusted proxy), and the personal values the query named
(``users``, ``ips``, ``subject_ids``, ``values``): a subject access report about Z therefore shows who
looked Z up. Only the roles with ``audit:read`` read it (DPO in clear, auditor pseudonymised).

Query routes write their record before the results are returned; when it cannot be written the
results are withheld (the caller gets the store's error), so nothing is read without a trace.
"""

from __future__ import annotations

import getpass
import ipaddress
import os
import time
import uuid
from typing import Any

from access_audit.core.clock import Clock, SystemClock
from access_audit.core.csvcells import csv_cell
from access_audit.core.events import Outcome
from access_audit.core.fields import hidden_from_pseudonymised
from access_audit.store.query import And, Expr, Not, Or, Term

DATASET = "access_audit"
USER_FIELDS = {"user.name", "user.id", "user.email", "user.full_name", "user.target.name", "user.target.id",
               "user.target.email", "related.user"}
IP_FIELDS = {"source.ip", "related.ip", "destination.ip"}
SUBJECT_FIELDS = {"resource.subject_ids"}


def _valid_ip(value: Any) -> bool:
    try:
        ipaddress.ip_address(str(value))
    except ValueError:
        return False
    return True


def personal_terms(expr: Expr | None) -> tuple[list[str], list[str], list[str], list[str]]:
    """(user names, addresses, subject ids, every other literal value) a query names, in order,
    without repeats."""
    users: list[str] = []
    ips: list[str] = []
    subjects: list[str] = []
    values: list[str] = []

    def walk(e: Expr) -> None:
        if isinstance(e, (And, Or)):
            for x in e.items:
                walk(x)
        elif isinstance(e, Not):
            walk(e.item)
        elif isinstance(e, Term) and e.value is not None and isinstance(e.value, str):
            v = str(e.value)
            if e.field in USER_FIELDS and e.op in ("eq", "prefix"):
                target = users
            elif e.field in IP_FIELDS and e.op in ("eq", "prefix") and _valid_ip(v):
                target = ips
            elif e.field in SUBJECT_FIELDS and e.op in ("eq", "prefix"):
                target = subjects
            elif e.op == "text" or hidden_from_pseudonymised(e.field):
                target = values
            else:
                return
            if v not in target:
                target.append(v)

    if expr is not None:
        walk(expr)
    return users, ips, subjects, values


class SelfAudit:
    """Appends self-audit records to ``store`` (``store.write_self_audit``)."""

    def __init__(self, store: Any, clock: Clock | None = None) -> None:
        self.store = store
        self.clock = clock or SystemClock()

    def record(self, *, actor: str, role: str, action: str, query: str = "", interface: str = "api",
               token_id: str | None = None, expr: Expr | None = None, path: str | None = None,
               method: str | None = None, client_ip: str | None = None, outcome: Outcome = Outcome.success,
               hits: int | None = None, subject_ids: list[str] | None = None, purpose: str | None = None,
               reason: str | None = None, status: int | None = None, os_user: str | None = None,
               parsed: bool = True, **extra: Any) -> dict[str, Any]:
        """Append one record (raises what the store raises: the caller must then withhold the results)."""
        users, ips, subjects, values = personal_terms(expr)
        for s in subject_ids or []:
            if s not in subjects:
                subjects.append(s)
        now = self.clock.now()
        rec: dict[str, Any] = {
            "@timestamp": now.isoformat(), "id": uuid.uuid4().hex, "seq": time.time_ns(), "interface": interface,
            "actor": actor, "role": role, "token_id": token_id, "os_user": os_user, "action": action,
            "query": query[:4000],
            "parsed": parsed, "outcome": Outcome(outcome).value, "status": status, "reason": reason[:500] if reason
            else None, "hits": hits, "path": path, "method": method,
            "client_ip": client_ip if client_ip and _valid_ip(client_ip) else None,
            "users": users, "ips": ips, "subject_ids": subjects, "values": values, "purpose": purpose, **extra}
        self.store.write_self_audit([rec])
        return rec


def os_user() -> str:
    """Who runs this process, as the operating system knows them (the CLI's actor)."""
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry (containers): the uid
        return f"uid:{os.getuid()}"


def audit_cli(store: Any, action: str, query: str = "", *, expr: Expr | None = None, hits: int | None = None,
              subject_ids: list[str] | None = None, purpose: str | None = None, **extra: Any) -> None:
    """Record one CLI read of the store (query, subject-report, exports) with the OS user: whoever
    can read the store's files can read everything, but the reads made through the tool are kept."""
    if not hasattr(store, "write_self_audit"):
        return
    user = os_user()
    SelfAudit(store).record(actor=user, role="cli", action=action, query=query, interface="cli", expr=expr,
                            hits=hits, subject_ids=subject_ids, purpose=purpose, os_user=user, **extra)


def csv_safe(row: dict[str, Any]) -> dict[str, Any]:
    """A CSV row (DictWriter) with every cell formula-escaped (see :func:`csv_cell`)."""
    return {k: csv_cell(v) for k, v in row.items()}
