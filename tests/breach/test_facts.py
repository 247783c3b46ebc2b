"""The facts the authority and the register need (issue 13): one test per bullet where feasible."""

from __future__ import annotations

from datetime import timedelta

import pytest
from breach_helpers import CONFIG, submitted_case

from access_audit.breach.model import TransitionRefusedError
from access_audit.breach.register import register_rows
from access_audit.breach.workflow import BreachWorkflow


def test_several_notifications_per_case_with_amendment_and_withdrawal(wf: BreachWorkflow, clock):
    c = submitted_case(wf)
    c = wf.edit(c.id, "fenna", {"regimes": ["gdpr", "uk_gdpr"]})
    assert c.notifications[0].authority == "Autoriteit Persoonsgegevens" and c.notifications[0].lead
    assert (c.notifications[0].lang, c.notifications[0].reference) == ("nl", "M-2026-001")
    with pytest.raises(TransitionRefusedError, match="no authority draft in 'en'"):
        wf.notify_authority(c.id, "fenna", authority="ICO", channel="ICO portal", reference="IC-1", lang="en")
    c, _ = wf.draft(c.id, "fenna", "authority", "en")
    clock.advance(hours=2)
    c = wf.notify_authority(c.id, "fenna", authority="ICO", channel="ICO portal", reference="IC-1", lang="en",
                            milestone="ico_notified")
    assert {s.id: s.status for s in wf.clocks(c)} == {"gdpr.authority": "met", "uk_gdpr.authority": "met"}
    with pytest.raises(TransitionRefusedError, match="notified already"):
        wf.notify_authority(c.id, "fenna", authority="ico", channel="x", reference="y", lang="en")
    c = wf.amend_notification(c.id, "fenna", 1, "Number of customers is 2,043", reference="M-2026-001-A")
    c = wf.withdraw_notification(c.id, "fenna", 2, "The UK customers turned out to be test accounts")
    with pytest.raises(TransitionRefusedError, match="was withdrawn"):
        wf.amend_notification(c.id, "fenna", 2, "x")
    n1, n2 = c.notifications
    assert n1.amendments[0].text == "Number of customers is 2,043" and n1.withdrawn_at is None
    assert (n2.authority, n2.lang, n2.reference, n2.at) == ("ICO", "en", "IC-1", clock.now())
    assert n2.withdrawal_reason.startswith("The UK customers") and n2.withdrawn_by == "fenna"
    row = register_rows([c], CONFIG.tz)[0]
    assert row["notifications"][0].startswith("1. Autoriteit Persoonsgegevens (lead) 2026-03-27T10:00:00+01:00 via "
                                              "AP meldloket ref M-2026-001 (nl, draft v1)")
    assert "amended" in row["notifications"][0] and "withdrawn" in row["notifications"][1]
    assert clock.now() - n1.at == timedelta(hours=2)
