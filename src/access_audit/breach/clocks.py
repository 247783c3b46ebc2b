"""Legal clocks: every deadline that runs from one awareness timestamp, as data.

A regime (``gdpr``, ``uk_gdpr``, ``processor``, ``nis2``, ``dora``, ``hipaa``) is a list of
clock rules. A rule's due time is the earliest of its terms, each ``anchor + period``; the anchor
is the awareness time or a milestone recorded on the case (``nis2_notification_sent``,
``dora_classified_major``...). A clock whose trigger is not recorded yet is *waiting*; a clock
whose ``done_by`` milestone is recorded is *met* (or *met late*).

Periods come in two kinds, because the law counts them in two ways:

- hours are elapsed time: 72 hours after 10:00 on the Friday before the spring change ends at
  11:00 (summer time) on Monday, not at 10:00;
- months and days are calendar periods in the organisation's time zone: one month after
  10:00 on 31 January is 10:00 on 28 (or 29) February, whatever the offset then.

Everything is computed and stored in UTC and shown in the organisation's time zone as ISO 8601
with its offset.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from access_audit.breach.model import BreachCase, BreachError, BreachState
from access_audit.core.errors import ConfigError

AWARENESS = "awareness"


def org_zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"unknown time zone {name!r}: use an IANA name such as Europe/Amsterdam") from None


@dataclass(frozen=True)
class Period:
    """``hours`` elapsed, or ``days``/``months`` on the calendar of the organisation's time zone."""

    hours: float = 0
    days: int = 0
    months: int = 0
    year_end: bool = False  # count from the end of the calendar year of ``t`` (45 CFR 164.408(c))

    def after(self, t: datetime, tz: ZoneInfo) -> datetime:
        t = t.astimezone(UTC)
        if self.year_end:
            t = local_to_utc(datetime(t.astimezone(tz).year + 1, 1, 1), tz)
        if self.days or self.months:
            local = t.astimezone(tz)
            y, m = divmod(local.month - 1 + self.months, 12)
            year, month = local.year + y, m + 1
            day = min(local.day, calendar.monthrange(year, month)[1])
            wall = local.replace(tzinfo=None, year=year, month=month, day=day) + timedelta(days=self.days)
            t = local_to_utc(wall, tz)
        return t + timedelta(hours=self.hours)

    def text(self) -> str:
        parts = []
        if self.months:
            parts.append("one month" if self.months == 1 else f"{self.months} months")
        if self.days:
            parts.append(f"{self.days} calendar days")
        if self.hours:
            h = int(self.hours) if float(self.hours).is_integer() else self.hours
            parts.append(f"{h} hours")
        text = " + ".join(parts) or "immediately"
        return f"{text} after the end of the calendar year of" if self.year_end else text


def local_to_utc(wall: datetime, tz: ZoneInfo) -> datetime:
    """A wall-clock time in ``tz`` -> UTC. In the autumn overlap the first (summer) occurrence is
    taken; a time in the spring gap does not exist and moves forward by the gap (02:30 -> 03:30)."""
    return wall.replace(tzinfo=tz, fold=0).astimezone(UTC)


class AmbiguousLocalTimeError(ValueError):
    """A wall-clock time that does not exist (spring gap) or exists twice (autumn fold) in the zone."""


def strict_local_to_utc(wall: datetime, tz: ZoneInfo) -> datetime:
    """A wall-clock time typed by a person in ``tz`` -> UTC, refusing what is not one instant:
    a time in the spring gap does not exist (2026-03-29T02:30 in Amsterdam), and one in the autumn
    fold happens twice (2026-10-25T02:30): the offset must be given then."""
    wall = wall.replace(tzinfo=None)
    first, second = wall.replace(tzinfo=tz, fold=0), wall.replace(tzinfo=tz, fold=1)
    if first.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != wall:
        raise AmbiguousLocalTimeError(f"{wall.isoformat()} does not exist in {tz.key} (the clocks were put forward): "
                                      "give the time with its offset")
    if first.utcoffset() != second.utcoffset():
        w = wall.isoformat(timespec="minutes")
        raise AmbiguousLocalTimeError(f"{wall.isoformat()} happens twice in {tz.key} (the clocks were put back): "
                                      f"give the offset, {w}{_offset(first)} (the first) or {w}{_offset(second)} "
                                      "(the second)")
    return first.astimezone(UTC)


def _offset(t: datetime) -> str:
    off = t.utcoffset()
    assert off is not None
    m = int(off.total_seconds() // 60)
    return f"{'+' if m >= 0 else '-'}{abs(m) // 60:02d}:{abs(m) % 60:02d}"


def local_iso(t: datetime, tz: ZoneInfo) -> str:
    return t.astimezone(tz).isoformat(timespec="seconds")


@dataclass(frozen=True)
class DueTerm:
    anchor: str  # "awareness" or a milestone name
    period: Period

    def text(self) -> str:
        return f"{self.period.text()} after {self.anchor.replace('_', ' ')}"


@dataclass(frozen=True)
class ClockRule:
    id: str
    regime: str
    label: str
    legal_basis: str
    terms: tuple[DueTerm, ...]  # due = the earliest of the terms whose anchor is recorded
    done_by: str  # the milestone that meets the obligation
    trigger: str = AWARENESS  # the clock starts when this is recorded
    not_required_states: frozenset[BreachState] = frozenset({BreachState.not_a_breach})
    authority_notification: bool = False  # the late-notification rule applies to approving the draft
    waived_by: str | None = None  # a milestone that makes the obligation not apply (e.g. not significant)
    origin: str | None = None  # the regime's own start, entered by a person, instead of the GDPR awareness
    applies: Callable[[BreachCase], bool] | None = None  # None: always; else not_required when False
    listed_only_when_applies: bool = False  # not shown at all while it does not apply

    @property
    def rule_text(self) -> str:
        return " or ".join(t.text() for t in self.terms) + (", whichever is earlier" if len(self.terms) > 1 else "")


_NOT_NOTIFIABLE = frozenset({BreachState.not_a_breach, BreachState.no_notification_needed})


def _subjects_to_be_told(case: BreachCase) -> bool:
    if case.subjects is not None:
        return case.subjects.decision.value == "communicate"
    return case.risk is not None and case.risk.level.value == "high"


def regime_rules(processor_notice_hours: float = 24) -> dict[str, tuple[ClockRule, ...]]:
    """Every regime this package knows, by id."""
    aw = AWARENESS
    return {
        "gdpr": (
            ClockRule("gdpr.authority", "gdpr", "GDPR: notify the supervisory authority", "GDPR Art. 33(1)",
                      (DueTerm(aw, Period(hours=72)),), done_by="authority_notified",
                      not_required_states=_NOT_NOTIFIABLE, authority_notification=True),
            # Art. 34(1): "without undue delay" once the risk is high (unless an Art. 34(3) exception is
            # decided); the law sets no hours: the target is the authority's 72 hours (EDPB Guidelines
            # 9/2022: in parallel with the notification where the risk is high)
            ClockRule("gdpr.subjects", "gdpr", "GDPR: tell the data subjects without undue delay",
                      "GDPR Art. 34(1)", (DueTerm(aw, Period(hours=72)),), done_by="subjects_communicated",
                      not_required_states=_NOT_NOTIFIABLE, applies=_subjects_to_be_told,
                      listed_only_when_applies=True),
        ),
        "uk_gdpr": (
            ClockRule("uk_gdpr.authority", "uk_gdpr", "UK GDPR: notify the ICO", "UK GDPR Art. 33(1)",
                      (DueTerm(aw, Period(hours=72)),), done_by="ico_notified",
                      not_required_states=_NOT_NOTIFIABLE, authority_notification=True),
        ),
        "processor": (
            ClockRule("processor.controller", "processor",
                      "Processor: notify the controller without undue delay",
                      "GDPR Art. 33(2); data processing agreement",
                      (DueTerm(aw, Period(hours=processor_notice_hours)),), done_by="controller_notified"),
        ),
        # NIS2 Art. 23(4)(a), (b): "within 24 hours / 72 hours of becoming aware of the significant
        # incident": from nis2_aware when entered (who, why), else from the GDPR awareness
        "nis2": (
            ClockRule("nis2.early_warning", "nis2", "NIS2: early warning to the CSIRT / competent authority",
                      "NIS2 Directive Art. 23(4)(a)", (DueTerm(aw, Period(hours=24)),),
                      done_by="nis2_early_warning_sent", waived_by="nis2_not_significant", origin="nis2_aware"),
            ClockRule("nis2.notification", "nis2", "NIS2: incident notification", "NIS2 Directive Art. 23(4)(b)",
                      (DueTerm(aw, Period(hours=72)),), done_by="nis2_notification_sent",
                      waived_by="nis2_not_significant", origin="nis2_aware"),
            ClockRule("nis2.final_report", "nis2", "NIS2: final report", "NIS2 Directive Art. 23(4)(d)",
                      (DueTerm("nis2_notification_sent", Period(months=1)),), done_by="nis2_final_report_sent",
                      trigger="nis2_notification_sent", waived_by="nis2_not_significant"),
        ),
        "dora": (
            ClockRule("dora.initial", "dora", "DORA: initial notification of a major ICT-related incident",
                      "DORA Art. 19(4)(a); Delegated Regulation (EU) 2025/301 Art. 5",
                      # 2025/301 Art. 5(1)(a): 4 hours from classification as major, no later than 24 hours
                      # from becoming aware of the ICT-related incident (dora_aware, else the GDPR awareness)
                      (DueTerm("dora_classified_major", Period(hours=4)), DueTerm(aw, Period(hours=24))),
                      done_by="dora_initial_sent", trigger="dora_classified_major", origin="dora_aware"),
            ClockRule("dora.intermediate", "dora", "DORA: intermediate report",
                      "DORA Art. 19(4)(b); Delegated Regulation (EU) 2025/301 Art. 5",
                      (DueTerm("dora_initial_sent", Period(hours=72)),), done_by="dora_intermediate_sent",
                      trigger="dora_initial_sent"),
            ClockRule("dora.final", "dora", "DORA: final report",
                      "DORA Art. 19(4)(c); Delegated Regulation (EU) 2025/301 Art. 5",
                      (DueTerm("dora_intermediate_sent", Period(months=1)),), done_by="dora_final_sent",
                      trigger="dora_intermediate_sent"),
        ),
        # HIPAA runs from discovery: "the first day on which such breach is known ... or, by exercising
        # reasonable diligence, would have been known" (45 CFR 164.404(a)(2)): hipaa_discovered, entered
        # by a person with the reason, else the GDPR awareness
        "hipaa": (
            ClockRule("hipaa.individuals", "hipaa", "HIPAA: notify affected individuals", "45 CFR 164.404(b)",
                      (DueTerm(aw, Period(days=60)),), done_by="hipaa_individuals_notified",
                      waived_by="hipaa_low_probability_of_compromise", origin="hipaa_discovered"),
            ClockRule("hipaa.media", "hipaa", "HIPAA: notify prominent media (more than 500 residents of a State)",
                      "45 CFR 164.406(a), (b)", (DueTerm(aw, Period(days=60)),), done_by="hipaa_media_notified",
                      waived_by="hipaa_low_probability_of_compromise", origin="hipaa_discovered",
                      applies=lambda c: (n := hipaa_count(c)) is None or n > 500),
            ClockRule("hipaa.hhs", "hipaa", "HIPAA: notify HHS (500 or more individuals: with the individuals)",
                      "45 CFR 164.408(b)", (DueTerm(aw, Period(days=60)),), done_by="hipaa_hhs_notified",
                      waived_by="hipaa_low_probability_of_compromise", origin="hipaa_discovered",
                      applies=lambda c: (n := hipaa_count(c)) is None or n >= 500),
            ClockRule("hipaa.hhs_annual", "hipaa", "HIPAA: log for HHS (fewer than 500 individuals: yearly)",
                      "45 CFR 164.408(c)", (DueTerm(aw, Period(days=60, year_end=True)),),
                      done_by="hipaa_hhs_notified", waived_by="hipaa_low_probability_of_compromise",
                      origin="hipaa_discovered", applies=lambda c: (n := hipaa_count(c)) is not None and n < 500),
        ),
    }


def hipaa_count(case: BreachCase) -> int | None:
    """Individuals affected, for HIPAA's 500 thresholds: the upper estimate; None when unknown
    (then the stricter rules apply: HHS with the individuals, and the media notice)."""
    d = case.details
    return d.subjects_max if d.subjects_max is not None else d.subjects_min


REGIMES = tuple(regime_rules())

#: clock origins that the law leaves to a person: entered with who and why, never computed
ORIGIN_MILESTONES = frozenset({"nis2_aware", "dora_aware", "dora_classified_major", "hipaa_discovered"})


def rules_for(regimes: Iterable[str], processor_notice_hours: float = 24) -> list[ClockRule]:
    known = regime_rules(processor_notice_hours)
    out: list[ClockRule] = []
    for r in regimes:
        if r not in known:
            raise BreachError(f"unknown regime {r!r}; available: {', '.join(known)}")
        out.extend(known[r])
    return out


def milestone_names(processor_notice_hours: float = 24) -> set[str]:
    """Milestones a user may record (anchors and done-by markers of every rule)."""
    names = {"authority_notified", "subjects_communicated"}
    for rules in regime_rules(processor_notice_hours).values():
        for rule in rules:
            names.add(rule.done_by)
            if rule.waived_by:
                names.add(rule.waived_by)
            names.update(t.anchor for t in rule.terms if t.anchor != AWARENESS)
            if rule.origin:
                names.add(rule.origin)
    return names


@dataclass(frozen=True)
class ClockStatus:
    rule: ClockRule
    status: str  # waiting | open | overdue | met | met_late | not_required
    due: datetime | None  # UTC
    started: datetime | None  # the trigger's time
    known_since: datetime | None  # when the trigger was entered (reminders due before it are not sent)
    done_at: datetime | None
    now: datetime
    origin: str = AWARENESS  # what the clock runs from: awareness, or the regime's own origin

    @property
    def id(self) -> str:
        return self.rule.id

    @property
    def is_open(self) -> bool:
        return self.status in ("open", "overdue")

    def to_json(self, tz: ZoneInfo) -> dict[str, Any]:
        remaining = (self.due - self.now).total_seconds() if self.due and self.is_open else None
        return {
            "id": self.rule.id, "regime": self.rule.regime, "label": self.rule.label,
            "legal_basis": self.rule.legal_basis, "rule": self.rule.rule_text, "status": self.status,
            "due": local_iso(self.due, tz) if self.due else None,
            "due_utc": self.due.isoformat().replace("+00:00", "Z") if self.due else None,
            "started": local_iso(self.started, tz) if self.started else None,
            "done_at": local_iso(self.done_at, tz) if self.done_at else None,
            "origin": self.origin if self.origin != AWARENESS or not self.rule.origin
            else f"awareness (no {self.rule.origin} entered)",
            "remaining_seconds": int(remaining) if remaining is not None else None,
            "remaining": human_delta(remaining) if remaining is not None else None,
        }


def human_delta(seconds: float) -> str:
    late = seconds < 0
    s = int(abs(seconds))
    d, rest = divmod(s, 86400)
    h, rest = divmod(rest, 3600)
    m = rest // 60
    text = " ".join(p for p in (f"{d}d" if d else "", f"{h}h" if h or d else "", f"{m}m") if p)
    return f"overdue by {text}" if late else f"{text} left"


def _anchor(case: BreachCase, name: str, origin: str | None = None) -> tuple[datetime | None, datetime | None]:
    """(time, entered at) of an anchor on the case; the awareness of a regime with its own origin is
    that origin once it is entered."""
    if name == AWARENESS and origin and origin in case.milestones:
        name = origin
    if name == AWARENESS:
        return (case.awareness.at, case.awareness.recorded_at) if case.awareness else (None, None)
    t = case.milestones.get(name)
    return t, case.milestones_recorded.get(name, t)


def _not_required(case: BreachCase, rule: ClockRule) -> bool:
    if rule.applies is not None and not rule.applies(case):
        return True
    if rule.waived_by and rule.waived_by in case.milestones:
        return True
    if case.state in rule.not_required_states:
        return True
    if case.state is BreachState.closed:  # closed from a not-notifiable state: look at how it got there
        was = {e.from_state for e in case.trail if e.to_state is BreachState.closed}
        return bool(was & set(rule.not_required_states))
    return False


def clock_status(case: BreachCase, rule: ClockRule, now: datetime, tz: ZoneInfo) -> ClockStatus:
    origin = rule.origin if rule.origin and rule.origin in case.milestones else AWARENESS
    started, known_since = _anchor(case, rule.trigger, rule.origin)
    done_at = case.milestones.get(rule.done_by)
    if started is None:
        return ClockStatus(rule, "not_required" if _not_required(case, rule) else "waiting", None, None, None,
                           done_at, now, origin)
    dues = [t.period.after(a, tz) for t in rule.terms if (a := _anchor(case, t.anchor, rule.origin)[0]) is not None]
    due = min(dues)
    if rule.applies is not None and not rule.applies(case):
        return ClockStatus(rule, "not_required", due, started, known_since, done_at, now, origin)
    if done_at is not None:
        status = "met" if done_at <= due else "met_late"
    elif _not_required(case, rule):
        status = "not_required"
    else:
        status = "overdue" if now >= due else "open"
    return ClockStatus(rule, status, due, started, known_since, done_at, now, origin)


def case_clocks(case: BreachCase, now: datetime, tz: ZoneInfo, processor_notice_hours: float = 24) -> list[ClockStatus]:
    """Every clock of the case's regimes, in the order the regimes list them."""
    return [clock_status(case, r, now, tz) for r in rules_for(case.regimes, processor_notice_hours)
            if not (r.listed_only_when_applies and r.applies is not None and not r.applies(case))]
