"""Reminders: at the right moments (injected clock), once per channel, across restarts, and with
the real APScheduler adapter."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from breach_helpers import CONFIG, confirmed_case

from access_audit.breach.model import SubjectsDecisionKind
from access_audit.breach.reminders import ReminderDispatcher, ReminderScheduler, planned_reminders
from access_audit.breach.repo import BreachRepo
from access_audit.breach.workflow import BreachWorkflow
from access_audit.core.clock import SystemClock
from access_audit.testing import FrozenClock

AMS = CONFIG.tz
T0 = datetime(2026, 3, 27, 9, 0, tzinfo=UTC)


class Inbox:
    def __init__(self, clock=None, fail: int = 0) -> None:
        self.got: list[tuple[datetime | None, str]] = []
        self.clock = clock
        self.fail = fail

    def __call__(self, text: str) -> None:
        if self.fail:
            self.fail -= 1
            raise ConnectionError("Slack is down")
        self.got.append((self.clock.now() if self.clock else None, text))


def dispatcher(repo, clock, **senders) -> ReminderDispatcher:
    return ReminderDispatcher(repo, clock, senders, tz=AMS, offsets=(48, 24, 6, 1))


def test_the_plan_for_a_72_hour_clock_across_the_spring_change(wf: BreachWorkflow):
    c = confirmed_case(wf)
    plan = planned_reminders(c, offsets=(48, 24, 6, 1), tz=AMS, now=T0)
    assert [(r.offset, r.fire_at.astimezone(AMS).isoformat()) for r in plan] == [
        ("48h", "2026-03-28T10:00:00+01:00"), ("24h", "2026-03-29T11:00:00+02:00"),
        ("6h", "2026-03-30T05:00:00+02:00"), ("1h", "2026-03-30T10:00:00+02:00"),
        ("overdue", "2026-03-30T11:00:00+02:00")]
    assert plan[0].job_id == f"{c.id}:gdpr.authority:48h"


def test_reminders_before_the_clock_was_known_are_not_planned(wf: BreachWorkflow, clock):
    c = wf.open_case("alice", title="Reported late")
    clock.advance(hours=30)  # entered 30 h after the awareness moment
    c = wf.set_awareness(c.id, "fenna", T0, "the backup vendor called on Friday")
    c = wf.edit(c.id, "fenna", {"regimes": ["gdpr", "nis2"]})
    plan = planned_reminders(c, offsets=(48, 24, 6, 1), tz=AMS, now=clock.now())
    assert [(r.clock_id, r.offset) for r in plan] == [
        ("nis2.early_warning", "overdue"),  # overdue already when entered: said at once
        ("gdpr.authority", "24h"), ("nis2.notification", "24h"), ("gdpr.authority", "6h"),
        ("nis2.notification", "6h"), ("gdpr.authority", "1h"), ("nis2.notification", "1h"),
        ("gdpr.authority", "overdue"), ("nis2.notification", "overdue")]


def test_each_reminder_fires_once_at_its_moment_on_every_channel(wf: BreachWorkflow, repo, clock):
    c = confirmed_case(wf)
    console, slack = Inbox(clock), Inbox(clock)
    d = dispatcher(repo, clock, console=console, slack=slack)
    for _ in range(4 * 24 * 4):  # four days in 15-minute steps
        d.run_due()
        clock.advance(minutes=15)
    fired = [t.astimezone(AMS).isoformat() for t, _ in console.got]
    assert fired == ["2026-03-28T10:00:00+01:00", "2026-03-29T11:00:00+02:00", "2026-03-30T05:00:00+02:00",
                     "2026-03-30T10:00:00+02:00", "2026-03-30T11:00:00+02:00"]
    assert [t for t, _ in slack.got] == [t for t, _ in console.got]
    assert "reminder (48h before): GDPR: notify the supervisory authority due 2026-03-30T11:00:00+02:00 " \
           "(2d 0h 0m left)" in console.got[0][1]
    assert console.got[-1][1].startswith(f"[breach {c.id}] OVERDUE")
    assert len(repo.reminders_sent(c.id)) == 10


def test_a_met_clock_stops_its_reminders(wf: BreachWorkflow, repo, clock):
    c = confirmed_case(wf)
    inbox = Inbox(clock)
    d = dispatcher(repo, clock, console=inbox)
    clock.advance(hours=24)
    assert d.run_due() == 1
    c = wf.assess(c.id, "fenna")
    c, _ = wf.draft(c.id, "fenna")
    c = wf.approve(c.id, "fenna")
    c = wf.submit(c.id, "fenna", channel="AP meldloket", reference="M-1")
    wf.decide_subjects(c.id, "fenna", SubjectsDecisionKind.communicate, "high risk", communicated_at=clock.now(),
                       channel="letter")  # the high risk's own clock (Art. 34(1)) is met too
    clock.advance(hours=60)
    assert d.run_due() == 0 and len(inbox.got) == 1


def test_restart_sends_missed_reminders_once_and_nothing_twice(wf: BreachWorkflow, clock, tmp_path: Path):
    confirmed_case(wf)
    first = Inbox(clock)
    d = dispatcher(wf.repo, clock, console=first)
    clock.advance(hours=49)
    assert d.run_due() == 2  # 48 h and 24 h before
    # the process stops; 30 hours pass; a new process opens the same file
    clock.advance(hours=30)
    repo2 = BreachRepo(tmp_path / "breach.db")
    second = Inbox(clock)
    d2 = dispatcher(repo2, clock, console=second)
    assert d2.run_due() == 3  # 6 h, 1 h and overdue: missed while down, each sent once
    assert d2.run_due() == 0 and dispatcher(BreachRepo(tmp_path / "breach.db"), clock, console=second).run_due() == 0
    assert [r.split(": ")[0].split("] ")[1] for _, r in second.got] == [
        "OVERDUE (the 6h-before reminder, delayed)", "OVERDUE (the 1h-before reminder, delayed)", "OVERDUE"]
    repo2.close()


def test_a_failed_send_is_retried_and_other_channels_are_not_doubled(wf: BreachWorkflow, repo, clock):
    confirmed_case(wf)
    console, slack = Inbox(clock), Inbox(clock, fail=1)
    d = dispatcher(repo, clock, console=console, slack=slack)
    clock.advance(hours=24)
    assert d.run_due() == 1  # console yes, Slack failed
    assert d.run_due() == 1  # Slack retried; console not again
    assert d.run_due() == 0
    assert len(console.got) == len(slack.got) == 1


def test_a_moved_deadline_gets_its_own_reminders(wf: BreachWorkflow, repo, clock):
    c = confirmed_case(wf)
    inbox = Inbox(clock)
    d = dispatcher(repo, clock, console=inbox)
    clock.advance(hours=24)
    d.run_due()
    wf.set_awareness(c.id, "fenna", T0 + timedelta(hours=2), "certainty came only after the call at noon")
    assert d.run_due() == 0  # the new 48 h-before moment (T0+26h) has not come
    clock.advance(hours=2)
    assert d.run_due() == 1 and "due 2026-03-30T13:00:00+02:00" in inbox.got[-1][1]


def test_the_apscheduler_adapter_fires_missed_and_due_reminders_once_across_a_restart(tmp_path: Path):
    now = datetime.now(UTC)
    # a case whose 72-hour deadline is 2 seconds away: its 1-hour reminder was missed while down
    setup = FrozenClock(now - timedelta(hours=72) + timedelta(seconds=2))
    repo = BreachRepo(tmp_path / "breach.db")
    wf = BreachWorkflow(repo, setup, CONFIG)
    c = wf.open_case("alice", title="Stolen laptop")
    c = wf.set_awareness(c.id, "fenna", setup.now(), "theft reported")
    inbox = Inbox()
    d = ReminderDispatcher(repo, SystemClock(), {"console": inbox}, tz=AMS, offsets=(48, 24, 6, 1))
    sched = ReminderScheduler(d, resync_seconds=3600)
    sched.start()
    try:
        deadline = time.monotonic() + 10
        while len(inbox.got) < 5 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        sched.shutdown()
    heads = sorted(text.split(": ")[0].split("] ")[1] for _, text in inbox.got)  # missed ones run in parallel
    assert heads == ["OVERDUE", "reminder (1h before)", "reminder (24h before)", "reminder (48h before)",
                     "reminder (6h before)"]
    repo.close()
    # restart: a new scheduler on the same file plans nothing and sends nothing
    repo2 = BreachRepo(tmp_path / "breach.db")
    inbox2 = Inbox()
    sched2 = ReminderScheduler(ReminderDispatcher(repo2, SystemClock(), {"console": inbox2}, tz=AMS), resync_seconds=1)
    sched2.start()
    try:
        assert sched2.job_ids() == []
        time.sleep(1.5)
    finally:
        sched2.shutdown()
    assert inbox2.got == [] and len(repo2.reminders_sent(c.id)) == 5
    repo2.close()


def test_scheduler_jobs_are_named_case_clock_offset(wf: BreachWorkflow, repo, clock):
    c = confirmed_case(wf)
    sched = ReminderScheduler(dispatcher(repo, clock, console=Inbox(clock)))
    try:
        ids = sched.rebuild()
        assert ids == sorted(f"breach-reminder:{c.id}:gdpr.authority:{o}" for o in ("48h", "24h", "6h", "1h",
                                                                                    "overdue"))
        assert len(sched.scheduler.get_jobs()) == 5
        assert sched.rebuild() == ids and len(sched.scheduler.get_jobs()) == 5  # replaced, never doubled
        c = wf.assess(c.id, "fenna", {"identifiability": "maximum", "consequences": "serious"})
        c, _ = wf.draft(c.id, "fenna", "authority", "nl")
        c = wf.approve(c.id, "fenna")
        c = wf.submit(c.id, "fenna", channel="AP meldloket", reference="M-1")  # the clock is met by its own path
        wf.decide_subjects(c.id, "fenna", SubjectsDecisionKind.communicate, "high risk", communicated_at=clock.now(),
                           channel="letter")
        assert sched.rebuild() == [] and sched.scheduler.get_jobs() == []
    finally:
        sched.shutdown()
