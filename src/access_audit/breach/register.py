"""The breach register (GDPR Art. 33(5)): every case, notified or not, with the facts, the effects
and the remedial action taken, so the authority can verify compliance. Exported as CSV and JSON.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from access_audit.breach.clocks import local_iso
from access_audit.breach.model import BreachCase
from access_audit.core.csvcells import LINE_END, csv_cell

COLUMNS = (
    "id", "state", "title", "opened_at", "opened_by", "source", "occurred_from", "occurred_to", "detected_at",
    "awareness_at", "awareness_by", "awareness_reason", "summary", "cause", "breach_types", "data_effects",
    "systems", "data_categories", "subject_categories", "subjects_min", "subjects_max", "records_min",
    "records_max", "protection", "likely_consequences", "measures_taken", "measures_proposed", "risk_proposed",
    "risk_level", "risk_score", "risk_reasoning", "risk_defaults", "risk_overruled_by", "risk_overruled_at",
    "risk_overrule_reason", "risk_history", "approved_by", "approved_at", "phased_reason", "outstanding",
    "notifications", "notified_authority", "submitted_at", "submission_channel",
    "authority_reference", "late", "delay_reasons", "supplements", "subjects_decision", "subjects_reasoning",
    "subjects_communicated_at", "subjects_channel", "subjects_letter", "regimes", "milestones", "reports",
    "late_reasons", "countries",
    "lead_authority", "awareness_original_at", "not_a_breach_reason", "no_notification_reason", "closed_at",
    "close_reason", "retained_until", "alerts",
)


def _t(t: datetime | None, tz: ZoneInfo) -> str | None:
    return local_iso(t, tz) if t else None


def _notification(n: Any, tz: ZoneInfo) -> str:
    text = (f"{n.number}. {n.authority}{' (lead)' if n.lead else ''} {_t(n.at, tz)} via {n.channel} ref {n.reference}"
            f" ({n.lang}, draft v{n.draft_version}){' late' if n.late else ''}")
    for a in n.amendments:
        text += f"; amended {_t(a.at, tz)} by {a.by}: {a.text}"
    if n.withdrawn_at:
        text += f"; withdrawn {_t(n.withdrawn_at, tz)} by {n.withdrawn_by}: {n.withdrawal_reason}"
    return text


def register_row(c: BreachCase, tz: ZoneInfo, case_retention_days: int = 1825) -> dict[str, Any]:
    d = c.details
    return {
        "id": c.id, "state": c.state.value, "title": d.title, "opened_at": _t(c.opened_at, tz),
        "opened_by": c.opened_by, "source": c.source, "occurred_from": _t(c.occurred_from, tz),
        "occurred_to": _t(c.occurred_to, tz), "detected_at": _t(c.detected_at, tz),
        "awareness_at": _t(c.awareness.at, tz) if c.awareness else None,
        "awareness_by": c.awareness.by if c.awareness else None,
        "awareness_reason": c.awareness.reason if c.awareness else None,
        "summary": d.summary, "cause": d.cause, "breach_types": [x.value for x in d.breach_types],
        "data_effects": [x.value for x in d.data_effects], "systems": list(d.systems),
        "data_categories": [x.value for x in d.data_categories], "subject_categories": list(d.subject_categories),
        "subjects_min": d.subjects_min, "subjects_max": d.subjects_max, "records_min": d.records_min,
        "records_max": d.records_max, "protection": d.protection.value, "likely_consequences": d.likely_consequences,
        "measures_taken": d.measures_taken, "measures_proposed": d.measures_proposed,
        "risk_proposed": c.risk.proposed.value if c.risk else None,
        "risk_level": c.risk.level.value if c.risk else None,
        "risk_score": c.risk.score if c.risk else None,
        "risk_reasoning": list(c.risk.reasoning) if c.risk else [],
        "risk_defaults": list(c.risk.defaults) if c.risk else [],
        "risk_overruled_by": c.risk.overruled_by if c.risk and c.risk.overruled_to else None,
        "risk_overruled_at": _t(c.risk.overruled_at, tz) if c.risk and c.risk.overruled_to else None,
        "risk_overrule_reason": c.risk.overrule_reason if c.risk else None,
        "risk_history": [f"{_t(r.at, tz)} {r.by}: {r.level.value}"
                         + (f" (overruled by {r.overruled_by}: {r.overrule_reason})" if r.overruled_to else "")
                         for r in c.risk_history],
        "approved_by": c.approval.by if c.approval else None,
        "approved_at": _t(c.approval.at, tz) if c.approval else None,
        "phased_reason": c.approval.phased_reason if c.approval else None,
        "outstanding": [f"{o.key}: " + (f"supplied {_t(o.supplied_at, tz)} (supplement {o.supplement_version})"
                                        if o.supplied_at else f"not supplied, {o.waived_by}: {o.waived_reason}"
                                        if o.waived_reason else "outstanding") for o in c.outstanding],
        "notifications": [_notification(n, tz) for n in c.notifications],
        "notified_authority": c.submission is not None,
        "submitted_at": _t(c.submission.at, tz) if c.submission else None,
        "submission_channel": c.submission.channel if c.submission else None,
        "authority_reference": c.submission.reference if c.submission else None,
        "late": c.submission.late if c.submission else None,
        "delay_reasons": (c.submission.delay_reasons if c.submission else None) or d.delay_reasons,
        "supplements": [{"version": s.version, "at": _t(s.at, tz), "text": s.text} for s in c.supplements],
        "subjects_decision": c.subjects.decision.value if c.subjects else None,
        "subjects_reasoning": c.subjects.reasoning if c.subjects else None,
        "subjects_communicated_at": _t(c.subjects.communicated_at, tz) if c.subjects else None,
        "subjects_channel": c.subjects.channel if c.subjects else None,
        "subjects_letter": (f"data_subjects draft v{d_.version} ({d_.lang})"
                            if (d_ := c.latest_draft("data_subjects")) else None),
        "regimes": list(c.regimes),
        "milestones": [f"{k} {_t(v, tz)}" + (f" ({n.by}: {n.reason})" if (n := c.milestone_notes.get(k)) and n.reason
                                              else f" ({n.by})" if n else "")
                       for k, v in sorted(c.milestones.items(), key=lambda kv: kv[1])],
        "reports": [f"{r.regime} {r.kind} {_t(r.at, tz)} by {r.by}" + (f" ref {r.reference}" if r.reference else "")
                    + (f": {r.note}" if r.note else "") for r in c.reports],
        "late_reasons": [f"{k}: {v}" for k, v in sorted(c.late_reasons.items())],
        "countries": list(d.countries), "lead_authority": d.lead_authority,
        "awareness_original_at": _t(c.awareness_history[0].at, tz) if c.awareness_history else None,
        "not_a_breach_reason": c.not_a_breach_reason, "no_notification_reason": c.no_notification_reason,
        "closed_at": _t(c.closed_at, tz), "close_reason": c.close_reason,
        # kept this long after closing (CASE_RETENTION_DAYS, access_audit.retention; Art. 5(1)(e), 33(5))
        "retained_until": _t(c.closed_at + timedelta(days=case_retention_days), tz) if c.closed_at else None,
        "alerts": [a.id for a in c.alerts],
    }


def register_rows(cases: list[BreachCase], tz: ZoneInfo, case_retention_days: int = 1825) -> list[dict[str, Any]]:
    """One JSON object per case (lists stay lists)."""
    return [register_row(c, tz, case_retention_days) for c in cases]


def register_csv(cases: list[BreachCase], tz: ZoneInfo, case_retention_days: int = 1825) -> str:
    """CSV with a header; lists joined with '; ', supplements as 'v1 <time>: <text>'."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(COLUMNS), lineterminator=LINE_END)
    w.writeheader()
    for row in register_rows(cases, tz, case_retention_days):
        flat: dict[str, Any] = {}
        for k, v in row.items():
            if k == "supplements":
                v = " | ".join(f"v{s['version']} {s['at']}: {s['text']}" for s in v)
            elif isinstance(v, list):
                v = "; ".join(map(str, v))
            elif isinstance(v, bool):
                v = "yes" if v else "no"
            flat[k] = csv_cell(v)  # formula-escaped: a case title "=HYPERLINK(..." stays text
        w.writerow(flat)
    return buf.getvalue()
