"""The case's states, the transitions allowed between them, and the guards that refuse with a reason.

    reported -> triage -> not a breach -> closed
                       -> confirmed (awareness set) -> assessed -> no notification needed -> closed
                                                             -> notification drafted -> approved -> submitted
    submitted (+ supplementary notifications, Art. 33(4)) -> data subjects decided (Art. 34) -> closed

A refusal is a TransitionRefusedError whose message says what is wrong and what to do instead,
e.g. approving a late notification without the reasons for the delay (Art. 33(1)).
"""

from __future__ import annotations

from access_audit.breach.model import BreachCase, BreachState, TransitionRefusedError

S = BreachState

#: from -> {to: what the step means}
TRANSITIONS: dict[BreachState, dict[BreachState, str]] = {
    S.reported: {S.triage: "start triage"},
    S.triage: {S.not_a_breach: "conclude it is not a personal-data breach",
               S.confirmed: "confirm the breach (awareness set)"},
    S.not_a_breach: {S.closed: "close", S.triage: "reopen for triage (new facts)"},
    S.confirmed: {S.assessed: "record the risk assessment"},
    S.assessed: {S.no_notification_needed: "decide no notification is needed (risk unlikely)",
                 S.notification_drafted: "draft the notification to the authority"},
    S.no_notification_needed: {S.closed: "close", S.assessed: "reconsider (new facts)"},
    S.notification_drafted: {S.approved: "approve the draft", S.assessed: "reconsider (new facts)"},
    S.approved: {S.submitted: "record the submission to the authority",
                 S.notification_drafted: "redraft (withdraws the approval)"},
    S.submitted: {S.subjects_decided: "decide on telling the data subjects (Art. 34)"},
    S.subjects_decided: {S.closed: "close"},
    S.closed: {},
}

#: what a state waits for, to tell the user the next step
NEXT_STEP: dict[BreachState, str] = {
    S.reported: "start triage, or set the awareness time ('breach aware') once the breach is certain",
    S.triage: "set the awareness time ('breach aware'), or dismiss it as not a breach",
    S.not_a_breach: "close it",
    S.confirmed: "record the risk assessment ('breach assess')",
    S.assessed: "draft the notification ('breach draft'), or record that no notification is needed",
    S.no_notification_needed: "close it",
    S.notification_drafted: "approve the draft ('breach approve')",
    S.approved: "submit it to the authority and record the reference ('breach submit')",
    S.submitted: "decide on telling the data subjects ('breach subjects'); supplements may follow",
    S.subjects_decided: "close it once the remaining clocks are met ('breach close')",
    S.closed: "nothing: the case is closed",
}

#: actions that do not change the state, and the states they are allowed in
ACTIONS: dict[str, frozenset[BreachState]] = {
    "edit": frozenset(set(S) - {S.closed}),
    "milestone": frozenset(set(S) - {S.closed}),
    "correct_awareness": frozenset(set(S) - {S.reported, S.triage, S.not_a_breach, S.closed}),
    "reassess": frozenset({S.no_notification_needed, S.notification_drafted, S.approved, S.submitted,
                           S.subjects_decided}),
    "draft_other": frozenset(set(S) - {S.reported, S.triage, S.not_a_breach, S.closed}),
    "redraft": frozenset({S.notification_drafted}),
    "supplement": frozenset({S.submitted, S.subjects_decided}),
}


def allowed(frm: BreachState, to: BreachState) -> bool:
    return to in TRANSITIONS[frm]


def require_transition(case: BreachCase, to: BreachState) -> None:
    """Raise TransitionRefusedError unless ``case`` may move to ``to`` (guards are checked apart)."""
    frm = case.state
    if allowed(frm, to):
        return
    nxt = TRANSITIONS[frm]
    options = "; ".join(f"{t.value} ({why})" for t, why in nxt.items()) or "none"
    raise TransitionRefusedError(
        f"cannot go from {frm.value} to {to.value}. From {frm.value} the next step is to {NEXT_STEP[frm]} "
        f"(allowed: {options})", case_id=case.id, from_state=frm.value, to_state=to.value)


def require_action(case: BreachCase, action: str, what: str) -> None:
    if case.state not in ACTIONS[action]:
        states = ", ".join(sorted(s.value for s in ACTIONS[action]))
        raise TransitionRefusedError(f"cannot {what} while the case is {case.state.value} (only when {states}). "
                                     f"Next step: {NEXT_STEP[case.state]}", case_id=case.id,
                                     from_state=case.state.value)


def require_reason(case: BreachCase, reason: str | None, what: str) -> str:
    if reason is None or not reason.strip():
        raise TransitionRefusedError(f"{what} needs a reason (it goes into the audit trail and the register)",
                                     case_id=case.id, from_state=case.state.value)
    return reason.strip()
