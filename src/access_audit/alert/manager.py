"""Detections -> alerts: dedup and suppression, so a burst becomes one alert with a counter."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from access_audit.core.alerts import Alert, alert_id
from access_audit.core.clock import Clock, SystemClock
from access_audit.core.events import AccessEvent, get_field
from access_audit.detect.rules import MAX_EVIDENCE, Detection

_PLACEHOLDER = re.compile(r"\{([@A-Za-z_][\w.@]*)\}")


@dataclass
class AlertUpdate:
    alert: Alert
    new: bool  # False: an existing alert's counter and last_seen moved


class AlertManager:
    """Folds detections into alerts by (rule id, dedup key) within each rule's suppression window.

    The window runs on event time: a detection within ``rule.suppress`` of the alert's
    ``last_seen`` raises its counter; a later one opens a new alert. Open alerts older than
    their window are forgotten as event time moves on (bounded memory).
    """

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock = clock or SystemClock()
        self.open: dict[tuple[str, str], tuple[Alert, timedelta]] = {}
        self._high_water: datetime | None = None
        self._since_sweep = 0

    def process(self, det: Detection) -> AlertUpdate:
        rule = det.rule
        key = det.dedup_key
        k = (rule.id, key)
        cur = self.open.get(k, (None, None))[0]
        if cur is not None and det.timestamp - cur.last_seen <= rule.suppress and det.timestamp >= cur.first_seen:
            cur.count += det.count
            cur.last_seen = max(cur.last_seen, det.timestamp)
            for eid in det.evidence:
                if eid not in cur.event_ids and len(cur.event_ids) < MAX_EVIDENCE:
                    cur.event_ids.append(eid)
            return AlertUpdate(cur, new=False)
        alert = self._new_alert(det, key)
        self.open[k] = (alert, rule.suppress)
        self._maybe_sweep(det.timestamp)
        return AlertUpdate(alert, new=True)

    def _new_alert(self, det: Detection, key: str) -> Alert:
        rule, ev = det.rule, det.event
        first_seen = det.timestamp
        res = ev.resource
        return Alert(
            id=alert_id(rule.id, key, det.evidence[0] if det.evidence else ev.id),
            rule_id=rule.id,
            title=render_summary(rule.summary, det) if rule.summary else rule.title,
            description=rule.description,
            severity=rule.severity,
            risk_score=rule.risk_score if rule.risk_score is not None else rule.severity.default_risk,
            dedup_key=key,
            first_seen=first_seen,
            last_seen=det.timestamp,
            created_at=self.clock.now(),
            count=det.count,
            event_ids=list(det.evidence[:MAX_EVIDENCE]),
            group={k: v for k, v in det.group.items()},
            user=ev.user.name if ev.user else None,
            source_ip=ev.source.ip if ev.source else None,
            host=ev.host.name if ev.host else None,
            resource=(res.name or res.id) if res else None,
            data_categories=list(res.data_categories) if res else [],
            personal_data=rule.personal_data or bool(res and (res.data_categories or res.subject_ids)),
            mitre=list(rule.mitre),
            tags=list(rule.tags),
            log_types=[ev.event.dataset] if ev.event.dataset else [],
            query=evidence_query(det),
            context=_responder_context(det),
        )

    def snapshot(self) -> list[tuple[tuple[str, str], Alert, timedelta]]:
        return [(k, a, w) for k, (a, w) in self.open.items()]

    def restore(self, items: list[tuple[tuple[str, str], Alert, timedelta]]) -> None:
        self.open = {k: (a, w) for k, a, w in items}

    def _maybe_sweep(self, ts: datetime) -> None:
        if self._high_water is None or ts > self._high_water:
            self._high_water = ts
        self._since_sweep += 1
        if self._since_sweep < 1000:
            return
        self._since_sweep = 0
        hw = self._high_water
        stale = [k for k, (a, window) in self.open.items() if hw - a.last_seen > window]
        for k in stale:
            del self.open[k]


def _responder_context(det: Detection) -> dict[str, Any]:
    """What a responder (and the breach workflow) needs: roles, records and data subjects touched."""
    ev = det.event
    ctx: dict[str, Any] = dict(det.context)
    if ev.user is not None:
        if ev.user.roles:
            ctx["user_roles"] = list(ev.user.roles)
        if ev.user.department:
            ctx["user_department"] = ev.user.department
    res = ev.resource
    if res is not None:
        if res.classification:
            ctx["classification"] = res.classification
        if res.subject_ids and "distinct" not in ctx:
            ctx["data_subjects"] = len(res.subject_ids)
    if det.context.get("distinct_field") == "resource.subject_ids":
        ctx["data_subjects"] = det.context["distinct"]
    if ev.source is not None and ev.source.geo is not None and ev.source.geo.country_iso_code:
        ctx["source_country"] = ev.source.geo.country_iso_code
    return ctx


def render_summary(template: str, det: Detection) -> str:
    """Fill ``{field.path}`` and ``{count}`` placeholders from the detection; unknown -> '?'."""

    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        if name == "count":
            return str(det.count)
        if name in det.group and det.group[name] is not None:
            return str(det.group[name])
        v = get_field(det.event, tuple(name.split(".")))
        if isinstance(v, list):
            v = ", ".join(map(str, v))
        return "?" if v is None else str(getattr(v, "value", v))

    return _PLACEHOLDER.sub(sub, template)


def evidence_query(det: Detection) -> str:
    """A query (the CLI/API query language) that lists the events behind the finding."""
    parts = []
    for f, v in det.group.items():
        if v is None or isinstance(v, tuple):
            continue
        parts.append(f"{f}:{_quote(str(v))}")
    ev: AccessEvent = det.event
    if ev.event.dataset:
        parts.append(f"event.dataset:{_quote(ev.event.dataset)}")
    return " AND ".join(parts) if parts else f"event.id:{ev.id}"


def _quote(v: str) -> str:
    return v if re.fullmatch(r"[\w.:/@-]+", v) else '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
