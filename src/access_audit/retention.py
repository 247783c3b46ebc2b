"""Retention: plan what is deleted, by whole UTC days, and let the stores delete it.

GDPR Art. 5(1)(e) (storage limitation) says personal data are kept no longer than necessary;
Art. 5(2) and 33(5) say the controller must still be able to show what happened in a breach.
So every data class has its own period (``docs/design/decisions.md`` §5), and **legal holds win**:

=============  ==============================================  =========================================
class          period (settings, env ``ACCESS_AUDIT_...``)       a record's day
=============  ==============================================  =========================================
events         ``RETENTION_DAYS`` (365; ``--days`` sets it)      its @timestamp (UTC)
dead_letters   ``DEAD_LETTER_RETENTION_DAYS`` (= events)         when it was received
alerts         ``ALERT_RETENTION_DAYS`` (730)                    its last sighting
self_audit     ``SELF_AUDIT_RETENTION_DAYS`` (2190; never        when it was written
               shorter than RETENTION_DAYS, ``--days`` cannot
               shorten it)
cases          ``CASE_RETENTION_DAYS`` (1825), closed cases      when the case was closed
=============  ==============================================  =========================================

- A day D of a class goes once the whole day is older than its period: ``D + 1 day <= now - period``.
  Deleting whole days (ES: a daily index; SQLite: the rows of one day) lets the tamper-evidence chain
  record "day D of class C deleted, N records" and still verify: subscribe to :data:`ON_DAY_DELETED`.
- A breach case holds the time range of its evidence (its alerts' windows, the breach period, the
  detection time) for events, dead letters and alerts, and its own lifetime for self-audit records,
  until it is closed plus ``LEGAL_HOLD_DAYS`` (365). A held day is kept whole and the plan says so:
  ``kept: held by BR-2026-0001``. GDPR Art. 33(5) (documenting the breach "to enable the
  supervisory authority to verify compliance"), Art. 17(3)(e) (erasure does not apply to data needed
  for legal claims).

:func:`plan` is pure (stores are only counted); :func:`execute` deletes the days the plan marks
``delete``, calling every hook after each day.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

DAY = timedelta(days=1)


class DataClass(StrEnum):
    events = "events"
    dead_letters = "dead_letters"
    alerts = "alerts"
    self_audit = "self_audit"
    cases = "cases"


#: the classes the event store holds (cases live in the breach repository)
STORE_CLASSES = (DataClass.events, DataClass.dead_letters, DataClass.alerts, DataClass.self_audit)
#: the classes ``--days`` sets; the others keep their own period
GENERAL_CLASSES = frozenset({DataClass.events, DataClass.dead_letters})


class DayStore(Protocol):
    """What a store offers retention, per data class it holds (SQLite, Elasticsearch, the breach repo)."""

    def retention_days(self, cls: str) -> list[date]:
        """The UTC days that hold records of ``cls``, oldest first (empty for a class it does not hold)."""
        ...

    def count_day(self, cls: str, day: date) -> int:
        """How many records of ``cls`` lie in UTC day ``day``."""
        ...

    def delete_day(self, cls: str, day: date) -> int:
        """Delete every record of ``cls`` in UTC day ``day``; return how many. Called only for days the
        plan marks ``delete``; a failure raises StoreError and leaves the day whole or deleted."""
        ...


#: hooks called after each deleted day: ``hook(cls, day, count)``. The tamper-evidence chain
#: subscribes here. A hook that raises stops the run after that day (the error propagates), so
#: no later day is deleted without its record.
DayDeletedHook = Callable[[str, date, int], None]
ON_DAY_DELETED: list[DayDeletedHook] = []


def utc_day(t: datetime) -> date:
    return t.astimezone(UTC).date()


def day_start(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


@dataclass(frozen=True)
class LegalHold:
    """Data kept whatever their retention says: a case's evidence, until ``expires`` (None: the case
    is open). ``since``/``until`` bound the evidence of events, dead letters and alerts; self-audit
    records are held from ``since`` to the end of the hold; ``case_day`` holds the case itself."""

    id: str  # the case id, e.g. BR-2026-0001
    since: datetime
    until: datetime
    expires: datetime | None
    reason: str
    case_day: date | None = None

    def active(self, now: datetime) -> bool:
        return self.expires is None or now < self.expires

    def holds(self, cls: str, day: date, now: datetime) -> bool:
        if not self.active(now):
            return False
        if cls == DataClass.cases:
            return self.case_day == day
        end = (self.expires or now) if cls == DataClass.self_audit else self.until
        return utc_day(self.since) <= day <= utc_day(end)

    def to_doc(self) -> dict[str, Any]:
        return {"id": self.id, "since": self.since.isoformat(), "until": self.until.isoformat(),
                "expires": self.expires.isoformat() if self.expires else None, "reason": self.reason,
                "case_day": self.case_day.isoformat() if self.case_day else None}

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> LegalHold:
        def t(v: str | None) -> datetime | None:
            return datetime.fromisoformat(v).astimezone(UTC) if v else None

        since, until = t(doc["since"]), t(doc["until"])
        assert since is not None and until is not None
        return cls(id=str(doc["id"]), since=since, until=until, expires=t(doc.get("expires")),
                   reason=str(doc.get("reason") or ""),
                   case_day=date.fromisoformat(doc["case_day"]) if doc.get("case_day") else None)


def hold_for_case(case: Any, legal_hold_days: int) -> LegalHold:
    """The legal hold of a breach case (:class:`access_audit.breach.model.BreachCase`): the time range
    of its evidence, held while it is open and for ``legal_hold_days`` after it was closed."""
    times: list[datetime] = []
    for a in case.alerts:
        times += [a.first_seen, a.last_seen]
    times += [t for t in (case.occurred_from, case.occurred_to, case.detected_at) if t is not None]
    if case.awareness is not None:
        times.append(case.awareness.at)
    if not times:
        times = [case.opened_at]
    closed = case.closed_at
    return LegalHold(id=case.id, since=min(times), until=max(times),
                     expires=closed + timedelta(days=legal_hold_days) if closed else None,
                     reason=f"evidence of breach case {case.id}" + (" (closed)" if closed else " (open)"),
                     case_day=utc_day(closed) if closed else None)


@dataclass(frozen=True)
class Periods:
    """The retention period of every class, in days (from the settings; ``--days`` sets events)."""

    events: int = 365
    dead_letters: int = 365
    alerts: int = 730
    self_audit: int = 2190
    cases: int = 1825

    def __post_init__(self) -> None:
        for cls in DataClass:
            if getattr(self, cls.value) < 1:
                raise ValueError(f"retention of {cls.value} must be at least 1 day")

    @classmethod
    def from_settings(cls, settings: Any, days: int | None = None) -> Periods:
        """``days`` (the CLI's ``--days``) sets events and dead letters; self-audit keeps its own
        period and is never shorter than the events' (ACCESS_AUDIT_SELF_AUDIT_RETENTION_DAYS)."""
        ev = int(days or settings.retention_days)
        dl = int(days or getattr(settings, "dead_letter_retention_days", None) or settings.retention_days)
        own = int(getattr(settings, "self_audit_retention_days", 2190))
        return cls(events=ev, dead_letters=dl, alerts=int(getattr(settings, "alert_retention_days", 730)),
                   self_audit=max(own, int(settings.retention_days), ev),
                   cases=int(getattr(settings, "case_retention_days", 1825)))

    def of(self, cls: str) -> int:
        return int(getattr(self, str(cls)))


@dataclass(frozen=True)
class PlanLine:
    cls: str
    day: date
    records: int
    action: str  # "delete" | "kept: held by BR-..." | "kept: own retention (N days)"
    held_by: tuple[str, ...] = ()

    @property
    def deletes(self) -> bool:
        return self.action == "delete"

    def to_json(self) -> dict[str, Any]:
        return {"class": self.cls, "day": self.day.isoformat(), "records": self.records, "action": self.action,
                "held_by": list(self.held_by)}


@dataclass
class RetentionPlan:
    now: datetime
    periods: Periods
    lines: list[PlanLine] = field(default_factory=list)
    holds: list[LegalHold] = field(default_factory=list)

    def deleting(self) -> Iterator[PlanLine]:
        return (ln for ln in self.lines if ln.deletes)

    def summary(self) -> dict[str, dict[str, int]]:
        """Per class: days and records to delete, days and records kept (held or own retention)."""
        out: dict[str, dict[str, int]] = {}
        for ln in self.lines:
            s = out.setdefault(ln.cls, {"delete_days": 0, "delete_records": 0, "kept_days": 0, "kept_records": 0})
            k = "delete" if ln.deletes else "kept"
            s[f"{k}_days"] += 1
            s[f"{k}_records"] += ln.records
        return out

    def to_json(self) -> dict[str, Any]:
        return {"now": self.now.isoformat(), "periods": {c.value: self.periods.of(c) for c in DataClass},
                "lines": [ln.to_json() for ln in self.lines], "summary": self.summary(),
                "holds": [h.to_doc() for h in self.holds]}


def plan(stores: dict[str, DayStore], periods: Periods, holds: Iterable[LegalHold], now: datetime, *,
         general_days: int | None = None) -> RetentionPlan:
    """Which days of which class go. ``stores``: class -> the store that holds it. A day older than its
    class's period is ``delete`` unless a hold covers it; with ``general_days`` (``--days``), days of
    the classes with their own period that the general period would have removed are listed as
    ``kept: own retention``."""
    if now.tzinfo is None:
        raise ValueError("retention needs an aware 'now'")
    holds = list(holds)
    out = RetentionPlan(now=now, periods=periods, holds=holds)
    for key, store in stores.items():
        cls = DataClass(key).value  # plain str: JSON keys, and the name hooks receive
        cutoff = now - timedelta(days=periods.of(cls))
        general_cutoff = now - timedelta(days=general_days) if general_days and cls not in GENERAL_CLASSES else None
        for day in store.retention_days(cls):
            end = day_start(day) + DAY
            own_expired = end <= cutoff
            if not own_expired and not (general_cutoff and end <= general_cutoff):
                continue
            n = store.count_day(cls, day)
            if not own_expired:
                out.lines.append(PlanLine(cls, day, n, f"kept: own retention ({periods.of(cls)} days)"))
                continue
            by = tuple(sorted(h.id for h in holds if h.holds(cls, day, now)))
            action = f"kept: held by {', '.join(by)}" if by else "delete"
            out.lines.append(PlanLine(cls, day, n, action, by))
    out.lines.sort(key=lambda ln: (list(DataClass).index(DataClass(ln.cls)), ln.day))
    return out


def execute(p: RetentionPlan, stores: dict[str, DayStore], hooks: Iterable[DayDeletedHook] | None = None
            ) -> dict[str, int]:
    """Delete the days ``p`` marks ``delete``, oldest first per class; after each day call every hook
    (default :data:`ON_DAY_DELETED`) with (class, day, records deleted). Returns records deleted per class."""
    hooks = list(ON_DAY_DELETED if hooks is None else hooks)
    done: dict[str, int] = {}
    for ln in p.deleting():
        n = {DataClass(k).value: v for k, v in stores.items()}[ln.cls].delete_day(ln.cls, ln.day)
        done[ln.cls] = done.get(ln.cls, 0) + n
        for hook in hooks:
            hook(ln.cls, ln.day, n)
    return done


def plan_text(p: RetentionPlan) -> list[tuple[str, str, str, str]]:
    """Rows for a table: class, days (a run of consecutive days with the same action), records, action."""
    rows: list[tuple[str, str, str, str]] = []
    run: list[PlanLine] = []

    def flush() -> None:
        if run:
            days = run[0].day.isoformat() + (f" .. {run[-1].day.isoformat()} ({len(run)} days)" if len(run) > 1 else "")
            rows.append((run[0].cls, days, str(sum(x.records for x in run)), run[0].action))
            run.clear()

    for ln in p.lines:
        if run and (ln.cls != run[-1].cls or ln.action != run[-1].action or ln.day != run[-1].day + DAY):
            flush()
        run.append(ln)
    flush()
    return rows
