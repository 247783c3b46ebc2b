"""Wiring for the breach workflow: from the app's settings to a workflow, a reminder scheduler,
and the hook Slack's escalate button calls. Callers pick the adapters; this module only assembles.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from access_audit.breach.model import BreachCase
from access_audit.breach.prefill import open_case_from_alerts
from access_audit.breach.reminders import ConsoleSender, ReminderDispatcher, ReminderScheduler, Send
from access_audit.breach.repo import BreachRepo
from access_audit.breach.workflow import BreachConfig, BreachWorkflow
from access_audit.core.alerts import Alert
from access_audit.core.clock import Clock, SystemClock


def case_json(wf: BreachWorkflow, case: BreachCase) -> dict[str, Any]:
    """The case as JSON with every clock (due times ISO 8601 in the organisation's zone, with offset)."""
    doc = case.model_dump(mode="json")
    doc["clocks"] = [s.to_json(wf.config.tz) for s in wf.clocks(case)]
    doc["timezone"] = wf.config.timezone
    return doc


def open_repo(settings: Any) -> BreachRepo:
    return BreachRepo.from_settings(settings)


def workflow_from_settings(settings: Any, clock: Clock | None = None) -> BreachWorkflow:
    return BreachWorkflow(open_repo(settings), clock or SystemClock(), BreachConfig.from_settings(settings))


def reminder_dispatcher(wf: BreachWorkflow, senders: dict[str, Send] | None = None) -> ReminderDispatcher:
    """Reminders to ``senders`` (default: the console). Add the DPO's Slack channel with
    ``{"slack": slack_sender(slack_notifier, settings.slack_dpo_channel)}``."""
    cfg = wf.config
    return ReminderDispatcher(wf.repo, wf.clock, senders or {"console": ConsoleSender()}, tz=cfg.tz,
                              offsets=cfg.reminder_offsets_hours, processor_notice_hours=cfg.processor_notice_hours)


def reminder_scheduler(wf: BreachWorkflow, senders: dict[str, Send] | None = None, *,
                       resync_seconds: float = 60) -> ReminderScheduler:
    return ReminderScheduler(reminder_dispatcher(wf, senders), resync_seconds=resync_seconds)


def escalate_handler(wf: BreachWorkflow, store: Any, *, source: str = "slack") -> Callable[[list[Alert], str], str]:
    """``on_escalate(alerts, user) -> case id`` for Slack's escalate button (notify.interactive)."""

    def on_escalate(alerts: list[Alert], user: str) -> str:
        case = open_case_from_alerts(alerts, store, wf.repo, wf.clock, user, config=wf.config, source=source,
                                     reason=f"escalated by {user}", existing="return")
        return case.id

    return on_escalate
