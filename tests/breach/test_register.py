"""The breach register (Art. 33(5)): every case, notified or not, as CSV and JSON."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from breach_helpers import confirmed_case, submitted_case

from access_audit.breach.register import COLUMNS, register_csv, register_rows
from access_audit.breach.workflow import BreachWorkflow


def test_register_has_every_case(wf: BreachWorkflow):
    notified = submitted_case(wf)
    dismissed = wf.dismiss(wf.open_case("bob", title="Printer misprint").id, "fenna", "no personal data on it")
    pending = confirmed_case(wf, full=False, title="Lost USB stick")
    rows = register_rows(wf.repo.list(), wf.config.tz)
    assert [r["id"] for r in rows] == [notified.id, dismissed.id, pending.id]
    n = rows[0]
    assert n["notified_authority"] is True and n["authority_reference"] == "M-2026-001"
    assert n["awareness_at"] == "2026-03-27T10:00:00+01:00" and n["risk_level"] == "high"
    assert n["likely_consequences"] and n["measures_taken"] and n["subjects_max"] == 2100
    assert rows[1]["state"] == "not_a_breach" and rows[1]["not_a_breach_reason"] == "no personal data on it"
    assert rows[2]["notified_authority"] is False
    text = register_csv(wf.repo.list(), wf.config.tz)
    parsed = list(csv.DictReader(io.StringIO(text)))
    assert list(parsed[0]) == list(COLUMNS) and len(parsed) == 3
    assert parsed[0]["data_categories"] == "contact; national_id" and parsed[0]["notified_authority"] == "yes"
    assert parsed[1]["awareness_at"] == "" and "None" not in text


def test_every_register_field_in_json_and_csv(wf: BreachWorkflow, clock):
    """Art. 33(5): the facts, effects and remedial action, checked field by field, in both exports."""
    from breach_helpers import CONFIG
    from test_facts import _full

    c = _full(wf, clock)
    c = wf.supplement(c.id, "fenna", "Forensics: 2,043 customers", {"subjects_max": 2043})
    c = wf.set_awareness(c.id, "fenna", c.awareness.at - timedelta(hours=1), "The first call was certain")
    clock.advance(hours=30)
    c = wf.close(c.id, "fenna", "Letters sent")
    row = register_rows([c], CONFIG.tz)[0]
    reasoning = row.pop("risk_reasoning")
    assert reasoning[0].startswith("Nature and sensitivity of the data: contact, national_id") and len(reasoning) == 8
    t0, t1 = "2026-03-27T10:00:00+01:00", "2026-03-27T09:00:00+01:00"
    expected = {
        "id": "BR-2026-0001", "state": "closed", "title": "Mass export of customer records", "opened_at": t0,
        "opened_by": "alice", "source": "manual", "occurred_from": "2026-03-26T01:10:00+01:00",
        "occurred_to": "2026-03-26T02:05:00+01:00", "detected_at": "2026-03-26T02:30:00+01:00",
        "awareness_at": t1, "awareness_by": "fenna", "awareness_reason": "The first call was certain",
        "summary": "A support employee read 2,000 customer records at night.",
        "cause": "A support employee exported customer records with a script", "breach_types": ["confidentiality"],
        "data_effects": ["read", "copied"], "systems": ["CRM"], "data_categories": ["contact", "national_id"],
        "subject_categories": ["customers"], "subjects_min": 1900, "subjects_max": 2043, "records_min": 2000,
        "records_max": 2000, "protection": "none",
        "likely_consequences": "Identity fraud and phishing using the stolen BSN and addresses",
        "measures_taken": "Account blocked, session revoked, laptop seized",
        "measures_proposed": "Rate limits on the CRM API", "risk_proposed": "high", "risk_level": "high",
        "risk_score": 4.5, "risk_defaults": ["unknown_recipients (assumed True)", "trusted_recipient (assumed False)"],
        "risk_overruled_by": None, "risk_overruled_at": None, "risk_overrule_reason": None, "risk_history": [],
        "approved_by": "fenna", "approved_at": t0, "phased_reason": None, "outstanding": [],
        "notifications": ["1. Autoriteit Persoonsgegevens (lead) 2026-03-27T10:00:00+01:00 via AP meldloket ref "
                          "M-2026-001 (nl, draft v1)",
                          "2. ICO 2026-03-27T10:00:00+01:00 via portal ref IC-9 (en, draft v2)"],
        "notified_authority": True, "submitted_at": t0, "submission_channel": "AP meldloket",
        "authority_reference": "M-2026-001", "late": False, "delay_reasons": None,
        "supplements": [{"version": 1, "at": t0, "text": "Forensics: 2,043 customers"}],
        "subjects_decision": "communicate", "subjects_reasoning": "high risk", "subjects_communicated_at": t0,
        "subjects_channel": "brief per post", "subjects_letter": "data_subjects draft v1 (nl)",
        "regimes": ["gdpr", "uk_gdpr"],
        "milestones": [f"authority_notified {t0}", f"ico_notified {t0}", f"subjects_communicated {t0}"],
        "reports": [], "late_reasons": [], "countries": ["BE"], "lead_authority": "Autoriteit Persoonsgegevens",
        "awareness_original_at": t0, "not_a_breach_reason": None, "no_notification_reason": None,
        "closed_at": "2026-03-28T16:00:00+01:00", "close_reason": "Letters sent",
        "retained_until": "2031-03-27T16:00:00+01:00", "alerts": [],
    }
    assert set(row) | {"risk_reasoning"} == set(COLUMNS)
    for k, v in expected.items():
        assert row[k] == v, k
    # the CSV holds the same values, flattened
    parsed = next(csv.DictReader(io.StringIO(register_csv([c], CONFIG.tz))))
    assert list(parsed) == list(COLUMNS)
    for k, v in {**expected, "risk_reasoning": reasoning}.items():
        if k == "supplements":
            flat = " | ".join(f"v{s['version']} {s['at']}: {s['text']}" for s in v)
        elif isinstance(v, bool):
            flat = "yes" if v else "no"
        elif isinstance(v, list):
            flat = "; ".join(map(str, v))
        else:
            flat = "" if v is None else str(v)
        assert parsed[k] == flat, k


def test_register_csv_cells_never_run_as_formulas(wf: BreachWorkflow):
    """CSV injection: a case title an attacker can influence must stay text in a spreadsheet."""
    for title in ("=HYPERLINK(\"http://x\",\"click\")", " +1+1", "\n@SUM(A1)", "\uff1dcmd|' /C calc'!A0",
                  "\r=1+1"):
        wf.open_case("bob", title=title)
    text = register_csv(wf.repo.list(), wf.config.tz)
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    titles = [r["title"] for r in rows]
    assert len(titles) == 5 and all(t.startswith("'") for t in titles), titles
    # a bare CR inside a cell is quoted (CRLF rows): a spreadsheet must not start a row at "=1+1"
    assert "'\r=1+1" in titles and '"\'\r=1+1"' in text
