"""The ways around Art. 33 found in review (issue 13): each test tries the bypass and is refused
with a reason, then shows the path that is allowed."""

from __future__ import annotations

from datetime import timedelta

import pytest
from breach_helpers import CONFIG, confirmed_case, submitted_case

from access_audit.breach.model import BreachState, RiskLevel, SubjectsDecisionKind, TransitionRefusedError
from access_audit.breach.register import register_rows
from access_audit.breach.reminders import ReminderDispatcher
from access_audit.breach.workflow import BreachWorkflow

S = BreachState


# --- 1. a milestone records facts, it never satisfies an obligation with its own path -----------------

@pytest.mark.parametrize("name", ["authority_notified", "ico_notified", "subjects_communicated"])
def test_milestone_cannot_meet_an_obligation_that_has_its_own_path(wf: BreachWorkflow, clock, name):
    c = confirmed_case(wf)
    c = wf.edit(c.id, "fenna", {"regimes": ["gdpr", "uk_gdpr"]})
    with pytest.raises(TransitionRefusedError, match=rf"{name} cannot be recorded as a milestone.*own path"):
        wf.record_milestone(c.id, "fenna", name)
    c = wf.get(c.id)
    assert name not in c.milestones and c.state is S.confirmed
    assert {s.id: s.status for s in wf.clocks(c)} == {"gdpr.authority": "open", "uk_gdpr.authority": "open"}
    assert len(ReminderDispatcher(wf.repo, clock, {"x": lambda t: None}, tz=CONFIG.tz).plan(c)) > 0


def test_a_late_milestone_needs_the_reasons_for_the_delay(wf: BreachWorkflow, clock):
    c = confirmed_case(wf)
    c = wf.edit(c.id, "fenna", {"regimes": ["gdpr", "nis2"]})
    clock.advance(hours=100)
    with pytest.raises(TransitionRefusedError, match=r"NIS2: early warning.*was due.*reasons for the delay"):
        wf.record_milestone(c.id, "fenna", "nis2_early_warning_sent")
    assert "nis2_early_warning_sent" not in wf.get(c.id).milestones
    c = wf.record_milestone(c.id, "fenna", "nis2_early_warning_sent", delay_reasons="CSIRT portal was down")
    st = {s.id: s.status for s in wf.clocks(c)}
    assert st["nis2.early_warning"] == "met_late" and c.late_reasons == {"nis2.early_warning": "CSIRT portal was down"}


def test_a_submission_meets_only_an_authority_clock(wf: BreachWorkflow):
    c = confirmed_case(wf)
    c = wf.edit(c.id, "fenna", {"regimes": ["gdpr", "nis2"]})
    c = wf.assess(c.id, "fenna", {"identifiability": "maximum", "consequences": "serious"})
    c, _ = wf.draft(c.id, "fenna")
    c = wf.approve(c.id, "fenna")
    with pytest.raises(TransitionRefusedError, match="meets the authority's clock"):
        wf.submit(c.id, "fenna", channel="AP", reference="R", milestone="nis2_final_report_sent")


# --- 2. "no notification needed" can be reconsidered, and an overrule stays visible --------------------

def test_reassessment_at_high_risk_reopens_a_case_marked_no_notification(wf: BreachWorkflow, clock):
    c = confirmed_case(wf)
    c = wf.assess(c.id, "fenna", overrule_to=RiskLevel.unlikely, overrule_reason="Recipient was our own auditor")
    c = wf.skip_notification(c.id, "fenna", "Auditor under NDA deleted the file")
    assert [s.status for s in wf.clocks(c)] == ["not_required"]
    with pytest.raises(TransitionRefusedError, match="cannot go from no_notification_needed to notification_drafted"):
        wf.draft(c.id, "fenna")
    clock.advance(hours=5)
    # the analyst's re-assessment may not silently drop the DPO's overrule
    with pytest.raises(TransitionRefusedError, match=r"overruled to unlikely by fenna \(Recipient was our own "
                                                     r"auditor\).*withdraw"):
        wf.assess(c.id, "analyst", {"identifiability": "maximum", "consequences": "serious"})
    assert wf.get(c.id).state is S.no_notification_needed
    c = wf.assess(c.id, "Fenna de Vries", {"identifiability": "maximum", "consequences": "serious"},
                  withdraw_overrule="The auditor's copy was forwarded to a third party")
    assert c.state is S.assessed and c.risk.level is RiskLevel.high and c.no_notification_reason is None
    # the 72 hours run again, from awareness, and the high risk's own clock for the data subjects (Art. 34(1))
    assert {s.id: s.status for s in wf.clocks(c)} == {"gdpr.authority": "open", "gdpr.subjects": "open"}
    assert c.risk_history[0].overruled_by == "fenna" and c.risk_history[0].overrule_reason
    assert c.trail[-1].action == "reconsider" and "Auditor under NDA" in c.trail[-1].reason
    with pytest.raises(TransitionRefusedError, match="cannot go from assessed to closed"):
        wf.close(c.id, "fenna", "nothing to do")
    c, res = wf.draft(c.id, "fenna")
    assert c.state is S.notification_drafted and res.complete


def test_reconsider_by_hand_and_a_repeated_overrule(wf: BreachWorkflow):
    c = confirmed_case(wf)
    c = wf.assess(c.id, "fenna", overrule_to=RiskLevel.unlikely, overrule_reason="Own auditor")
    c = wf.skip_notification(c.id, "fenna", "NDA")
    with pytest.raises(TransitionRefusedError, match="needs a reason"):
        wf.reconsider(c.id, "fenna", "")
    c = wf.reconsider(c.id, "fenna", "A second copy turned up")
    assert c.state is S.assessed and [s.status for s in wf.clocks(c)] == ["open"]
    c = wf.assess(c.id, "bob", {"identifiability": "maximum"}, overrule_to=RiskLevel.unlikely,
                  overrule_reason="Second copy was also the auditor's")
    assert c.risk.overruled_by == "bob" and c.state is S.assessed
    row = register_rows([c], CONFIG.tz)[0]
    assert row["risk_overruled_by"] == "bob" and row["risk_overrule_reason"] == "Second copy was also the auditor's"


# --- 3. a phased notification: each element tracked, no silent close, reminders until supplied ---------

def _phased(wf: BreachWorkflow):
    c = confirmed_case(wf, full=False)
    c = wf.edit(c.id, "fenna", {"breach_types": ["confidentiality"], "data_categories": ["contact"]})
    c = wf.assess(c.id, "fenna", {"identifiability": "maximum", "consequences": "serious"})
    c, res = wf.draft(c.id, "fenna", phased=True)
    c = wf.approve(c.id, "fenna", phased_reason="Forensics still running")
    return wf.submit(c.id, "fenna", channel="AP meldloket", reference="M-1"), res


def test_phased_elements_are_tracked_and_block_closing(wf: BreachWorkflow, clock):
    c, res = _phased(wf)
    assert {o.key for o in c.outstanding} == set(res.phased) and "cause" in res.phased
    c = wf.decide_subjects(c.id, "fenna", SubjectsDecisionKind.communicate, "high risk", communicated_at=clock.now(),
                           channel="letter")
    with pytest.raises(TransitionRefusedError, match=r"outstanding \(GDPR Art. 33\(4\).*cause"):
        wf.close(c.id, "fenna", "done")
    c = wf.supplement(c.id, "fenna", "Cause found", {"cause": "A script with a stolen token"})
    cause = next(o for o in c.outstanding if o.key == "cause")
    assert cause.supplied_at == clock.now() and cause.supplement_version == 1
    assert any(o.is_open for o in c.outstanding)
    with pytest.raises(TransitionRefusedError, match="outstanding"):
        wf.close(c.id, "fenna", "done")
    c = wf.close(c.id, "fenna", "done", outstanding_reason="The processor will never give the figures")
    assert c.state is S.closed and not any(o.is_open for o in c.outstanding)
    assert all(o.waived_by == "fenna" for o in c.outstanding if o.key != "cause")


def test_outstanding_elements_are_reminded_until_supplied(wf: BreachWorkflow, repo, clock):
    c, _ = _phased(wf)
    c = wf.decide_subjects(c.id, "fenna", SubjectsDecisionKind.communicate, "high risk", communicated_at=clock.now(),
                           channel="letter")  # only the supplement is left to remind of
    got: list[str] = []
    d = ReminderDispatcher(repo, clock, {"inbox": got.append}, tz=CONFIG.tz, offsets=())
    clock.advance(hours=23)
    assert d.run_due() == 0
    clock.advance(hours=1)
    assert d.run_due() == 1 and "still to follow" in got[-1] and "Art. 33(4)" in got[-1]
    assert d.run_due() == 0  # once
    clock.advance(hours=24)
    assert d.run_due() == 1
    c = wf.supplement(c.id, "fenna", "All the rest", supplies=[o.key for o in c.outstanding if o.is_open])
    clock.advance(hours=48)
    assert d.run_due() == 0 and len(got) == 2


# --- 4. every correction re-evaluates lateness and asks for reasons -------------------------------------

def test_submission_time_before_the_approval_is_refused(wf: BreachWorkflow, clock):
    c = confirmed_case(wf)
    c = wf.assess(c.id, "fenna", {"identifiability": "maximum", "consequences": "serious"})
    c, _ = wf.draft(c.id, "fenna")
    clock.advance(hours=100)
    c = wf.approve(c.id, "fenna", delay_reasons="Processor reported on day four")
    with pytest.raises(TransitionRefusedError, match="before the approval"):
        wf.submit(c.id, "fenna", channel="AP", reference="R", at=clock.now() - timedelta(hours=90))
    c = wf.submit(c.id, "fenna", channel="AP", reference="R")
    assert c.submission.late and c.late_reasons["gdpr.authority"] == "Processor reported on day four"


def test_moving_awareness_earlier_after_submission_asks_for_reasons(wf: BreachWorkflow, clock):
    c = submitted_case(wf)
    assert not c.submission.late
    earlier = c.awareness.at - timedelta(hours=80)
    with pytest.raises(TransitionRefusedError, match=r"makes a deadline late: GDPR: notify.*reasons for the delay"):
        wf.set_awareness(c.id, "fenna", earlier, "The helpdesk knew three days earlier")
    assert wf.get(c.id).awareness.at == c.awareness.at
    c = wf.set_awareness(c.id, "fenna", earlier, "The helpdesk knew three days earlier",
                         delay_reasons="The helpdesk did not escalate")
    assert [s.status for s in wf.clocks(c) if s.id == "gdpr.authority"] == ["met_late"]
    assert c.submission.late and c.submission.delay_reasons == "The helpdesk did not escalate"
    assert c.approval.late
    assert c.awareness_history[0].at == earlier + timedelta(hours=80)
    row = register_rows([c], CONFIG.tz)[0]
    assert row["late"] is True and row["delay_reasons"] == "The helpdesk did not escalate"
    assert row["awareness_original_at"] == "2026-03-27T10:00:00+01:00"


def test_a_corrected_milestone_is_re_evaluated(wf: BreachWorkflow, clock):
    c = confirmed_case(wf)
    c = wf.edit(c.id, "fenna", {"regimes": ["gdpr", "nis2"]})
    c = wf.record_milestone(c.id, "fenna", "nis2_early_warning_sent")
    clock.advance(hours=30)
    with pytest.raises(TransitionRefusedError, match="makes a deadline late"):
        wf.record_milestone(c.id, "fenna", "nis2_early_warning_sent", at=clock.now(), reason="sent later than noted")
    c = wf.record_milestone(c.id, "fenna", "nis2_early_warning_sent", at=clock.now(), reason="sent later than noted",
                            delay_reasons="Mail queue")
    assert c.trail[-1].action == "correct_milestone"


def _uk_case(wf: BreachWorkflow, clock, *, late_submission: bool) -> object:
    c = confirmed_case(wf)
    c = wf.edit(c.id, "fenna", {"regimes": ["gdpr", "uk_gdpr"]})
    c = wf.assess(c.id, "fenna", {"identifiability": "maximum", "consequences": "serious"})
    c, _ = wf.draft(c.id, "fenna", "authority", "nl")
    c, _ = wf.draft(c.id, "fenna", "authority", "en")
    if late_submission:
        clock.advance(hours=100)
    c = wf.approve(c.id, "fenna", delay_reasons="AP portal was down" if late_submission else None)
    c = wf.submit(c.id, "fenna", channel="AP meldloket", reference="M-1")
    clock.advance(hours=100 if not late_submission else 1)
    return c


@pytest.mark.parametrize("late_submission", [False, True], ids=["ap-on-time", "ap-late-with-its-own-reasons"])
def test_a_late_notification_to_another_authority_needs_its_own_delay_reasons(wf: BreachWorkflow, clock,
                                                                              late_submission: bool):
    """GDPR Art. 33(1) / UK GDPR Art. 33(1): the ICO notified after its 72 hours needs the reasons for
    that delay, through ``notify_authority`` too; the AP submission's reasons explain the AP's clock,
    not the ICO's (they were copied silently before)."""
    c = _uk_case(wf, clock, late_submission=late_submission)
    with pytest.raises(TransitionRefusedError, match=r"notification to ICO makes a deadline late: UK GDPR.*"
                                                     r"reasons for the delay"):
        wf.notify_authority(c.id, "fenna", authority="ICO", channel="ICO portal", reference="IC-1", lang="en",
                            milestone="ico_notified")
    c = wf.get(c.id)
    assert [n.authority for n in c.notifications] == ["Autoriteit Persoonsgegevens"]
    assert "ico_notified" not in c.milestones and "uk_gdpr.authority" not in c.late_reasons
    c = wf.notify_authority(c.id, "fenna", authority="ICO", channel="ICO portal", reference="IC-1", lang="en",
                            milestone="ico_notified", delay_reasons="UK establishment found on day five")
    ico = c.notifications[-1]
    assert (ico.authority, ico.late, ico.milestone) == ("ICO", True, "ico_notified")
    assert c.late_reasons["uk_gdpr.authority"] == "UK establishment found on day five"
    assert c.late_reasons.get("gdpr.authority") == ("AP portal was down" if late_submission else None)


# --- 5. a case holds its evidence: retention keeps it --------------------------------------------------

def test_retention_keeps_the_evidence_behind_an_open_case(tmp_path, clock):
    from datetime import UTC, datetime

    from access_audit import retention as ret
    from access_audit.breach.prefill import open_case_from_alerts
    from access_audit.breach.repo import BreachRepo
    from access_audit.core.alerts import Alert, Severity
    from access_audit.core.events import AccessEvent
    from access_audit.store.query import Query, Term
    from access_audit.store.sqlite import SqliteStore

    start = datetime(2025, 1, 10, 1, 0, tzinfo=UTC)  # evidence far older than a 30-day retention
    store = SqliteStore(tmp_path / "events.db")
    evs = [AccessEvent.from_doc({"@timestamp": (start + timedelta(seconds=i)).isoformat(),
                                 "event": {"id": f"ev{i}", "dataset": "http", "outcome": "success"},
                                 "user": {"name": "dmulder"},
                                 "url": {"path": f"/api/customers/{1000 + i}"}}) for i in range(2039)]
    evs.append(AccessEvent.from_doc({"@timestamp": "2025-01-12T09:00:00+00:00", "event": {"id": "other"}}))
    store.write_events(evs)
    a = Alert(id="a-mass", rule_id="mass_export", title="Mass export", severity=Severity.critical, risk_score=90,
              dedup_key="dmulder", first_seen=start, last_seen=start + timedelta(seconds=2038), created_at=start,
              user="dmulder", event_ids=["ev0"])
    store.write_alerts([a])
    repo = BreachRepo(tmp_path / "b2.db")
    case = open_case_from_alerts([a], store, repo, clock, "fenna", config=CONFIG)
    assert [h["id"] for h in store.legal_holds()] == [case.id]
    holds = [ret.LegalHold.from_doc(h) for h in store.legal_holds()]
    stores = dict.fromkeys(ret.STORE_CLASSES, store)
    plan = ret.plan(stores, ret.Periods(events=30, dead_letters=30, alerts=30), holds, clock.now())
    assert [(ln.cls, ln.records, ln.action) for ln in plan.lines] == [
        ("events", 2039, f"kept: held by {case.id}"), ("events", 1, "delete"),
        ("alerts", 1, f"kept: held by {case.id}")]
    ret.execute(plan, stores, hooks=[])
    # the draft's provenance query still finds the evidence
    q = Query(expr=Term("user.name", "eq", "dmulder"), since=start, until=start + timedelta(hours=1), limit=5000)
    assert store.count(q) == 2039 and store.count(Query()) == 2039
    store.close()
    repo.close()
