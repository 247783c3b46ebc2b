"""Reminders before every open legal clock, sent once per channel, across restarts.

Three layers:

1. Pure planning (:func:`planned_reminders`, :func:`due_reminders`): for a case and a moment, which
   reminders exist (each offset before each open clock's due time, e.g. 48 h, 24 h, 6 h, 1 h, and
   one when it is overdue) and which are due now and not yet sent. A reminder whose moment had
   passed before its clock was even known (awareness entered late; 48 h before a 24 h clock) is not
   planned; the *overdue* reminder always is.
2. :class:`ReminderDispatcher`: sends one reminder through every channel (``send(text) -> None``
   callables: the console now, the DPO's Slack channel through :func:`slack_sender`). Before each
   send it re-reads the case (the reminder must still be planned: clock still open, due time
   unchanged) and *claims* the reminder in the repository under the unique key (case, clock,
   offset, due time, channel): only one process ever wins a claim. A failed send releases its
   claim so it is tried again; a claim left by a process that died mid-send is released at the
   next start (so that send is at least once, and once in every other case).
3. :class:`ReminderScheduler`: the APScheduler adapter (APScheduler stays at this edge). A
   BackgroundScheduler with one DateTrigger job per planned reminder, id ``case:clock:offset``,
   ``replace_existing=True``, no misfire limit (a reminder missed while the process was down fires
   once at start), rebuilt from the stored cases at start and every ``resync_seconds`` (changes
   made by other processes, e.g. the CLI, are picked up).

:func:`ReminderDispatcher.run_due` does the same without a scheduler (``access-audit breach remind``,
for cron).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from access_audit.breach.clocks import case_clocks, human_delta, local_iso
from access_audit.breach.machine import NEXT_STEP
from access_audit.breach.model import BreachCase, BreachState, CaseNotFoundError
from access_audit.breach.repo import BreachRepo
from access_audit.core.clock import Clock

log = logging.getLogger(__name__)

OVERDUE = "overdue"
SUPPLEMENT = "supplement"
SUPPLEMENT_CLOCK = "gdpr.supplement"
Send = Callable[[str], None]


def offset_key(hours: float) -> str:
    return f"{int(hours)}h" if float(hours).is_integer() else f"{hours:g}h"


@dataclass(frozen=True)
class Reminder:
    case_id: str
    clock_id: str
    offset: str  # "48h" ... or "overdue"
    fire_at: datetime  # UTC
    due: datetime  # UTC
    label: str
    since: datetime | None = None  # supplement reminders: when the elements became outstanding

    @property
    def key(self) -> tuple[str, str, str, datetime]:
        return (self.case_id, self.clock_id, self.offset, self.due)

    @property
    def job_id(self) -> str:
        return f"{self.case_id}:{self.clock_id}:{self.offset}"

    def text(self, case: BreachCase, now: datetime, tz: ZoneInfo) -> str:
        left = (self.due - now).total_seconds()
        title = case.details.title or case.details.summary or ""
        when = f"due {local_iso(self.due, tz)} ({human_delta(left)})"
        if self.offset.startswith(SUPPLEMENT):
            since = local_iso(self.since, tz) if self.since else "?"
            return (f"[breach {case.id}] reminder: {self.label}, outstanding since {since} (GDPR Art. 33(4): "
                    f"without undue further delay). {title[:120]}".rstrip()
                    + " Next step: send a supplement ('breach supplement').")
        if self.offset == OVERDUE:
            head = "OVERDUE"
        elif left <= 0:  # sent after the deadline (the process was down at its moment)
            head = f"OVERDUE (the {self.offset}-before reminder, delayed)"
        else:
            head = f"reminder ({self.offset} before)"
        return (f"[breach {case.id}] {head}: {self.label} {when}. {title[:120]}".rstrip()
                + f" Next step: {NEXT_STEP[case.state]}.")


def supplement_reminders(case: BreachCase, now: datetime, every_hours: float = 24) -> list[Reminder]:
    """Reminders while elements of a phased notification are outstanding (GDPR Art. 33(4): "the
    information may be provided in phases without undue further delay"): one every ``every_hours``
    after the approval, until a supplement supplies them; the latest one due and the next one."""
    items = [o for o in case.outstanding if o.is_open]
    if not items or case.state is BreachState.closed or every_hours <= 0:
        return []
    since = min(o.since for o in items)
    step = timedelta(hours=every_hours)
    n = max(1, int((now - since) / step))
    label = f"supplement the notification: {', '.join(o.key for o in items)} still to follow"
    return [Reminder(case.id, SUPPLEMENT_CLOCK, f"{SUPPLEMENT}#{k}", since + k * step, since + k * step, label, since)
            for k in (n, n + 1)]


def planned_reminders(case: BreachCase, *, offsets: Iterable[float], tz: ZoneInfo, now: datetime,
                      processor_notice_hours: float = 24, supplement_every_hours: float = 24) -> list[Reminder]:
    """Every reminder the case's open clocks call for, past or future, in firing order, and
    those of outstanding supplements (:func:`supplement_reminders`)."""
    if case.state is BreachState.closed:
        return []
    out: list[Reminder] = supplement_reminders(case, now, supplement_every_hours)
    for st in case_clocks(case, now, tz, processor_notice_hours):
        if not st.is_open or st.due is None:
            continue
        since = st.known_since or st.started
        for h in sorted(set(offsets), reverse=True):
            fire = st.due - timedelta(hours=h)
            if h <= 0 or (since is not None and fire < since):
                continue
            out.append(Reminder(case.id, st.rule.id, offset_key(h), fire, st.due, st.rule.label))
        out.append(Reminder(case.id, st.rule.id, OVERDUE, st.due, st.due, st.rule.label))
    out.sort(key=lambda r: (r.fire_at, r.clock_id))
    return out


def due_reminders(cases: Iterable[BreachCase], now: datetime, *, offsets: Iterable[float], tz: ZoneInfo,
                  sent: Callable[[Reminder], bool], processor_notice_hours: float = 24) -> list[Reminder]:
    """The reminders whose moment has come (``fire_at <= now``) and that ``sent`` says are not sent yet."""
    offs = tuple(offsets)
    return [r for c in cases for r in planned_reminders(c, offsets=offs, tz=tz, now=now,
                                                        processor_notice_hours=processor_notice_hours)
            if r.fire_at <= now and not sent(r)]


class ConsoleSender:
    """Prints reminders on a rich console (stderr by default)."""

    def __init__(self, console: Any = None) -> None:
        from rich.console import Console

        self.console = console or Console(stderr=True, highlight=False, soft_wrap=True)

    def __call__(self, text: str) -> None:
        from rich.markup import escape

        self.console.print(f"[bold yellow]{escape(text)}[/]")


class _PostsMessages(Protocol):
    def post_message(self, channel: str, text: str, blocks: Any) -> Any: ...


def slack_sender(notifier: _PostsMessages, channel: str) -> Send:
    """A sender for a notifier with ``post_message(channel, text, blocks)`` (the Slack notifier)."""
    return lambda text: notifier.post_message(channel, text, None)


class ReminderDispatcher:
    """Sends reminders once per channel. ``senders``: channel name -> ``send(text)``.

    :meth:`fire` is called by the scheduler at a reminder's moment, :meth:`run_due` by a periodic
    job or cron. Both are safe to call from several threads and processes at once.
    """

    def __init__(self, repo: BreachRepo, clock: Clock, senders: dict[str, Send], *, tz: ZoneInfo,
                 offsets: Iterable[float] = (48, 24, 6, 1), processor_notice_hours: float = 24) -> None:
        if not senders:
            raise ValueError("at least one reminder channel is needed")
        self.repo = repo
        self.clock = clock
        self.senders = senders
        self.tz = tz
        self.offsets = tuple(offsets)
        self.pnh = processor_notice_hours

    def plan(self, case: BreachCase, now: datetime | None = None) -> list[Reminder]:
        return planned_reminders(case, offsets=self.offsets, tz=self.tz, now=now or self.clock.now(),
                                 processor_notice_hours=self.pnh)

    def all_sent(self, r: Reminder) -> bool:
        return all(self.repo.reminder_sent(r.key, ch) for ch in self.senders)

    def planned(self) -> list[Reminder]:
        """Every reminder of every open case that some channel has not had yet."""
        return [r for c in self.repo.list(open_only=True) for r in self.plan(c) if not self.all_sent(r)]

    def fire(self, key: tuple[str, str, str, datetime]) -> int:
        """Send the reminder ``key`` if it is still called for; return how many channels sent it now."""
        case_id = key[0]
        try:
            case = self.repo.get(case_id)
        except CaseNotFoundError:
            log.warning("reminder %s: case gone", key)
            return 0
        now = self.clock.now()
        match = next((r for r in self.plan(case, now) if r.key == key), None)
        if match is None or match.fire_at > now:
            return 0  # the clock was met, the due time moved, or it is not time yet
        return self._send(case, match, now)

    def _send(self, case: BreachCase, r: Reminder, now: datetime) -> int:
        text = r.text(case, now, self.tz)
        n = 0
        for channel, send in self.senders.items():
            if not self.repo.claim_reminder(r.key, channel, now):
                continue
            try:
                send(text)
            except Exception:
                self.repo.release_reminder(r.key, channel)
                log.exception("reminder %s via %s failed; it will be tried again", r.job_id, channel)
                continue
            self.repo.mark_reminder_sent(r.key, channel, self.clock.now())
            n += 1
        return n

    def run_due(self, now: datetime | None = None) -> int:
        """Send every reminder that is due and not yet sent; return the number of sends."""
        now = now or self.clock.now()
        n = 0
        for case in self.repo.list(open_only=True):
            for r in self.plan(case, now):
                if r.fire_at <= now and not self.all_sent(r):
                    n += self._send(case, r, now)
        return n


class ReminderScheduler:
    """APScheduler adapter: one DateTrigger job per planned reminder, rebuilt from the repository.

    ``start()`` releases claims of sends that died half-way, rebuilds the jobs (missed reminders
    fire at once, once) and starts the background scheduler; ``rebuild()`` may be called after any
    change and runs by itself every ``resync_seconds``; ``shutdown()`` stops it.
    """

    JOB_PREFIX = "breach-reminder:"

    def __init__(self, dispatcher: ReminderDispatcher, *, resync_seconds: float = 60,
                 stale_claim_after: timedelta = timedelta(minutes=10)) -> None:
        from apscheduler.schedulers.background import BackgroundScheduler

        self.dispatcher = dispatcher
        self.resync_seconds = resync_seconds
        self.stale_claim_after = stale_claim_after
        self.scheduler = BackgroundScheduler(timezone=UTC, job_defaults={"coalesce": True, "max_instances": 1,
                                                                           "misfire_grace_time": None})

    def start(self) -> None:
        self.dispatcher.repo.stale_claims(self.dispatcher.clock.now() - self.stale_claim_after)
        self.rebuild()
        self.scheduler.add_job(self.rebuild, "interval", seconds=self.resync_seconds, id="breach-resync",
                               replace_existing=True)
        self.scheduler.resume()

    def rebuild(self) -> list[str]:
        """Make the jobs match the stored cases: add or replace each planned reminder, drop the rest."""
        from apscheduler.triggers.date import DateTrigger

        if not self.scheduler.running:  # jobs go straight into the job store, where replace_existing works
            self.scheduler.start(paused=True)
        wanted: dict[str, Reminder] = {}
        for r in self.dispatcher.planned():
            wanted[self.JOB_PREFIX + r.job_id] = r
        for job in self.scheduler.get_jobs():
            if job.id.startswith(self.JOB_PREFIX) and job.id not in wanted:
                job.remove()
        for job_id, r in wanted.items():
            self.scheduler.add_job(self.dispatcher.fire, DateTrigger(run_date=r.fire_at, timezone=UTC), id=job_id,
                                   args=[r.key], replace_existing=True, misfire_grace_time=None, coalesce=True)
        return sorted(wanted)

    def job_ids(self) -> list[str]:
        return sorted(j.id for j in self.scheduler.get_jobs() if j.id.startswith(self.JOB_PREFIX))

    def shutdown(self, wait: bool = True) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=wait)
