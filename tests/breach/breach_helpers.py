"""Shared helpers of the breach tests (import as ``from breach_helpers import ...``)."""

from __future__ import annotations

from datetime import datetime

from access_audit.breach.model import BreachCase
from access_audit.breach.workflow import BreachConfig, BreachWorkflow

CONFIG = BreachConfig(organisation="Zorgwijk Verzekeringen B.V.", dpo_name="Fenna de Vries",
                      dpo_email="fg@zorgwijk.example", dpo_phone="+31 20 123 4567")

#: every element of a notification, filled in
FULL = {
    "breach_types": ["confidentiality"],
    "cause": "A support employee exported customer records with a script",
    "data_effects": ["read", "copied"],
    "systems": ["CRM"],
    "data_categories": ["contact", "national_id"],
    "subject_categories": ["customers"],
    "subjects_min": 1900, "subjects_max": 2100,
    "records_min": 2000, "records_max": 2000,
    "protection": "none",
    "likely_consequences": "Identity fraud and phishing using the stolen BSN and addresses",
    "measures_taken": "Account blocked, session revoked, laptop seized",
    "measures_proposed": "Rate limits on the CRM API",
    "advice_to_subjects": "Be wary of e-mails and calls that ask for your details",
    "cross_border": False,
    "malicious": True,
    "ongoing": False,
    "processor_involved": False,
    "nis2_cross_border_impact": False,
    "controller": "Zorgwijk Zorgverzekeringen N.V.",
    "occurred_from": "2026-03-26T01:10:00+01:00",
    "occurred_to": "2026-03-26T02:05:00+01:00",
    "detected_at": "2026-03-26T02:30:00+01:00",
}


def confirmed_case(wf: BreachWorkflow, *, full: bool = True, title: str = "Mass export of customer records",
                   at: datetime | None = None) -> BreachCase:
    c = wf.open_case("alice", title=title, summary="A support employee read 2,000 customer records at night.")
    c = wf.set_awareness(c.id, "Fenna de Vries", at or wf.clock.now(), "Logs confirm the records were read")
    if full:
        c = wf.edit(c.id, "fenna", FULL, reason="facts from the investigation")
    return c


def submitted_case(wf: BreachWorkflow) -> BreachCase:
    c = confirmed_case(wf)
    c = wf.assess(c.id, "fenna", {"identifiability": "maximum", "consequences": "serious"})
    c, _ = wf.draft(c.id, "fenna", "authority", "nl")
    c = wf.approve(c.id, "fenna")
    return wf.submit(c.id, "fenna", channel="AP meldloket", reference="M-2026-001")
