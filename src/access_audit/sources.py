"""Log sources that go silent: for an audit system, a source that stops sending is an incident.

A *source* is a log type and the system it speaks for: ``event.dataset`` × ``host.name`` (host
logs: sshd, auditd, Windows, web servers), else × ``cloud.account.id`` (CloudTrail), else the log
type alone (SaaS audit feeds). The check reads the store, not the stream, so it sees every
worker's events, and a pipeline that died altogether looks silent too (which it is):

- *baseline*: the source's events in the ``baseline`` period (default 1 day) before the quiet
  window; sources with fewer than ``min_events`` there are too young or too sparse to judge;
- *silent*: no event at all in the last ``quiet`` window (default 2 h), for a source with
  ``min_events`` in the last seven baseline periods (so it stays silent after the first day);
- *dropped*: fewer than ``drop_ratio`` (default 10 %) of the events the baseline rate promises for
  the quiet window.

Each silent or dropped source raises an alert of the built-in rule ``log_source_silent`` (high),
keyed by the source, with the same alert identity as any rule: rule, key and the suppression
window of the check time (6 h), so a source that stays silent is one alert whose count rises at
each check, not an alert per check. ``access-audit sources`` shows the table; the scheduler runs
the check every ``source_check_minutes`` and sends the alerts to the configured sinks (Slack).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from access_audit.alert.created import deliver
from access_audit.core.alerts import Alert, Severity, window_alert_id
from access_audit.store.aggregations import MAX_TERMS
from access_audit.store.query import Query, Term

RULE_ID = "log_source_silent"
SUPPRESS = timedelta(hours=6)
HISTORY = 7  # baseline periods back: a source known there and quiet now is silent, however long ago it stopped
_SUB_KEYS = ("host.name", "cloud.account.id")


@dataclass(frozen=True)
class SourceHealth:
    dataset: str
    key_field: str | None  # host.name, cloud.account.id, or None (the log type alone)
    key: str | None
    baseline: int  # events in the baseline period
    recent: int  # events in the quiet window
    expected: float  # events the baseline rate promises for the quiet window
    status: str  # ok | silent | dropped | sparse (too few events in the baseline to judge)

    @property
    def name(self) -> str:
        return self.dataset if self.key is None else f"{self.dataset} {self.key_field}={self.key}"

    def to_json(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "key_field": self.key_field, "key": self.key, "baseline": self.baseline,
                "recent": self.recent, "expected": round(self.expected, 1), "status": self.status}


def _counts(store: Any, since: datetime, until: datetime) -> dict[tuple[str, str | None, str | None], int]:
    """Events per source in [since, until)."""
    out: dict[tuple[str, str | None, str | None], int] = {}
    for ds, n in store.aggregate(Query(since=since, until=until), "event.dataset", size=MAX_TERMS):
        ds = str(ds)
        rest = n
        q = Query(expr=Term("event.dataset", "eq", ds), since=since, until=until)
        for sub in _SUB_KEYS:
            for v, m in store.aggregate(q, sub, size=MAX_TERMS):
                out[(ds, sub, str(v))] = m
                rest -= m
            if rest < n:  # this log type speaks per host (or per account)
                break
        if rest == n:
            out[(ds, None, None)] = n
    return out


def source_health(store: Any, now: datetime, *, quiet: timedelta = timedelta(hours=2),
                  baseline: timedelta = timedelta(days=1), min_events: int = 20,
                  drop_ratio: float = 0.1) -> list[SourceHealth]:
    """Every source seen in the baseline period or the quiet window, worst first."""
    start = now - quiet
    before = _counts(store, start - baseline, start)
    history = _counts(store, start - HISTORY * baseline, start)
    recent = _counts(store, start, now)
    rows = []
    for key in sorted(set(history) | set(recent), key=lambda k: (k[0], k[1] or "", k[2] or "")):
        b, h, r = before.get(key, 0), history.get(key, 0), recent.get(key, 0)
        expected = b * (quiet / baseline)
        if r == 0 and h >= min_events:
            status = "silent"  # also when it stopped before the baseline period: it stays silent
        elif b >= min_events and r < drop_ratio * expected:
            status = "dropped"
        elif b < min_events and h < min_events:
            status = "sparse"
        else:
            status = "ok"
        rows.append(SourceHealth(key[0], key[1], key[2], b, r, expected, status))
    order = {"silent": 0, "dropped": 1, "ok": 2, "sparse": 3}
    return sorted(rows, key=lambda h: order[h.status])


def silence_alerts(rows: list[SourceHealth], now: datetime, *, quiet: timedelta) -> list[Alert]:
    """One alert per silent or dropped source (identity: rule, source, 6-hour window of ``now``)."""
    w = int(SUPPRESS.total_seconds())
    start = int(now.timestamp()) // w * w
    out = []
    for h in rows:
        if h.status not in ("silent", "dropped"):
            continue
        dedup = "|".join(x for x in (h.dataset, h.key_field, h.key) if x)
        hours = quiet.total_seconds() / 3600
        what = (f"no event in the last {hours:g} h" if h.status == "silent" else
                f"{h.recent} event(s) in the last {hours:g} h, where {h.expected:.0f} were expected")
        group = {"event.dataset": h.dataset, **({h.key_field: h.key} if h.key_field else {})}
        q = f'event.dataset:"{h.dataset}"' + (f' AND {h.key_field}:"{h.key}"' if h.key_field else "")
        out.append(Alert(
            id=window_alert_id(RULE_ID, dedup, start), rule_id=RULE_ID,
            title=f"Log source {h.status}: {h.name}",
            description=(f"{h.name}: {what} ({h.baseline} in the day before). An audit trail with a gap "
                         "cannot show who accessed what in it: check the shipper, the source's audit "
                         "settings and the pipeline (access-audit status)."),
            severity=Severity.high, risk_score=Severity.high.default_risk, dedup_key=dedup,
            first_seen=now, last_seen=now, created_at=now, count=1, group=group,
            host=h.key if h.key_field == "host.name" else None, log_types=[h.dataset], query=q,
            tags=["audit.gap"], context={"status": h.status, "recent": h.recent, "baseline": h.baseline,
                                         "expected": round(h.expected, 1)}))
    return out


def check(store: Any, settings: Any, now: datetime) -> tuple[list[SourceHealth], list[Alert]]:
    """The check with the thresholds of ``settings``: every source's health, and the alerts for
    the silent and dropped ones (what ``sources`` shows and the scheduler raises)."""
    quiet = timedelta(minutes=settings.source_quiet_minutes)
    rows = source_health(store, now, quiet=quiet, baseline=timedelta(hours=settings.source_baseline_hours),
                         min_events=settings.source_min_events, drop_ratio=settings.source_drop_ratio)
    return rows, silence_alerts(rows, now, quiet=quiet)


def raise_alerts(store: Any, sinks: list[Any], alerts: list[Alert]) -> list[tuple[Alert, bool]]:
    """Store the alerts (an open alert of the same id counts up) and tell the sinks."""
    if not alerts:
        return []
    for a in alerts:  # the source is still silent: the open alert counts the checks that found it
        old = store.alert(a.id)
        if old is not None:
            a.count = old.count + 1
            a.first_seen = old.first_seen
            a.created_at = old.created_at
    return deliver(store, sinks, [(a, True) for a in alerts])
