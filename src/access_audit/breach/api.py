"""HTTP API for the DPO console: a FastAPI ``APIRouter`` to mount under the app (e.g. ``/api``).

Dependencies are injectable with ``app.dependency_overrides``:

- :func:`get_workflow` -> the :class:`BreachWorkflow` (repository, clock, config);
- :func:`get_event_store` -> the EventStore, for opening cases from alerts;
- :func:`get_actor` -> the name of the person acting (the app's authentication replaces it; until
  then the ``X-Actor`` header).

Refusals of the workflow are 409 with ``{"detail": <why>, "state": ...}``; unknown cases 404; invalid
input 422. Times in responses are ISO 8601: UTC on the case, the organisation's offset on clocks.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Query
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from pydantic import AwareDatetime, BaseModel, Field, ValidationError

from access_audit.breach.model import (
    BreachError,
    CaseNotFoundError,
    ConcurrentUpdateError,
    RiskLevel,
    SubjectsDecisionKind,
    TransitionRefusedError,
)
from access_audit.breach.register import register_csv, register_rows
from access_audit.breach.service import case_json
from access_audit.breach.workflow import BreachWorkflow


def get_workflow() -> BreachWorkflow:
    """Default: the workflow on ``<data_dir>/breach.db`` from the environment's settings."""
    from access_audit.breach.service import workflow_from_settings
    from access_audit.settings import Settings

    return workflow_from_settings(Settings())


def get_event_store() -> Any:
    from access_audit.settings import Settings
    from access_audit.store.opening import open_store

    return open_store(Settings())


def get_actor(x_actor: Annotated[str | None, Header()] = None) -> str:
    if not x_actor:
        raise HTTPException(401, "who is acting? (X-Actor header, until the app's authentication provides it)")
    return x_actor


WF = Annotated[BreachWorkflow, Depends(get_workflow)]
Actor = Annotated[str, Depends(get_actor)]


def _call(wf: BreachWorkflow, fn: Any, *args: Any, **kw: Any) -> dict[str, Any]:
    out = _call_raw(wf, fn, *args, **kw)
    case = out[0] if isinstance(out, tuple) else out
    return case_json(wf, case)


def _call_raw(wf: BreachWorkflow, fn: Any, *args: Any, **kw: Any) -> Any:
    """``fn(*args, **kw)`` with the workflow's errors as HTTP answers."""
    try:
        return fn(*args, **kw)
    except CaseNotFoundError as e:
        raise HTTPException(404, e.message) from None
    except (TransitionRefusedError, ConcurrentUpdateError) as e:
        raise HTTPException(409, {"detail": e.message, "state": getattr(e, "from_state", None)}) from None
    except BreachError as e:
        raise HTTPException(422, e.message) from None
    except ValidationError as e:  # a value the case model refuses (e.g. a naive time): the caller's input
        raise HTTPException(422, "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors())) from None


class OpenBody(BaseModel):
    title: str | None = None
    summary: str | None = None
    occurred_from: AwareDatetime | None = None
    occurred_to: AwareDatetime | None = None
    detected_at: AwareDatetime | None = None
    regimes: list[str] | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class FromAlertsBody(BaseModel):
    alert_ids: list[str] = Field(min_length=1)
    source: str = "api"


class AwareBody(BaseModel):
    at: AwareDatetime
    reason: str
    by: str | None = None
    delay_reasons: str | None = None  # a correction that makes a met deadline late (GDPR Art. 33(1))
    #: a time before the first evidence or a year off is refused (422) unless confirmed, as the CLI asks
    confirm: bool = False


class ReasonBody(BaseModel):
    reason: str


class EditBody(BaseModel):
    changes: dict[str, Any]
    reason: str | None = None


class MilestoneBody(BaseModel):
    name: str
    at: AwareDatetime | None = None
    reason: str | None = None
    delay_reasons: str | None = None


class AssessBody(BaseModel):
    answers: dict[str, Any] = Field(default_factory=dict)
    overrule_to: RiskLevel | None = None
    overrule_reason: str | None = None
    withdraw_overrule: str | None = None


class DraftBody(BaseModel):
    kind: str = "authority"
    lang: str = "nl"
    phased: bool = False


class ApproveBody(BaseModel):
    delay_reasons: str | None = None
    phased_reason: str | None = None


class SubmitBody(BaseModel):
    channel: str
    reference: str
    at: AwareDatetime | None = None
    milestone: str = "authority_notified"
    authority: str | None = None


class SupplementBody(BaseModel):
    text: str
    changes: dict[str, Any] = Field(default_factory=dict)
    reference: str | None = None
    supplies: list[str] = Field(default_factory=list)  # outstanding elements the text supplies (Art. 33(4))


class CloseBody(BaseModel):
    reason: str
    outstanding_reason: str | None = None  # why outstanding Art. 33(4) elements will not follow


class SubjectsBody(BaseModel):
    decision: SubjectsDecisionKind
    reasoning: str
    communicated_at: AwareDatetime | None = None
    channel: str | None = None


router = APIRouter(prefix="/breaches", tags=["breach"])


@router.get("")
def list_cases(wf: WF, state: str | None = None, open_only: bool = False) -> list[dict[str, Any]]:
    return [case_json(wf, c) for c in wf.repo.list(state=state, open_only=open_only)]


@router.post("", status_code=201)
def open_case(body: OpenBody, wf: WF, actor: Actor) -> dict[str, Any]:
    return _call(wf, wf.open_case, actor, title=body.title, summary=body.summary, source="api",
                 occurred_from=body.occurred_from, occurred_to=body.occurred_to, detected_at=body.detected_at,
                 regimes=body.regimes, details=body.details)


@router.post("/from-alerts", status_code=201)
def open_from_alerts(body: FromAlertsBody, wf: WF, actor: Actor,
                     store: Annotated[Any, Depends(get_event_store)]) -> dict[str, Any]:
    from access_audit.breach.prefill import open_case_from_alerts

    by_id = {a.id: a for a in store.alerts(limit=100_000)}
    missing = [i for i in body.alert_ids if i not in by_id]
    if missing:
        raise HTTPException(404, f"unknown alert(s): {', '.join(missing)}")
    try:
        case = open_case_from_alerts([by_id[i] for i in body.alert_ids], store, wf.repo, wf.clock, actor,
                                     config=wf.config, source=body.source, existing="refuse")
    except BreachError as e:  # an alert already in a case: no duplicate
        raise HTTPException(409, e.message) from None
    return case_json(wf, case)


@router.get("/register")
def register(wf: WF, format: Annotated[str, Query(pattern="^(json|csv)$")] = "json") -> Any:
    cases = wf.repo.list()
    if format == "csv":
        return PlainTextResponse(register_csv(cases, wf.config.tz), media_type="text/csv")
    return register_rows(cases, wf.config.tz)


@router.get("/{case_id}")
def show(case_id: str, wf: WF) -> dict[str, Any]:
    return _call(wf, wf.get, case_id)


@router.get("/{case_id}/clocks")
def clocks(case_id: str, wf: WF) -> list[dict[str, Any]]:
    return list(_call(wf, wf.get, case_id)["clocks"])


@router.post("/{case_id}/triage")
def triage(case_id: str, wf: WF, actor: Actor, body: ReasonBody | None = None) -> dict[str, Any]:
    return _call(wf, wf.start_triage, case_id, actor, body.reason if body else None)


@router.post("/{case_id}/awareness")
def aware(case_id: str, body: AwareBody, wf: WF, actor: Actor) -> dict[str, Any]:
    """Set or correct the awareness time. A time that looks like a typo (before the case's first
    evidence, or more than a year from now) answers 422 naming the doubt unless ``confirm`` is true:
    every legal clock runs from it, and the CLI asks the same question."""
    if not body.confirm:
        case = _call_raw(wf, wf.get, case_id)
        doubts = wf.awareness_doubts(case, body.at)
        if doubts:
            raise HTTPException(422, f"the awareness time {body.at.isoformat()} is {' and '.join(doubts)}: "
                                     'check it, or send "confirm": true')
    return _call(wf, wf.set_awareness, case_id, actor, body.at, body.reason, by=body.by,
                 delay_reasons=body.delay_reasons)


@router.post("/{case_id}/dismissal")
def dismiss(case_id: str, body: ReasonBody, wf: WF, actor: Actor) -> dict[str, Any]:
    return _call(wf, wf.dismiss, case_id, actor, body.reason)


@router.patch("/{case_id}")
def edit(case_id: str, body: EditBody, wf: WF, actor: Actor) -> dict[str, Any]:
    return _call(wf, wf.edit, case_id, actor, body.changes, body.reason)


@router.post("/{case_id}/milestones")
def milestone(case_id: str, body: MilestoneBody, wf: WF, actor: Actor) -> dict[str, Any]:
    return _call(wf, wf.record_milestone, case_id, actor, body.name, body.at, body.reason,
                 delay_reasons=body.delay_reasons)


@router.post("/{case_id}/assessment")
def assess(case_id: str, body: AssessBody, wf: WF, actor: Actor) -> dict[str, Any]:
    return _call(wf, wf.assess, case_id, actor, body.answers, overrule_to=body.overrule_to,
                 overrule_reason=body.overrule_reason, withdraw_overrule=body.withdraw_overrule)



@router.post("/{case_id}/no-notification")
def no_notification(case_id: str, body: ReasonBody, wf: WF, actor: Actor) -> dict[str, Any]:
    return _call(wf, wf.skip_notification, case_id, actor, body.reason)


@router.post("/{case_id}/drafts")
def draft(case_id: str, body: DraftBody, wf: WF, actor: Actor) -> dict[str, Any]:
    try:
        case, res = wf.draft(case_id, actor, body.kind, body.lang, phased=body.phased)
    except CaseNotFoundError as e:
        raise HTTPException(404, e.message) from None
    except (TransitionRefusedError, ConcurrentUpdateError) as e:
        raise HTTPException(409, {"detail": e.message, "state": getattr(e, "from_state", None)}) from None
    except BreachError as e:
        raise HTTPException(422, e.message) from None
    return {"complete": res.complete, "missing": [m.__dict__ for m in res.missing], "phased": res.phased,
            "markdown": res.markdown, "html": res.html, "case": case_json(wf, case)}


@router.get("/{case_id}/drafts/{kind}")
def preview(case_id: str, kind: str, wf: WF, lang: str = "nl",
            format: Annotated[str, Query(pattern="^(md|html|pdf)$")] = "md") -> Response:
    """Render a draft without recording it (422 lists the missing elements)."""
    from access_audit.breach import drafts

    try:
        case = wf.get(case_id)
        res = drafts.render(case, kind, lang, tz=wf.config.tz, now=wf.clock.now())
    except CaseNotFoundError as e:
        raise HTTPException(404, e.message) from None
    except BreachError as e:
        raise HTTPException(422, e.message) from None
    if res.markdown is None or res.html is None:
        raise HTTPException(422, {"detail": res.missing_text(), "missing": [m.__dict__ for m in res.missing]})
    if format == "html":
        return HTMLResponse(res.html)
    if format == "pdf":
        try:
            return Response(drafts.to_pdf(res.html), media_type="application/pdf")
        except BreachError as e:
            raise HTTPException(501, e.message) from None
    return PlainTextResponse(res.markdown, media_type="text/markdown")


@router.post("/{case_id}/approval")
def approve(case_id: str, body: ApproveBody, wf: WF, actor: Actor) -> dict[str, Any]:
    return _call(wf, wf.approve, case_id, actor, delay_reasons=body.delay_reasons, phased_reason=body.phased_reason)


@router.post("/{case_id}/submission")
def submit(case_id: str, body: SubmitBody, wf: WF, actor: Actor) -> dict[str, Any]:
    return _call(wf, wf.submit, case_id, actor, channel=body.channel, reference=body.reference, at=body.at,
                 milestone=body.milestone, authority=body.authority)


@router.post("/{case_id}/supplements")
def supplement(case_id: str, body: SupplementBody, wf: WF, actor: Actor) -> dict[str, Any]:
    return _call(wf, wf.supplement, case_id, actor, body.text, body.changes, body.reference, supplies=body.supplies)


@router.post("/{case_id}/subjects-decision")
def subjects(case_id: str, body: SubjectsBody, wf: WF, actor: Actor) -> dict[str, Any]:
    return _call(wf, wf.decide_subjects, case_id, actor, body.decision, body.reasoning,
                 communicated_at=body.communicated_at, channel=body.channel)


@router.post("/{case_id}/closure")
def close(case_id: str, body: CloseBody, wf: WF, actor: Actor) -> dict[str, Any]:
    return _call(wf, wf.close, case_id, actor, body.reason, outstanding_reason=body.outstanding_reason)


class NotifyBody(BaseModel):
    authority: str
    channel: str
    reference: str
    lang: str
    at: AwareDatetime | None = None
    milestone: str | None = None
    delay_reasons: str | None = None


class AmendBody(BaseModel):
    text: str
    reference: str | None = None


class SubjectsToldBody(BaseModel):
    at: AwareDatetime
    channel: str


class DoraReportBody(BaseModel):
    at: AwareDatetime | None = None
    reference: str | None = None
    note: str | None = None


@router.post("/{case_id}/reconsideration")
def reconsider(case_id: str, body: ReasonBody, wf: WF, actor: Actor) -> dict[str, Any]:
    """Withdraw a 'no notification' decision (or a draft) on new facts: the case is assessed again."""
    return _call(wf, wf.reconsider, case_id, actor, body.reason)


@router.post("/{case_id}/notifications")
def notify(case_id: str, body: NotifyBody, wf: WF, actor: Actor) -> dict[str, Any]:
    """Record a notification to a further supervisory authority (EDPB Guidelines 9/2022 §73)."""
    return _call(wf, wf.notify_authority, case_id, actor, authority=body.authority, channel=body.channel,
                 reference=body.reference, lang=body.lang, at=body.at, milestone=body.milestone,
                 delay_reasons=body.delay_reasons)


@router.post("/{case_id}/notifications/{number}/amendments")
def amend(case_id: str, number: int, body: AmendBody, wf: WF, actor: Actor) -> dict[str, Any]:
    """Record an amendment ("aanpassen") of notification ``number``."""
    return _call(wf, wf.amend_notification, case_id, actor, number, body.text, body.reference)


@router.post("/{case_id}/notifications/{number}/withdrawal")
def withdraw(case_id: str, number: int, body: ReasonBody, wf: WF, actor: Actor) -> dict[str, Any]:
    """Record the withdrawal ("intrekken") of notification ``number``; it stays in the register."""
    return _call(wf, wf.withdraw_notification, case_id, actor, number, body.reason)


@router.post("/{case_id}/subjects-told")
def subjects_told(case_id: str, body: SubjectsToldBody, wf: WF, actor: Actor) -> dict[str, Any]:
    """Record when and how the data subjects were told (Art. 34(1)), after a 'communicate' decision."""
    return _call(wf, wf.subjects_told, case_id, actor, body.at, body.channel)


@router.post("/{case_id}/dora-reports")
def dora_report(case_id: str, body: DoraReportBody, wf: WF, actor: Actor) -> dict[str, Any]:
    """Record a DORA intermediate report or an update of it (DORA Art. 19(4)(b))."""
    return _call(wf, wf.dora_report, case_id, actor, at=body.at, reference=body.reference, note=body.note)
