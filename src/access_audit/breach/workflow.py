"""The breach workflow: every action on a case, with its guards and its line in the audit trail.

The CLI, the HTTP API, Slack's escalate button and the demo all go through :class:`BreachWorkflow`;
nothing else changes a case. Each action reads the case, checks the state machine
(:mod:`access_audit.breach.machine`) and the action's guards, changes the case, appends one or more
audit entries (who, when, what changed, why) and saves it, refusing if someone else saved it in
between. Time comes from the injected clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from access_audit.breach import drafts as drafts_mod
from access_audit.breach.clocks import (
    ORIGIN_MILESTONES,
    REGIMES,
    ClockStatus,
    case_clocks,
    local_iso,
    milestone_names,
    org_zone,
    rules_for,
)
from access_audit.breach.machine import require_action, require_reason, require_transition
from access_audit.breach.model import (
    Amendment,
    Approval,
    AuditEntry,
    Awareness,
    BreachCase,
    BreachDetails,
    BreachError,
    BreachState,
    Contact,
    DraftRecord,
    EvidenceAlert,
    MilestoneNote,
    Notification,
    OutstandingElement,
    Protection,
    RegimeReport,
    RiskLevel,
    SubjectsDecision,
    SubjectsDecisionKind,
    Submission,
    Supplement,
    TransitionRefusedError,
)
from access_audit.breach.repo import BreachRepo
from access_audit.breach.risk import RiskWorksheet, assessment_record
from access_audit.core.alerts import Alert
from access_audit.core.clock import Clock

S = BreachState


@dataclass(frozen=True)
class BreachConfig:
    """The organisation's breach settings (from :class:`access_audit.settings.Settings`)."""

    timezone: str = "Europe/Amsterdam"
    regimes: tuple[str, ...] = ("gdpr",)
    processor_notice_hours: float = 24
    reminder_offsets_hours: tuple[float, ...] = (48, 24, 6, 1)
    organisation: str | None = None
    dpo_name: str | None = None
    dpo_email: str | None = None
    dpo_phone: str | None = None
    authority: str = "Autoriteit Persoonsgegevens"

    @property
    def tz(self) -> ZoneInfo:
        return org_zone(self.timezone)

    @classmethod
    def from_settings(cls, settings: Any) -> BreachConfig:
        def g(name: str, default: Any) -> Any:  # settings may predate a field
            return getattr(settings, name, default)

        return cls(timezone=g("org_timezone", cls.timezone), regimes=tuple(g("breach_regimes", cls.regimes)),
                   processor_notice_hours=g("processor_notice_hours", cls.processor_notice_hours),
                   reminder_offsets_hours=tuple(g("reminder_offsets_hours", cls.reminder_offsets_hours)),
                   organisation=g("organisation_name", None), dpo_name=g("dpo_name", None),
                   dpo_email=g("dpo_email", None), dpo_phone=g("dpo_phone", None))

    def __post_init__(self) -> None:
        org_zone(self.timezone)
        unknown = [r for r in self.regimes if r not in REGIMES]
        if unknown:
            raise BreachError(f"unknown breach regime(s) {', '.join(unknown)}; available: {', '.join(REGIMES)}")


def evidence_of(alert: Alert) -> EvidenceAlert:
    return EvidenceAlert(id=alert.id, rule_id=alert.rule_id, title=alert.title, severity=alert.severity.value,
                         user=alert.user, source_ip=alert.source_ip, resource=alert.resource,
                         first_seen=alert.first_seen, last_seen=alert.last_seen, count=alert.count,
                         event_ids=list(alert.event_ids), data_categories=list(alert.data_categories),
                         query=alert.query)


def _diff(before: dict[str, Any], after: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k in sorted(set(before) | set(after)):
        a, b = before.get(k), after.get(k)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            out.update(_diff(a, b, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = [a, b]
    return out


@dataclass
class _Step:
    """One action in progress: the case being changed and the audit entries it will add."""

    case: BreachCase
    actor: str
    now: datetime
    entries: list[AuditEntry] = field(default_factory=list)

    def log(self, action: str, *, reason: str | None = None, to: BreachState | None = None,
            before: dict[str, Any] | None = None, changes: dict[str, Any] | None = None) -> None:
        frm: BreachState | None = self.case.state if self.case.trail else None  # opening has no previous state
        if to is not None:
            self.case.state = to
        ch = dict(changes or {})
        if before is not None:
            ch.update(_diff(before, self.case.model_dump(mode="json", exclude={"trail", "version", "state"})))
        seq = len(self.case.trail) + 1
        e = AuditEntry(seq=seq, at=self.now, actor=self.actor, action=action, from_state=frm,
                       to_state=to if to is not None else None, reason=reason, changes=ch)
        self.case.trail.append(e)
        self.entries.append(e)

    def snapshot(self) -> dict[str, Any]:
        return self.case.model_dump(mode="json", exclude={"trail", "version", "state"})


#: milestones that meet an obligation with its own path: a milestone records facts, it never
#: satisfies such an obligation by itself
PATH_MILESTONES: dict[str, str] = {
    # GDPR Art. 33(1), (3), (5): the notification is a drafted, approved text, submitted with the authority's reference
    "authority_notified": "record the submission with 'breach submit' (after 'breach draft' and 'breach approve')",
    "ico_notified": "record the submission with 'breach submit --milestone ico_notified' (UK GDPR Art. 33(1))",
    # GDPR Art. 34(1), (3): the decision on the data subjects, with its reasoning
    "subjects_communicated": "record the decision with 'breach subjects --decision communicate --communicated-at ...'",
}

#: case fields ``edit`` may change besides the details
_CASE_FIELDS = {"occurred_from", "occurred_to", "detected_at", "regimes"}


class BreachWorkflow:
    """Every action on breach cases. ``clock`` gives the time of each step (inject FrozenClock in tests)."""

    def __init__(self, repo: BreachRepo, clock: Clock, config: BreachConfig | None = None) -> None:
        self.repo = repo
        self.clock = clock
        self.config = config or BreachConfig()

    # --- helpers ---------------------------------------------------------------------------------

    def _actor(self, actor: str | None) -> str:
        if not actor or not actor.strip():
            raise BreachError("every step needs a named person (actor)")
        return actor.strip()

    def _step(self, case_id: str, actor: str | None) -> _Step:
        return _Step(self.repo.get(case_id), self._actor(actor), self.clock.now())

    def _save(self, st: _Step) -> BreachCase:
        return self.repo.save(st.case, st.entries)

    def clocks(self, case: BreachCase, now: datetime | None = None) -> list[ClockStatus]:
        return case_clocks(case, now or self.clock.now(), self.config.tz, self.config.processor_notice_hours)

    def get(self, case_id: str) -> BreachCase:
        return self.repo.get(case_id)

    # --- open ------------------------------------------------------------------------------------

    def open_case(self, actor: str, *, title: str | None = None, summary: str | None = None,
                  source: str = "manual", occurred_from: datetime | None = None, occurred_to: datetime | None = None,
                  detected_at: datetime | None = None, alerts: list[Alert] | None = None,
                  details: dict[str, Any] | None = None, provenance: dict[str, str] | None = None,
                  regimes: list[str] | None = None, reason: str | None = None) -> BreachCase:
        """Open a case (state ``reported``), by hand or from alerts. The DPO contact and the
        organisation come from the config unless ``details`` says otherwise."""
        actor = self._actor(actor)
        now = self.clock.now()
        cfg = self.config
        base: dict[str, Any] = {"title": title, "summary": summary, "organisation": cfg.organisation,
                                "authority": cfg.authority,
                                "contact": Contact(name=cfg.dpo_name, email=cfg.dpo_email, phone=cfg.dpo_phone)}
        base.update(details or {})
        try:
            case = BreachCase(id="new", opened_at=now, opened_by=actor, source=source,
                              occurred_from=occurred_from, occurred_to=occurred_to,
                              detected_at=detected_at or (min(a.created_at for a in alerts) if alerts else None),
                              regimes=list(regimes or cfg.regimes), details=BreachDetails.model_validate(base),
                              provenance=dict(provenance or {}), alerts=[evidence_of(a) for a in alerts or []])
        except ValidationError as e:
            raise BreachError(f"invalid case: {e}") from None
        for r in case.regimes:
            if r not in REGIMES:
                raise BreachError(f"unknown regime {r!r}; available: {', '.join(REGIMES)}")
        st = _Step(case, actor, now)
        st.log("open", reason=reason or (f"opened from {len(alerts)} alert(s)" if alerts else "opened by hand"),
               to=S.reported, changes={"alerts": [a.id for a in alerts or []]} if alerts else None)
        tz = cfg.tz
        return self.repo.create(case, year=now.astimezone(tz).year)

    # --- triage and awareness --------------------------------------------------------------------

    def start_triage(self, case_id: str, actor: str, reason: str | None = None) -> BreachCase:
        st = self._step(case_id, actor)
        require_transition(st.case, S.triage)
        if st.case.state is S.not_a_breach:
            reason = require_reason(st.case, reason, "reopening a case dismissed as not a breach")
            st.case.not_a_breach_reason = None
        st.log("triage", reason=reason, to=S.triage)
        return self._save(st)

    def awareness_doubts(self, case: BreachCase, at: datetime) -> list[str]:
        """Why an awareness time looks like a typo, for the caller to confirm before it is set (issue 13):
        before the first evidence (the earliest alert of the case: the organisation cannot have been
        aware of what had not happened yet), or more than a year from now (a wrong year). Empty: no doubt."""
        doubts = []
        first = min((a.first_seen for a in case.alerts), default=None)
        if first is not None and at < first:
            doubts.append(f"before the first evidence ({local_iso(first, self.config.tz)})")
        if abs(self.clock.now() - at) > timedelta(days=365):
            doubts.append("more than a year from now")
        return doubts

    def set_awareness(self, case_id: str, actor: str, at: datetime, reason: str, *,
                      by: str | None = None, delay_reasons: str | None = None) -> BreachCase:
        """Record when the organisation became aware (all clocks run from it). From ``reported`` or
        ``triage`` this confirms the breach; later it corrects the time (reason required): the
        earlier time stays in ``awareness_history`` and every clock is re-evaluated, so a
        correction that makes a met deadline late needs ``delay_reasons`` (GDPR Art. 33(1))."""
        st = self._step(case_id, actor)
        c = st.case
        reason = require_reason(c, reason, "setting the awareness time")
        if at.tzinfo is None:
            raise BreachError("the awareness time needs a UTC offset (e.g. 2026-03-27T10:00+01:00)", case_id=c.id)
        if at > st.now:
            raise TransitionRefusedError(f"the awareness time {at.isoformat()} is in the future", case_id=c.id)
        before = st.snapshot()
        previous = c.awareness
        c.awareness = Awareness(at=at, by=by or st.actor, reason=reason, recorded_at=st.now)
        if c.state in (S.reported, S.triage):
            if c.state is S.reported:
                st.log("triage", reason="awareness set: triage passed", to=S.triage)
            st.log("aware", reason=reason, to=S.confirmed, before=before)
        else:
            require_action(c, "correct_awareness", "correct the awareness time")
            if previous is not None:
                c.awareness_history = [*c.awareness_history, previous]
            self._settle_lateness(st, delay_reasons, f"moving the awareness time to {at.isoformat()}")
            st.log("correct_awareness", reason=reason, before=before)
        return self._save(st)

    def dismiss(self, case_id: str, actor: str, reason: str) -> BreachCase:
        """Conclude it is not a personal-data breach (it stays in the register, with the reason)."""
        st = self._step(case_id, actor)
        c = st.case
        reason = require_reason(c, reason, "concluding it is not a breach")
        if c.state is S.reported:
            st.log("triage", reason="dismissed at intake", to=S.triage)
        require_transition(c, S.not_a_breach)
        before = st.snapshot()
        c.not_a_breach_reason = reason
        st.log("dismiss", reason=reason, to=S.not_a_breach, before=before)
        return self._save(st)

    # --- contents and milestones -----------------------------------------------------------------

    def edit(self, case_id: str, actor: str, changes: dict[str, Any], reason: str | None = None,
             provenance: dict[str, str] | None = None) -> BreachCase:
        """Change details (``summary``, ``subjects_max``, ``contact.email``...) or the case's times and regimes."""
        st = self._step(case_id, actor)
        c = st.case
        require_action(c, "edit", "edit the case")
        before = st.snapshot()
        details = c.details.model_dump(mode="json")
        top: dict[str, Any] = {}
        for key, value in changes.items():
            head, _, rest = key.partition(".")
            if head in _CASE_FIELDS:
                top[head] = value
            elif head == "contact" and rest:
                details["contact"][rest] = value
            elif head in BreachDetails.model_fields:
                details[head] = value
            else:
                raise BreachError(f"unknown field {key!r}; fields: "
                                  f"{', '.join(sorted({*BreachDetails.model_fields, *_CASE_FIELDS}))}", case_id=c.id)
        try:
            c.details = BreachDetails.model_validate(details)
            for k, v in top.items():
                setattr(c, k, v)
        except ValidationError as e:
            raise BreachError(f"invalid value: {_short(e)}", case_id=c.id) from None
        for r in c.regimes:
            if r not in REGIMES:
                raise BreachError(f"unknown regime {r!r}; available: {', '.join(REGIMES)}", case_id=c.id)
        for key in changes:  # a figure set by hand no longer comes from the evidence
            if provenance and key in provenance:
                c.provenance[key] = provenance[key]
            else:
                c.provenance.pop(key, None)
        st.log("edit", reason=reason, before=before)
        return self._save(st)

    def record_milestone(self, case_id: str, actor: str, name: str, at: datetime | None = None,
                         reason: str | None = None, *, delay_reasons: str | None = None) -> BreachCase:
        """Record a milestone that starts, meets or waives a clock (``nis2_early_warning_sent``,
        ``dora_classified_major``, ``nis2_not_significant``...). Refused for the milestones of an
        obligation with its own path (:data:`PATH_MILESTONES`). A milestone that meets a clock
        late, or a correction that makes one late, needs ``delay_reasons``."""
        st = self._step(case_id, actor)
        c = st.case
        require_action(c, "milestone", "record a milestone")
        known = milestone_names(self.config.processor_notice_hours)
        if name not in known:
            raise BreachError(f"unknown milestone {name!r}; known: {', '.join(sorted(known))}", case_id=c.id)
        if name in PATH_MILESTONES:
            raise TransitionRefusedError(f"{name} cannot be recorded as a milestone: it is met only through its own "
                                         f"path, so that what was sent, approved and referenced is on record. "
                                         f"{PATH_MILESTONES[name]}", case_id=c.id, from_state=c.state.value)
        if name in ORIGIN_MILESTONES:
            # a clock origin the law leaves to a person (NIS2 Art. 23(4): aware of the significant incident;
            # DORA 2025/301 Art. 5(1)(a): classification, awareness; 45 CFR 164.404(a)(2): discovery, "should
            # have known"): entered with who and why, never computed
            reason = require_reason(c, reason, f"entering {name} (a clock origin)")
        at = at or st.now
        if at > st.now:
            raise TransitionRefusedError(f"milestone {name} cannot be in the future ({at.isoformat()})", case_id=c.id)
        before = st.snapshot()
        correction = name in c.milestones
        c.milestones = {**c.milestones, name: at}
        c.milestones_recorded = {**c.milestones_recorded, name: st.now}
        c.milestone_notes = {**c.milestone_notes, name: MilestoneNote(by=st.actor, reason=reason, recorded_at=st.now)}
        self._settle_lateness(st, delay_reasons, f"recording {name} at {at.isoformat()}")
        st.log("correct_milestone" if correction else "milestone", reason=reason or name, before=before)
        return self._save(st)

    def dora_report(self, case_id: str, actor: str, *, at: datetime | None = None, reference: str | None = None,
                    note: str | None = None) -> BreachCase:
        """Record a DORA intermediate report, or an update of it (DORA Art. 19(4)(b): "followed, as
        appropriate, by updated notifications every time a relevant status update is available"). All
        are kept in ``reports``; the first meets the intermediate-report clock (dora_intermediate_sent)."""
        st = self._step(case_id, actor)
        c = st.case
        require_action(c, "milestone", "record a DORA report")
        if "dora" not in c.regimes:
            raise TransitionRefusedError("the case is not under DORA (add it to the regimes first)", case_id=c.id)
        if "dora_initial_sent" not in c.milestones:
            raise TransitionRefusedError("record the initial notification (dora_initial_sent) first", case_id=c.id)
        at = at or st.now
        if at > st.now:
            raise TransitionRefusedError(f"the report time {at.isoformat()} is in the future", case_id=c.id)
        before = st.snapshot()
        first = not any(r.regime == "dora" for r in c.reports)
        c.reports = [*c.reports, RegimeReport(regime="dora", kind="intermediate" if first else "update", at=at,
                                              by=st.actor, reference=reference, note=note)]
        if first:
            c.milestones = {**c.milestones, "dora_intermediate_sent": at}
            c.milestones_recorded = {**c.milestones_recorded, "dora_intermediate_sent": st.now}
            self._settle_lateness(st, None, "the DORA intermediate report")
        st.log("dora_report", reason=f"DORA {'intermediate report' if first else 'update'}"
               + (f" ref {reference}" if reference else "") + (f": {note}" if note else ""), before=before)
        return self._save(st)

    def _settle_lateness(self, st: _Step, delay_reasons: str | None, what: str) -> None:
        """Re-evaluate every clock after a step that met one or moved its times (a submission, a
        milestone, a corrected awareness or submission time). A clock met late needs the reasons
        for the delay once (GDPR Art. 33(1): "accompanied by reasons for the delay"; the same is
        recorded for the other regimes' deadlines): refused without them. The submission's and the
        approval's ``late`` follow the re-evaluated clocks."""
        c = st.case
        tz = self.config.tz
        reasons = (delay_reasons or "").strip()
        statuses = self.clocks(c, st.now)
        missing = []
        # The submission's (or its approval's) reasons explain the clock the submission met, not another
        # authority's: a late ICO notification next to a late AP one gives its own reasons.
        submitted_ms = next((n.milestone for n in c.notifications if n.lead), "") if c.submission else ""
        for s in statuses:
            if s.status != "met_late" or s.rule.id in c.late_reasons:
                continue
            mine = reasons
            if not mine and s.rule.authority_notification and submitted_ms and s.rule.done_by == submitted_ms:
                assert c.submission is not None
                mine = (c.submission.delay_reasons or "").strip() or (
                    c.approval.delay_reasons or "" if c.approval else "").strip()
            if mine:
                c.late_reasons = {**c.late_reasons, s.rule.id: mine}
            else:
                missing.append(s)
        if missing:
            late = "; ".join(f"{s.rule.label} ({s.rule.legal_basis}) was due {s.to_json(tz)['due']} and is now met "
                             f"{s.to_json(tz)['done_at']}" for s in missing)
            raise TransitionRefusedError(f"{what} makes a deadline late: {late}. Give the reasons for the delay "
                                         "(GDPR Art. 33(1)) with --delay-reasons", case_id=c.id,
                                         from_state=c.state.value)
        auth = [s for s in statuses if s.rule.authority_notification and s.due is not None]
        if c.submission is not None:
            met = [s for s in auth if s.done_at is not None]
            late_now = any(s.status == "met_late" for s in met)
            if late_now != c.submission.late:
                c.submission = c.submission.model_copy(update={
                    "late": late_now,
                    "delay_reasons": c.submission.delay_reasons or next(
                        (c.late_reasons[s.rule.id] for s in met if s.rule.id in c.late_reasons), None)})
        if c.approval is not None and auth:
            approved_late = any(c.approval.at > s.due for s in auth if s.due is not None)
            if approved_late != c.approval.late:
                c.approval = c.approval.model_copy(update={
                    "late": approved_late,
                    "delay_reasons": c.approval.delay_reasons or next(
                        (c.late_reasons[s.rule.id] for s in auth if s.rule.id in c.late_reasons), None)})

    # --- risk ------------------------------------------------------------------------------------

    def assess(self, case_id: str, actor: str, answers: dict[str, Any] | None = None, *,
               overrule_to: RiskLevel | None = None, overrule_reason: str | None = None,
               withdraw_overrule: str | None = None) -> BreachCase:
        """Record the risk worksheet and its proposed level; the DPO may overrule with a reason.

        A re-assessment keeps the earlier record in ``risk_history``. It may not silently drop an
        earlier overrule: repeat it (``overrule_to`` with a reason) or withdraw it with a reason
        (``withdraw_overrule``). After 'no notification needed', a re-assessment that is no longer
        'unlikely' re-opens the case (state ``assessed``: the authority's clock runs again and the
        notification can be drafted), because Art. 33(1) applies once the risk is not unlikely."""
        st = self._step(case_id, actor)
        c = st.case
        if c.state in (S.confirmed, S.assessed):
            to: BreachState | None = S.assessed
        else:
            require_action(c, "reassess", "assess the risk")
            to = None
        if overrule_to is not None:
            overrule_reason = require_reason(c, overrule_reason, "overruling the proposed risk level")
        prev = c.risk
        if (prev is not None and prev.overruled_to is not None and overrule_to is None
                and (withdraw_overrule is None or not withdraw_overrule.strip())):
            raise TransitionRefusedError(
                f"the level was overruled to {prev.overruled_to.value} by {prev.overruled_by or prev.by} "
                f"({prev.overrule_reason}): a new assessment keeps that decision visible. Repeat the overrule "
                "(--overrule ... --reason ...) or withdraw it with a reason (--withdraw-overrule ...)",
                case_id=c.id, from_state=c.state.value)
        try:
            ws = RiskWorksheet.from_case(c, **(answers or {}))
        except ValidationError as e:
            raise BreachError(f"invalid worksheet: {_short(e)}", case_id=c.id) from None
        before = st.snapshot()
        if prev is not None:
            c.risk_history = [*c.risk_history, prev]
        c.risk = assessment_record(ws, by=st.actor, at=st.now, overrule_to=overrule_to, overrule_reason=overrule_reason)
        if c.risk.overruled_to is not None:
            c.risk = c.risk.model_copy(update={"overruled_by": st.actor, "overruled_at": st.now})
        why = f"proposed {c.risk.proposed.value} (score {c.risk.score})"
        if c.risk.overruled_to:
            why += f", overruled to {c.risk.overruled_to.value}: {c.risk.overrule_reason}"
        if prev is not None and prev.overruled_to is not None and overrule_to is None:
            why += f"; overrule to {prev.overruled_to.value} withdrawn: {withdraw_overrule}"
        st.log("assess" if to else "reassess", reason=why, to=to, before=before)
        if c.state is S.no_notification_needed and c.risk.level is not RiskLevel.unlikely:
            self._reopen(st, f"re-assessed as {c.risk.level.value}: {c.risk.level.consequence}")
        return self._save(st)

    def reconsider(self, case_id: str, actor: str, reason: str) -> BreachCase:
        """Re-open the assessment on new facts: from 'no notification needed' or a draft back to
        ``assessed`` (the decision not to notify is withdrawn, the authority's clock runs again)."""
        st = self._step(case_id, actor)
        c = st.case
        require_transition(c, S.assessed)
        reason = require_reason(c, reason, "reconsidering the case")
        self._reopen(st, reason)
        return self._save(st)

    def _reopen(self, st: _Step, reason: str) -> None:
        c = st.case
        before = st.snapshot()
        if c.no_notification_reason:
            reason = f"{reason} (withdraws 'no notification needed': {c.no_notification_reason})"
        c.no_notification_reason = None  # the decision stays in the trail and the register's history
        c.approval = None
        st.log("reconsider", reason=reason, to=S.assessed, before=before)

    def skip_notification(self, case_id: str, actor: str, reason: str) -> BreachCase:
        """Decide no notification is needed: only when the (possibly overruled) level is 'unlikely'."""
        st = self._step(case_id, actor)
        c = st.case
        require_transition(c, S.no_notification_needed)
        reason = require_reason(c, reason, "deciding that no notification is needed")
        assert c.risk is not None  # assessed implies a risk record
        if c.risk.level is not RiskLevel.unlikely:
            raise TransitionRefusedError(
                f"the risk assessment says '{c.risk.level.value}' ({c.risk.level.consequence}): a breach that is "
                "not unlikely to result in a risk must be notified. Overrule the level with a recorded reason "
                "first ('breach assess --overrule unlikely --reason ...') if you disagree",
                case_id=c.id, from_state=c.state.value, to_state=S.no_notification_needed.value)
        before = st.snapshot()
        c.no_notification_reason = reason
        st.log("no_notification", reason=reason, to=S.no_notification_needed, before=before)
        return self._save(st)

    # --- drafts, approval, submission ------------------------------------------------------------

    def draft(self, case_id: str, actor: str, kind: str = "authority", lang: str = "nl", *,
              phased: bool = False) -> tuple[BreachCase, drafts_mod.DraftResult]:
        """Render a draft and keep it on the case. An authority draft moves ``assessed`` to
        ``notification_drafted`` (an approved case back to drafted: the approval is withdrawn).
        A draft with missing elements is recorded as incomplete and does not change the state."""
        st = self._step(case_id, actor)
        c = st.case
        after = c.state in (S.submitted, S.subjects_decided)  # a text for another authority or language
        if kind == "authority":
            if c.state not in (S.assessed, S.notification_drafted, S.approved) and not after:
                require_transition(c, S.notification_drafted)
        else:
            require_action(c, "draft_other", f"draft the {kind.replace('_', ' ')} text")
        res = drafts_mod.render(c, kind, lang, tz=self.config.tz, now=st.now, phased=phased)
        if res.markdown is None:
            return c, res  # nothing to keep: the caller shows what is missing
        version = 1 + sum(1 for d in c.drafts if d.kind == kind)
        c.drafts.append(DraftRecord(kind=kind, lang=lang, version=version, at=st.now, by=st.actor,
                                    complete=res.complete, missing=res.phased, markdown=res.markdown))
        to = None
        if kind == "authority" and c.state is not S.notification_drafted and not after:
            require_transition(c, S.notification_drafted)
            to = S.notification_drafted
            if c.state is S.approved:
                c.approval = None
        what = f"{kind} draft v{version} ({lang})" + (f", phased: {', '.join(res.phased)} to follow" if res.phased
                                                      else "")
        st.log("draft", reason=what, to=to)
        return self._save(st), res

    def approve(self, case_id: str, actor: str, *, delay_reasons: str | None = None,
                phased_reason: str | None = None) -> BreachCase:
        """Approve the latest authority draft. Refused after the deadline without the reasons for
        the delay (Art. 33(1)), and for a phased draft without saying why elements follow later."""
        st = self._step(case_id, actor)
        c = st.case
        require_transition(c, S.approved)
        d = c.latest_draft("authority")
        if d is None:
            raise TransitionRefusedError("there is no authority draft to approve: run 'breach draft' first",
                                         case_id=c.id)
        tz = self.config.tz
        late = drafts_mod.is_late(c, st.now, tz, self.config.processor_notice_hours)
        if late:
            reasons = (delay_reasons or "").strip() or (c.details.delay_reasons or "").strip()
            if not reasons:
                due = [s for s in self.clocks(c, st.now) if s.rule.authority_notification and s.due]
                when = ", ".join(f"{s.rule.label} was due {s.to_json(tz)['due']}" for s in due)
                raise TransitionRefusedError(
                    f"the notification is late ({when}): it cannot be approved without the reasons for the delay "
                    "(GDPR Art. 33(1)). Give them with --delay-reasons", case_id=c.id,
                    from_state=c.state.value, to_state=S.approved.value)
            if drafts_mod.md_escape(reasons) not in d.markdown:
                c.details = c.details.model_copy(update={"delay_reasons": reasons})
                res = drafts_mod.render(c, "authority", d.lang, tz=tz, now=st.now, phased=bool(d.missing))
                assert res.markdown is not None
                d = DraftRecord(kind="authority", lang=d.lang, version=d.version + 1, at=st.now, by=st.actor,
                                complete=res.complete, missing=res.phased, markdown=res.markdown)
                c.drafts.append(d)
                st.log("draft", reason=f"authority draft v{d.version} ({d.lang}) with the reasons for the delay")
        if d.missing:
            phased_reason = require_reason(c, phased_reason, f"approving a phased notification ({', '.join(d.missing)}"
                                           " to follow, Art. 33(4))")
        before = st.snapshot()
        c.approval = Approval(by=st.actor, at=st.now, draft_version=d.version, late=late,
                              delay_reasons=c.details.delay_reasons if late else None, phased_reason=phased_reason)
        # Art. 33(4): each element that follows is tracked until a supplement supplies it
        kept = {o.key: o for o in c.outstanding if not o.is_open}
        fresh = [kept.get(k) or OutstandingElement(key=k, label=drafts_mod.element_label(k, d.lang), since=st.now)
                 for k in d.missing]
        c.outstanding = fresh + [o for k, o in kept.items() if k not in d.missing]
        st.log("approve", reason=f"draft v{d.version}" + (" (late)" if late else ""), to=S.approved, before=before)
        return self._save(st)

    def submit(self, case_id: str, actor: str, *, channel: str, reference: str, at: datetime | None = None,
               milestone: str = "authority_notified", delay_reasons: str | None = None,
               authority: str | None = None) -> BreachCase:
        """Record the submission of the approved notification: when, how, and the authority's reference.
        It is the case's first (lead) notification; others follow with :meth:`notify_authority`."""
        st = self._step(case_id, actor)
        c = st.case
        require_transition(c, S.submitted)
        if not channel.strip() or not reference.strip():
            raise TransitionRefusedError("a submission needs the channel and the authority's reference", case_id=c.id)
        at = at or st.now
        if at > st.now:
            raise TransitionRefusedError(f"the submission time {at.isoformat()} is in the future", case_id=c.id)
        assert c.approval is not None
        if at < c.approval.at:
            # GDPR Art. 33(1), (5): the text submitted is the text approved; a time before the approval
            # would record a notification nobody approved (and could hide a late approval)
            raise TransitionRefusedError(
                f"the submission time {at.isoformat()} is before the approval of the notification "
                f"({c.approval.at.isoformat()} by {c.approval.by}): the text submitted must be the approved text. "
                "Give the real submission time, or redraft and approve what was sent", case_id=c.id,
                from_state=c.state.value, to_state=S.submitted.value)
        allowed_ms = {r.done_by for r in rules_for(c.regimes, self.config.processor_notice_hours)
                      if r.authority_notification}
        if milestone not in allowed_ms:
            names = ", ".join(sorted(allowed_ms)) or "none in the case's regimes"
            raise TransitionRefusedError(
                f"a submission meets the authority's clock ({names}), not {milestone!r}: record other milestones "
                "with 'breach milestone'", case_id=c.id, from_state=c.state.value, to_state=S.submitted.value)
        probe = c.model_copy(deep=True)
        probe.milestones[milestone] = at
        late = drafts_mod.is_late(probe, at, self.config.tz, self.config.processor_notice_hours)
        reasons = (delay_reasons or "").strip() or (c.approval.delay_reasons or "")
        if late and not reasons:
            raise TransitionRefusedError(
                "the submission is after the deadline but the approved notification gives no reasons for the delay "
                "(GDPR Art. 33(1)): redraft and approve it with --delay-reasons", case_id=c.id,
                from_state=c.state.value, to_state=S.submitted.value)
        before = st.snapshot()
        c.submission = Submission(at=at, by=st.actor, channel=channel.strip(), reference=reference.strip(), late=late,
                                  delay_reasons=reasons or None)
        approved = next((d for d in c.drafts if d.kind == "authority" and d.version == c.approval.draft_version),
                        c.latest_draft("authority"))
        c.notifications = [Notification(number=1, authority=(authority or c.details.authority).strip(), lead=True,
                                        at=at, by=st.actor, channel=channel.strip(), reference=reference.strip(),
                                        lang=approved.lang if approved else "nl",
                                        draft_version=c.approval.draft_version, milestone=milestone, late=late)]
        c.milestones = {**c.milestones, milestone: at}
        c.milestones_recorded = {**c.milestones_recorded, milestone: st.now}
        self._settle_lateness(st, reasons or None, "the submission")
        st.log("submit", reason=f"{channel} ref {reference}" + (" (late)" if late else ""), to=S.submitted,
               before=before)
        return self._save(st)

    def notify_authority(self, case_id: str, actor: str, *, authority: str, channel: str, reference: str,
                         lang: str, at: datetime | None = None, milestone: str | None = None,
                         delay_reasons: str | None = None) -> BreachCase:
        """Record a notification to a further supervisory authority (EDPB Guidelines 9/2022 §73: where
        the one-stop shop does not apply, or the UK's ICO next to the AP), with the text drafted in
        ``lang``. ``milestone`` (e.g. ``ico_notified``) is the authority clock it meets, if any."""
        st = self._step(case_id, actor)
        c = st.case
        require_action(c, "supplement", "notify another authority")
        if not authority.strip() or not channel.strip() or not reference.strip():
            raise TransitionRefusedError("a notification needs the authority, the channel and its reference",
                                         case_id=c.id)
        if any(n.authority.lower() == authority.strip().lower() and n.withdrawn_at is None for n in c.notifications):
            raise TransitionRefusedError(f"{authority} was notified already: amend that notification instead",
                                         case_id=c.id)
        d = c.latest_draft("authority", lang)
        if d is None:
            raise TransitionRefusedError(f"there is no authority draft in {lang!r}: draft it first "
                                         f"('breach draft --lang {lang}')", case_id=c.id)
        at = at or st.now
        if at > st.now:
            raise TransitionRefusedError(f"the notification time {at.isoformat()} is in the future", case_id=c.id)
        before = st.snapshot()
        if milestone is not None:
            allowed_ms = {r.done_by for r in rules_for(c.regimes, self.config.processor_notice_hours)
                          if r.authority_notification}
            if milestone not in allowed_ms:
                raise TransitionRefusedError(f"{milestone!r} is not an authority clock of this case "
                                             f"({', '.join(sorted(allowed_ms))})", case_id=c.id)
            c.milestones = {**c.milestones, milestone: at}
            c.milestones_recorded = {**c.milestones_recorded, milestone: st.now}
            self._settle_lateness(st, delay_reasons, f"the notification to {authority}")
        late = any(s.status == "met_late" for s in self.clocks(c, st.now) if s.rule.done_by == milestone)
        c.notifications = [*c.notifications, Notification(
            number=len(c.notifications) + 1, authority=authority.strip(), at=at, by=st.actor, channel=channel.strip(),
            reference=reference.strip(), lang=lang, draft_version=d.version, milestone=milestone or "", late=late)]
        st.log("notify", reason=f"{authority} via {channel} ref {reference} ({lang}, draft v{d.version})",
               before=before)
        return self._save(st)

    def _notification(self, c: BreachCase, number: int) -> Notification:
        n = next((x for x in c.notifications if x.number == number), None)
        if n is None:
            raise BreachError(f"no notification {number} (notifications: "
                              f"{', '.join(str(x.number) for x in c.notifications) or 'none'})", case_id=c.id)
        if n.withdrawn_at is not None:
            raise TransitionRefusedError(f"notification {number} to {n.authority} was withdrawn", case_id=c.id)
        return n

    def amend_notification(self, case_id: str, actor: str, number: int, text: str,
                           reference: str | None = None) -> BreachCase:
        """Record an amendment ("aanpassen") of notification ``number``: what was corrected."""
        st = self._step(case_id, actor)
        c = st.case
        require_action(c, "supplement", "amend a notification")
        text = require_reason(c, text, "amending a notification")
        n = self._notification(c, number)
        before = st.snapshot()
        amended = n.model_copy(update={"amendments": [*n.amendments, Amendment(at=st.now, by=st.actor, text=text,
                                                                                  reference=reference)]})
        c.notifications = [amended if x.number == number else x for x in c.notifications]
        st.log("amend_notification", reason=f"notification {number} ({n.authority}): {text}", before=before)
        return self._save(st)

    def withdraw_notification(self, case_id: str, actor: str, number: int, reason: str) -> BreachCase:
        """Record the withdrawal ("intrekken") of notification ``number``, with the reason (e.g. the
        incident turned out not to involve personal data). The notification stays in the register."""
        st = self._step(case_id, actor)
        c = st.case
        require_action(c, "supplement", "withdraw a notification")
        reason = require_reason(c, reason, "withdrawing a notification")
        n = self._notification(c, number)
        before = st.snapshot()
        gone = n.model_copy(update={"withdrawn_at": st.now, "withdrawn_by": st.actor, "withdrawal_reason": reason})
        c.notifications = [gone if x.number == number else x for x in c.notifications]
        st.log("withdraw_notification", reason=f"notification {number} ({n.authority}): {reason}", before=before)
        return self._save(st)

    def supplement(self, case_id: str, actor: str, text: str, changes: dict[str, Any] | None = None,
                   reference: str | None = None, *, supplies: list[str] | None = None) -> BreachCase:
        """A supplementary notification (Art. 33(4)), numbered; ``changes`` update the case's details.

        An outstanding element of a phased notification counts as supplied when the supplement
        fills it (its value is present afterwards) or names it in ``supplies`` (given in the text)."""
        st = self._step(case_id, actor)
        c = st.case
        require_action(c, "supplement", "send a supplementary notification")
        text = require_reason(c, text, "a supplementary notification")
        before = st.snapshot()
        if changes:
            details = c.details.model_dump(mode="json")
            for k, v in changes.items():
                if k not in BreachDetails.model_fields:
                    raise BreachError(f"unknown field {k!r} in a supplement", case_id=c.id)
                details[k] = v
                c.provenance.pop(k, None)
            try:
                c.details = BreachDetails.model_validate(details)
            except ValidationError as e:
                raise BreachError(f"invalid value: {_short(e)}", case_id=c.id) from None
        v = len(c.supplements) + 1
        c.supplements = [*c.supplements, Supplement(version=v, at=st.now, by=st.actor, text=text,
                                                    changes=dict(changes or {}), reference=reference)]
        named = set(supplies or [])
        unknown = named - {o.key for o in c.outstanding if o.is_open}
        if unknown:
            raise BreachError(f"supplies {', '.join(sorted(unknown))}: not outstanding (outstanding: "
                              f"{', '.join(o.key for o in c.outstanding if o.is_open) or 'none'})", case_id=c.id)
        d = c.latest_draft("authority")
        still = drafts_mod.missing_keys(c, d.lang if d else "nl", tz=self.config.tz, now=st.now)
        c.outstanding = [o.model_copy(update={"supplied_at": st.now, "supplement_version": v})
                         if o.is_open and (o.key in named or o.key not in still) else o for o in c.outstanding]
        supplied = [o.key for o in c.outstanding if o.supplement_version == v]
        st.log("supplement", reason=f"supplement {v}: {text}" + (f" (supplies {', '.join(supplied)})" if supplied
                                                                 else ""), before=before)
        return self._save(st)

    def decide_subjects(self, case_id: str, actor: str, decision: SubjectsDecisionKind, reasoning: str, *,
                        communicated_at: datetime | None = None, channel: str | None = None) -> BreachCase:
        """Art. 34: tell the data subjects, or record why not (no high risk, or an Art. 34(3) exception)."""
        st = self._step(case_id, actor)
        c = st.case
        require_transition(c, S.subjects_decided)
        reasoning = require_reason(c, reasoning, "the decision on telling the data subjects")
        level = c.risk.level if c.risk else None
        if decision is SubjectsDecisionKind.exception_34_3_a and c.details.protection not in (
                Protection.encrypted, Protection.hashed):
            # Art. 34(3)(a): only "measures that render the personal data unintelligible to any person who
            # is not authorised to access it, such as encryption"
            raise TransitionRefusedError(
                f"exception 34(3)(a) needs data made unintelligible (encrypted or hashed); the case says "
                f"protection={c.details.protection.value}. Correct the protection ('breach edit --set protection=...') "
                "or choose another decision", case_id=c.id, from_state=c.state.value, to_state=S.subjects_decided.value)
        if decision is SubjectsDecisionKind.not_required and level is RiskLevel.high:
            raise TransitionRefusedError(
                "the risk is assessed as high: the data subjects must be told (Art. 34(1)), unless one of the "
                "exceptions of Art. 34(3) applies (exception_34_3_a, _b or _c, with reasoning), or the assessment "
                "is overruled with a reason", case_id=c.id, from_state=c.state.value,
                to_state=S.subjects_decided.value)
        before = st.snapshot()
        c.subjects = SubjectsDecision(decision=decision, reasoning=reasoning, by=st.actor, at=st.now,
                                      communicated_at=communicated_at, channel=channel)
        if communicated_at:
            c.milestones = {**c.milestones, "subjects_communicated": communicated_at}
        st.log("subjects", reason=f"{decision.value}: {reasoning}", to=S.subjects_decided, before=before)
        return self._save(st)

    def subjects_told(self, case_id: str, actor: str, at: datetime, channel: str) -> BreachCase:
        """Record when and how the data subjects were told, after a 'communicate' decision (Art. 34(1))."""
        st = self._step(case_id, actor)
        c = st.case
        if c.subjects is None or c.subjects.decision is not SubjectsDecisionKind.communicate or c.state is S.closed:
            raise TransitionRefusedError("record this after deciding to communicate ('breach subjects --decision "
                                         "communicate')", case_id=c.id, from_state=c.state.value)
        channel = require_reason(c, channel, "how the data subjects were told (channel)")
        if at > st.now:
            raise TransitionRefusedError(f"{at.isoformat()} is in the future", case_id=c.id)
        before = st.snapshot()
        c.subjects = c.subjects.model_copy(update={"communicated_at": at, "channel": channel})
        c.milestones = {**c.milestones, "subjects_communicated": at}
        c.milestones_recorded = {**c.milestones_recorded, "subjects_communicated": st.now}
        st.log("subjects_told", reason=f"told on {at.isoformat()} by {channel}", before=before)
        return self._save(st)

    def close(self, case_id: str, actor: str, reason: str, *, outstanding_reason: str | None = None) -> BreachCase:
        """Close the case. Refused while a configured clock is still open (record its milestone
        first), and while an element of a phased notification is outstanding (Art. 33(4)) unless
        ``outstanding_reason`` records why it will not be supplied."""
        st = self._step(case_id, actor)
        c = st.case
        require_transition(c, S.closed)
        reason = require_reason(c, reason, "closing the case")
        if c.subjects is not None and c.subjects.decision is SubjectsDecisionKind.communicate and (
                c.subjects.communicated_at is None):
            raise TransitionRefusedError("the data subjects are to be told (Art. 34(1)) but when and how is not "
                                         "recorded: 'breach subjects-told --at ... --channel ...' first", case_id=c.id,
                                         from_state=c.state.value, to_state=S.closed.value)
        open_items = [o for o in c.outstanding if o.is_open]
        if open_items:
            if outstanding_reason is None or not outstanding_reason.strip():
                raise TransitionRefusedError(
                    "cannot close while elements of the phased notification are outstanding (GDPR Art. 33(4): "
                    f"provided without undue further delay): {', '.join(o.key for o in open_items)}. Send a "
                    "supplement ('breach supplement --set ...' or '--supplies ...'), or record why they will not "
                    "follow (--outstanding-reason)", case_id=c.id, from_state=c.state.value, to_state=S.closed.value)
            c.outstanding = [o.model_copy(update={"waived_reason": outstanding_reason.strip(), "waived_by": st.actor})
                             if o.is_open else o for o in c.outstanding]
        probe = c.model_copy(deep=True)
        probe.state = S.closed
        probe.trail.append(AuditEntry(seq=0, at=st.now, actor=st.actor, action="close", from_state=c.state,
                                      to_state=S.closed))
        still = [s for s in self.clocks(probe, st.now) if s.is_open]
        if still:
            names = "; ".join(f"{s.rule.label} ({s.status}, record '{s.rule.done_by}')" for s in still)
            raise TransitionRefusedError(f"cannot close while clocks are open: {names}. Record the milestone "
                                         "with 'breach milestone' first", case_id=c.id, from_state=c.state.value,
                                         to_state=S.closed.value)
        before = st.snapshot()
        c.closed_at = st.now
        c.close_reason = reason
        st.log("close", reason=reason, to=S.closed, before=before)
        return self._save(st)


def _short(e: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(x) for x in err['loc'])}: {err['msg']}" for err in e.errors())
