"""The breach register (Art. 33(5)): every case, notified or not, as CSV and JSON."""

from __future__ import annotations

import csv
import io

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
