"""The state machine: the whole path, every refusal with its reason, the audit trail, the late rule."""

from __future__ import annotations

from datetime import timedelta

import pytest
from breach_helpers import confirmed_case, submitted_case

from access_audit.breach.machine import TRANSITIONS
from access_audit.breach.model import (
    BreachError,
    BreachState,
    ConcurrentUpdateError,
    RiskLevel,
    SubjectsDecisionKind,
    TransitionRefusedError,
)
from access_audit.breach.workflow import BreachWorkflow

S = BreachState


def test_the_whole_path_with_its_audit_trail(wf: BreachWorkflow, clock):
    c = confirmed_case(wf)
    assert c.id == "BR-2026-0001" and c.state is S.confirmed
    c = wf.assess(c.id, "fenna", {"identifiability": "maximum", "consequences": "serious"})
    assert c.state is S.assessed and c.risk.level is RiskLevel.high
    clock.advance(hours=2)
    c, res = wf.draft(c.id, "fenna", "authority", "nl")
    assert res.complete and c.state is S.notification_drafted
    c = wf.approve(c.id, "Fenna de Vries")
    assert c.state is S.approved and c.approval.draft_version == 1 and not c.approval.late
    c = wf.submit(c.id, "Fenna de Vries", channel="AP meldloket", reference="M-2026-001")
    assert c.state is S.submitted and c.milestones["authority_notified"] == clock.now()
    assert {s.id: s.status for s in wf.clocks(c)} == {"gdpr.authority": "met", "gdpr.subjects": "open"}
    c = wf.supplement(c.id, "fenna", "Forensics: 2,043 customers, not 2,000", {"subjects_max": 2043})
    c = wf.supplement(c.id, "fenna", "The script's output was deleted from the laptop")
    assert [s.version for s in c.supplements] == [1, 2] and c.details.subjects_max == 2043
    with pytest.raises(TransitionRefusedError, match="when and how is not recorded"):
        wf.decide_subjects(c.id, "fenna", SubjectsDecisionKind.communicate, "High risk: BSN and addresses")
        wf.close(c.id, "fenna", "Letters sent, measures in place")
    c = wf.subjects_told(c.id, "fenna", clock.now(), "letter by post")
    c = wf.close(c.id, "fenna", "Letters sent, measures in place")
    assert c.state is S.closed and c.closed_at == clock.now()
    stored = wf.get(c.id)
    steps = [(e.action, e.from_state and e.from_state.value, e.to_state and e.to_state.value) for e in stored.trail]
    assert steps == [
        ("open", None, "reported"), ("triage", "reported", "triage"), ("aware", "triage", "confirmed"),
        ("edit", "confirmed", None), ("assess", "confirmed", "assessed"),
        ("draft", "assessed", "notification_drafted"), ("approve", "notification_drafted", "approved"),
        ("submit", "approved", "submitted"), ("supplement", "submitted", None), ("supplement", "submitted", None),
        ("subjects", "submitted", "subjects_decided"), ("subjects_told", "subjects_decided", None),
        ("close", "subjects_decided", "closed"),
    ]
    assert all(e.actor and e.at for e in stored.trail)
    edit = stored.trail[3]
    assert edit.changes["details.subjects_max"] == [None, 2100] and edit.reason == "facts from the investigation"
    sup = stored.trail[8]
    assert sup.changes["details.subjects_max"] == [2100, 2043]


def test_every_state_has_a_next_step_and_closed_is_final():
    assert TRANSITIONS[S.closed] == {}
    assert all(TRANSITIONS[s] for s in S if s is not S.closed)


@pytest.mark.parametrize(("action", "pattern"), [
    (lambda wf, i: wf.approve(i, "x"), "cannot go from reported to approved.*next step is to start triage"),
    (lambda wf, i: wf.submit(i, "x", channel="c", reference="r"), "cannot go from reported to submitted"),
    (lambda wf, i: wf.close(i, "x", "done"), "cannot go from reported to closed"),
    (lambda wf, i: wf.assess(i, "x"), "cannot assess the risk while the case is reported"),
    (lambda wf, i: wf.supplement(i, "x", "more"), "cannot send a supplementary notification while the case is "
                                                  "reported"),
    (lambda wf, i: wf.draft(i, "x", "authority"), "cannot go from reported to notification_drafted"),
])
def test_invalid_transitions_are_refused_with_the_reason(wf: BreachWorkflow, action, pattern):
    c = wf.open_case("alice", title="t")
    with pytest.raises(TransitionRefusedError, match=pattern):
        action(wf, c.id)
    assert wf.get(c.id).state is S.reported and len(wf.get(c.id).trail) == 1  # nothing changed


def test_guards(wf: BreachWorkflow, clock):
    c = wf.open_case("alice", title="t")
    with pytest.raises(TransitionRefusedError, match="needs a reason"):
        wf.set_awareness(c.id, "alice", clock.now(), " ")
    with pytest.raises(TransitionRefusedError, match="in the future"):
        wf.set_awareness(c.id, "alice", clock.now() + timedelta(hours=1), "r")
    with pytest.raises(BreachError, match="named person"):
        wf.start_triage(c.id, "")
    c = confirmed_case(wf)
    with pytest.raises(TransitionRefusedError, match="overruling the proposed risk level needs a reason"):
        wf.assess(c.id, "fenna", overrule_to=RiskLevel.unlikely)
    c = wf.assess(c.id, "fenna", {"identifiability": "maximum"})
    with pytest.raises(TransitionRefusedError, match=r"must be notified.*Overrule the level"):
        wf.skip_notification(c.id, "fenna", "we think it is fine")
    with pytest.raises(TransitionRefusedError, match=r"cannot go from assessed to approved.*draft the notification"):
        wf.approve(c.id, "fenna")


def test_overrule_to_unlikely_then_document_only(wf: BreachWorkflow):
    c = confirmed_case(wf)
    c = wf.assess(c.id, "fenna", overrule_to=RiskLevel.unlikely, overrule_reason="Recipient was our own auditor")
    assert c.risk.proposed is not RiskLevel.unlikely and c.risk.level is RiskLevel.unlikely
    assert "overruled to unlikely: Recipient was our own auditor" in c.trail[-1].reason
    c = wf.skip_notification(c.id, "fenna", "Auditor under NDA deleted the file")
    assert c.state is S.no_notification_needed
    c = wf.close(c.id, "fenna", "documented")
    assert [s.status for s in wf.clocks(c)] == ["not_required"]


def test_high_risk_requires_telling_the_subjects_or_an_exception(wf: BreachWorkflow):
    c = submitted_case(wf)
    assert c.risk.level is RiskLevel.high
    with pytest.raises(TransitionRefusedError, match=r"must be told \(Art. 34\(1\)\)"):
        wf.decide_subjects(c.id, "fenna", SubjectsDecisionKind.not_required, "too much work")
    c = wf.decide_subjects(c.id, "fenna", SubjectsDecisionKind.exception_34_3_c, "2,000 letters: public notice")
    assert c.state is S.subjects_decided


def test_close_is_refused_while_another_clock_runs(wf: BreachWorkflow):
    c = submitted_case(wf)
    c = wf.edit(c.id, "fenna", {"regimes": ["gdpr", "nis2"]})
    c = wf.decide_subjects(c.id, "fenna", SubjectsDecisionKind.communicate, "high risk", communicated_at=c.opened_at,
                           channel="e-mail")
    with pytest.raises(TransitionRefusedError, match="clocks are open: NIS2: early warning"):
        wf.close(c.id, "fenna", "done")
    for m in ("nis2_early_warning_sent", "nis2_notification_sent", "nis2_final_report_sent"):
        c = wf.record_milestone(c.id, "fenna", m)
    assert wf.close(c.id, "fenna", "done").state is S.closed


def test_dismissed_case_stays_and_can_be_reopened(wf: BreachWorkflow):
    c = wf.open_case("alice", title="Misdirected e-mail")
    c = wf.dismiss(c.id, "fenna", "The e-mail held no personal data")
    assert c.state is S.not_a_breach and c.not_a_breach_reason
    with pytest.raises(TransitionRefusedError, match=r"reopening.*needs a reason"):
        wf.start_triage(c.id, "fenna")
    assert wf.start_triage(c.id, "fenna", "An attachment had a customer list").state is S.triage


def test_awareness_correction_is_recorded_and_moves_the_clocks(wf: BreachWorkflow, clock):
    c = confirmed_case(wf)
    due = wf.clocks(c)[0].due
    c = wf.set_awareness(c.id, "fenna", clock.now() - timedelta(hours=5), "The first call was already certain")
    assert wf.clocks(c)[0].due == due - timedelta(hours=5)
    assert c.trail[-1].action == "correct_awareness" and "awareness.at" in c.trail[-1].changes


def test_a_stale_write_is_refused(wf: BreachWorkflow, repo):
    c = confirmed_case(wf)
    stale = repo.get(c.id)
    wf.edit(c.id, "bob", {"cause": "bob's version"})
    stale.details = stale.details.model_copy(update={"cause": "alice's version"})
    with pytest.raises(ConcurrentUpdateError):
        repo.save(stale, [])
    assert repo.get(c.id).details.cause == "bob's version"


def test_unknown_fields_and_bad_values_are_refused(wf: BreachWorkflow):
    c = confirmed_case(wf, full=False)
    with pytest.raises(BreachError, match="unknown field 'colour'"):
        wf.edit(c.id, "x", {"colour": "red"})
    with pytest.raises(BreachError, match="invalid value"):
        wf.edit(c.id, "x", {"data_categories": ["gossip"]})
    with pytest.raises(BreachError, match="unknown regime 'ccpa'"):
        wf.edit(c.id, "x", {"regimes": ["ccpa"]})
    with pytest.raises(BreachError, match="unknown milestone"):
        wf.record_milestone(c.id, "x", "coffee_break")


# --- the late-notification rule (Art. 33(1)) ---------------------------------------------------------

def test_late_notification_cannot_be_approved_without_reasons(wf: BreachWorkflow, clock):
    c = confirmed_case(wf)
    c = wf.assess(c.id, "fenna")
    c, _ = wf.draft(c.id, "fenna", "authority", "en")
    clock.advance(hours=72)  # exactly at the deadline: not yet late
    clock.advance(seconds=1)
    with pytest.raises(TransitionRefusedError, match=r"late \(GDPR: notify the supervisory authority was due "
                                                      r"2026-03-30T11:00:00\+02:00\).*reasons for the delay"):
        wf.approve(c.id, "fenna")
    c = wf.approve(c.id, "fenna", delay_reasons="The processor told us only on day three")
    assert c.approval.late and c.approval.delay_reasons == "The processor told us only on day three"
    approved = c.latest_draft("authority")
    assert approved.version == 2 and c.approval.draft_version == 2  # redrafted with the reasons
    assert "Reasons for the delay (Art. 33(1)):** The processor told us only on day three" in approved.markdown
    c = wf.submit(c.id, "fenna", channel="web form", reference="R-1")
    assert c.submission.late and [s.status for s in wf.clocks(c) if s.id == "gdpr.authority"] == ["met_late"]


def test_on_time_approval_but_late_submission_needs_reasons(wf: BreachWorkflow, clock):
    c = confirmed_case(wf)
    c = wf.assess(c.id, "fenna")
    c, _ = wf.draft(c.id, "fenna")
    c = wf.approve(c.id, "fenna")
    clock.advance(hours=80)
    with pytest.raises(TransitionRefusedError, match=r"after the deadline.*no reasons for the delay"):
        wf.submit(c.id, "fenna", channel="web form", reference="R-1")
    # submitted in time, recorded later: fine
    c = wf.submit(c.id, "fenna", channel="web form", reference="R-1", at=clock.now() - timedelta(hours=10))
    assert not c.submission.late


def test_redraft_withdraws_the_approval(wf: BreachWorkflow):
    c = confirmed_case(wf)
    c = wf.assess(c.id, "fenna")
    c, _ = wf.draft(c.id, "fenna")
    c = wf.approve(c.id, "fenna")
    c = wf.edit(c.id, "fenna", {"cause": "Corrected cause"})
    c, _ = wf.draft(c.id, "fenna")
    assert c.state is S.notification_drafted and c.approval is None
    assert [d.version for d in c.drafts] == [1, 2]


def test_phased_draft_needs_a_reason_to_approve(wf: BreachWorkflow):
    c = confirmed_case(wf, full=False)
    c = wf.edit(c.id, "fenna", {"breach_types": ["confidentiality"], "data_categories": ["contact"]})
    c = wf.assess(c.id, "fenna")
    c, res = wf.draft(c.id, "fenna")
    assert res.markdown is None and c.state is S.assessed  # incomplete: nothing recorded
    c, res = wf.draft(c.id, "fenna", phased=True)
    assert c.state is S.notification_drafted and "cause" in res.phased
    with pytest.raises(TransitionRefusedError, match=r"phased notification \(.*cause.*Art. 33\(4\)\)"):
        wf.approve(c.id, "fenna")
    c = wf.approve(c.id, "fenna", phased_reason="Forensics still running; figures follow")
    assert c.approval.phased_reason
