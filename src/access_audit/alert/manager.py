"""Detections -> alerts: dedup and suppression, so a burst becomes one alert with a counter.

Alert identity does not depend on arrival order (docs/design/decisions.md, section 3): an alert
is one (rule, dedup key, window), the window being the rule's suppression period aligned on the
epoch in event time. Its id hashes the three, so the same detections raise the same alerts in any
order, on any worker, in any replay; a detection for an open alert folds into it (count, first and
last seen, evidence).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson

from access_audit.core.alerts import Alert, window_alert_id
from access_audit.core.clock import Clock, SystemClock
from access_audit.core.events import AccessEvent
from access_audit.core.fields import accessor
from access_audit.detect.rules import MAX_EVIDENCE, Detection

_PLACEHOLDER = re.compile(r"\{([@A-Za-z_][\w.@]*)\}")


@dataclass
class AlertUpdate:
    alert: Alert
    new: bool  # False: an existing alert's counter and last_seen moved


OpenKey = tuple[str, str, int]  # (rule id, dedup key, window start in epoch seconds)


def window_start(ts: datetime, window: timedelta) -> int:
    """The start (epoch seconds, event time) of the suppression window ``ts`` falls in."""
    w = max(1, int(window.total_seconds()))
    return int(ts.timestamp()) // w * w


class AlertManager:
    """Folds detections into alerts by (rule id, dedup key, window).

    The window is the rule's ``suppress`` period aligned on the epoch, in event time. Open alerts
    whose window closed more than one window ago (by the highest event time seen) are forgotten
    (bounded memory); they stay in the store.
    """

    def __init__(self, clock: Clock | None = None, *, partition: int = -1) -> None:
        self.clock = clock or SystemClock()
        self.partition = partition
        self.open: dict[OpenKey, tuple[Alert, timedelta]] = {}
        self.dirty: set[OpenKey] = set()
        self._high_water: datetime | None = None
        self._since_sweep = 0

    def process(self, det: Detection) -> AlertUpdate:
        rule = det.rule
        key = det.dedup_key
        k = (rule.id, key, window_start(det.timestamp, rule.suppress))
        got = self.open.get(k)
        self.dirty.add(k)
        if got is not None:
            cur = got[0]
            cur.count += det.count
            cur.first_seen = min(cur.first_seen, det.timestamp)
            cur.last_seen = max(cur.last_seen, det.timestamp)
            for eid in det.evidence:
                if eid not in cur.event_ids and len(cur.event_ids) < MAX_EVIDENCE:
                    cur.event_ids.append(eid)
            return AlertUpdate(cur, new=False)
        alert = self._new_alert(det, key, k[2])
        self.open[k] = (alert, rule.suppress)
        self._maybe_sweep(det.timestamp)
        return AlertUpdate(alert, new=True)

    def _new_alert(self, det: Detection, key: str, start: int) -> Alert:
        rule, ev = det.rule, det.event
        first_seen = det.timestamp
        res = ev.resource
        # Built from the rule's own validated values: model_construct skips pydantic's validation,
        # which cost ~40 µs an alert (profile of run with the SigmaHQ CloudTrail rules).
        return Alert.model_construct(
            id=window_alert_id(rule.id, key, start),
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
            # the finding's own key first: the event that completed it may be another party's (a
            # late grant completes the grantee's sequence; the granting admin is its actor)
            user=_grouped(det, "user.name", ev.user.name if ev.user else None),
            source_ip=_grouped(det, "source.ip", ev.source.ip if ev.source else None),
            host=_grouped(det, "host.name", ev.host.name if ev.host else None),
            resource=(res.name or res.id) if res else None,
            data_categories=list(res.data_categories) if res else [],
            personal_data=rule.personal_data or bool(res and (res.data_categories or res.subject_ids)),
            mitre=list(rule.mitre),
            tags=list(rule.tags),
            log_types=[ev.event.dataset] if ev.event.dataset else [],
            query=evidence_query(det),
            context=_responder_context(det),
        )

    # --- state: open alerts are state of this stage, checkpointed like rule state ------------

    @property
    def namespace(self) -> str:
        return f"alerts/{self.partition}"

    def checkpoint_rows(self) -> tuple[list[tuple[str, str, bytes]], list[tuple[str, str]]]:
        """Open alerts changed since the last call (upserts) and those forgotten (deletes)."""
        ups: list[tuple[str, str, bytes]] = []
        dels: list[tuple[str, str]] = []
        ns = self.namespace
        for k in self.dirty:
            row_key = window_alert_id(*k)
            got = self.open.get(k)
            if got is None:
                dels.append((ns, row_key))
                continue
            # The alert itself is in the store's alerts (written in the same batch); the row says
            # only which alerts are open and for which window.
            ups.append((ns, row_key, orjson.dumps({"v": 2, "k": list(k), "w": got[1].total_seconds()})))
        self.dirty.clear()
        return ups, dels

    def restore_rows(self, read: Callable[[str], Iterator[tuple[str, bytes]]],
                     load: Callable[[list[str]], dict[str, Alert]]) -> int:
        """Take back the open alerts: the rows name them, ``load`` reads them from the store."""
        rows: dict[str, tuple[OpenKey, timedelta]] = {}
        for alert_id, value in read(self.namespace):
            try:
                row = orjson.loads(value)
                if row.get("v") != 2:
                    continue
                rows[alert_id] = ((str(row["k"][0]), str(row["k"][1]), int(row["k"][2])),
                                  timedelta(seconds=float(row["w"])))
            except (orjson.JSONDecodeError, KeyError, IndexError, TypeError, ValueError):
                continue  # a row we cannot read is one alert that may open again: never a crash
        found = load(list(rows)) if rows else {}
        for alert_id, (k, window) in rows.items():
            if alert_id in found:
                self.open[k] = (found[alert_id], window)
        self.dirty.clear()
        return len(found)

    def _maybe_sweep(self, ts: datetime) -> None:
        if self._high_water is None or ts > self._high_water:
            self._high_water = ts
        self._since_sweep += 1
        if self._since_sweep < 1000:
            return
        self._since_sweep = 0
        hw = self._high_water.timestamp()
        stale = [k for k, (_, window) in self.open.items() if hw - k[2] > 2 * window.total_seconds()]
        for k in stale:
            del self.open[k]
            self.dirty.add(k)


def _grouped(det: Detection, name: str, fallback: str | None) -> str | None:
    v = det.group.get(name)
    return v if isinstance(v, str) else fallback


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


#: how a title names a value the event does not carry ("from an unknown address", never "from ?")
UNKNOWN = {"user.name": "an unknown user", "user.target.name": "an unknown user",
           "source.ip": "an unknown address", "destination.ip": "an unknown address", "host.name": "an unknown host",
           "resource.name": "an unknown resource", "source.geo.country_iso_code": "an unknown country",
           "service.name": "an unknown service"}


def render_summary(template: str, det: Detection) -> str:
    """Fill ``{field.path}`` and ``{count}`` placeholders from the detection; a value the event
    does not carry is named as unknown (``UNKNOWN``, else ``<field> unknown``)."""

    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        if name == "count":
            return str(det.count)
        if name in det.group and det.group[name] is not None:
            return str(det.group[name])
        v = accessor(name)(det.event)
        if isinstance(v, list):
            v = ", ".join(map(str, v))
        return UNKNOWN.get(name, f"({name} unknown)") if v is None or v == "" else str(getattr(v, "value", v))

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
