"""Slack: each alert a Block Kit message, routed to channels, grouped, and delivered through the outbox.

What happens to an alert (``emit``):

* ``emit`` only remembers it; ``flush`` writes it to the outbox (``<data_dir>/outbox.db``) in one
  transaction. Nothing reaches Slack before it is on disk; a failing flush aborts the commit.
* Routing picks the channels (``SlackRoute``: by severity, rule, tag or owning team; else the
  default channel). Each channel gets its own message.
* Grouping: one message per dedup key and channel. A counter update of the alert edits that
  message (``chat.update``: count, last seen); a new alert with the same rule and dedup key
  while the message is open and recent is a reply in its thread, and the parent's counts move.
  Passing 10, 100, 1000… events is a thread reply too. Pending edits coalesce: after an outage
  one post carries the final count instead of a post and fifty edits.
* Delivery (``deliver``: from ``flush``, from the background thread of ``start``, and from
  ``close``) sends each channel's rows first in, first out, at most one request per channel per
  ``per_channel_interval_s`` (Slack allows about one message per second per channel). A 429
  waits its Retry-After; 5xx and network errors back off exponentially; nothing is dropped. A
  request that may have reached Slack (timeout, reset, 5xx) marks its row ``unsure``: before
  sending it again the notifier looks for it in the channel (every message carries its outbox id
  in Slack message metadata), so a message is posted once, never twice. The history is read by
  channel id: from an earlier answer, else looked up by name (``conversations.list``; the token
  needs ``channels:read``, and ``groups:read`` for private channels, besides ``chat:write`` and
  ``channels:history``/``groups:history``). Without it an unsure post is sent again.
* Storm: when more than ``storm_threshold`` new messages wait for one channel, they become one
  digest (counts per rule) and the channel holds new posts for ``storm_window_s``; alerts at
  ``storm_keep`` severity or above are still posted one by one. The alerts stay in the store.

Personal data in messages follows ``personal_data``: ``full``; ``pseudonymised`` (user names,
addresses and grouped values replaced by a keyed hash, the evidence query withheld); ``none``.
Every untrusted value is escaped for mrkdwn (``notify.render``). Tokens are never logged.
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import logging
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.error import URLError

import orjson
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from access_audit.core.alerts import Alert, AlertStatus, Severity
from access_audit.core.clock import Clock, SystemClock
from access_audit.core.errors import ConfigError
from access_audit.notify.outbox import Outbox, OutboxRow
from access_audit.notify.render import code, mrkdwn, render_json

if TYPE_CHECKING:
    from slack_sdk import WebClient

    from access_audit.settings import Settings

log = logging.getLogger(__name__)

SINK = "slack"
EVENT_TYPE = "access_audit_outbox"
DIGEST_RULES, DIGEST_ALERTS_PER_RULE = 10, 5  # a digest stays within Slack's 50 blocks and 3,000 chars a section
POSTS = ("post", "reply", "message", "digest")  # ops that create a message (an unsure one is looked up first)
TERMINAL = (AlertStatus.resolved.value, AlertStatus.false_positive.value)
TRANSIENT = {"internal_error", "fatal_error", "service_unavailable", "request_timeout", "ratelimited"}
AUTH = {"not_authed", "invalid_auth", "account_inactive", "token_revoked", "token_expired", "no_permission",
        "missing_scope"}

SCHEMA = """
CREATE TABLE IF NOT EXISTS slack_messages (
  id TEXT PRIMARY KEY,
  group_key TEXT NOT NULL,
  channel TEXT NOT NULL,
  channel_id TEXT,
  ts TEXT,
  state TEXT NOT NULL,
  doc TEXT NOT NULL,
  counts TEXT NOT NULL,
  first_seen TEXT NOT NULL,
  last_seen TEXT NOT NULL,
  status TEXT NOT NULL,
  history TEXT NOT NULL,
  created_at REAL NOT NULL,
  updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS slack_messages_group ON slack_messages (group_key, updated_at);
CREATE TABLE IF NOT EXISTS slack_alert_messages (
  alert_id TEXT NOT NULL, channel TEXT NOT NULL, message_id TEXT NOT NULL,
  PRIMARY KEY (alert_id, channel)
);
"""

_EMOJI = {"critical": ":rotating_light:", "high": ":red_circle:", "medium": ":large_orange_circle:",
          "low": ":large_yellow_circle:", "info": ":white_circle:"}
STATUS_LABEL = {"open": "Open", "acknowledged": "Acknowledged", "escalated": "Escalated to a breach case",
                "false_positive": "False positive", "resolved": "Resolved"}


@dataclass(frozen=True)
class Action:
    id: str
    label: str
    done: str  # the history line's verb
    status: AlertStatus
    allowed_from: tuple[AlertStatus, ...]
    style: str | None = None
    confirm: bool = False


ACTIONS: dict[str, Action] = {a.id: a for a in (
    Action("acknowledge", "Acknowledge", "Acknowledged", AlertStatus.acknowledged, (AlertStatus.open,)),
    Action("escalate", "Escalate to breach case", "Escalated to a breach case", AlertStatus.escalated,
           (AlertStatus.open, AlertStatus.acknowledged), style="danger", confirm=True),
    Action("false_positive", "False positive", "Marked as false positive", AlertStatus.false_positive,
           (AlertStatus.open, AlertStatus.acknowledged)),
    Action("resolve", "Resolve", "Resolved", AlertStatus.resolved,
           (AlertStatus.open, AlertStatus.acknowledged, AlertStatus.escalated), style="primary"),
)}
_SLACK_USER = re.compile(r"[UW][A-Z0-9]{2,20}")
_CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]{6,}")


def read_secret(value: SecretStr | None, file: Path | None) -> str | None:
    """A secret from its setting, else from a secrets file (``*_FILE``), else None."""
    if value is not None and value.get_secret_value():
        return value.get_secret_value()
    if file is not None:
        try:
            return file.read_text(encoding="utf-8").strip() or None
        except OSError as e:
            raise ConfigError(f"cannot read the secrets file {file}: {e.strerror}") from None
    return None


# --- routing --------------------------------------------------------------------------------


def _as_list(v: Any) -> Any:
    return [v] if isinstance(v, str) else v


class SlackRoute(BaseModel):
    """One routing rule: every given condition must hold; ``continue`` also tries the next rules.

    ``severity`` (list), ``min_severity``, ``rule`` and ``tag`` (glob patterns: ``aws_*``) and
    ``team`` (the alert's ``context["team"]`` or a ``team:<name>`` tag).
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    channel: str
    severity: list[Severity] | None = None
    min_severity: Severity | None = None
    rule: list[str] | None = None
    tag: list[str] | None = None
    team: list[str] | None = None
    continue_: bool = Field(default=False, alias="continue")

    _lists = field_validator("severity", "rule", "tag", "team", mode="before")(_as_list)

    def matches(self, alert: Alert) -> bool:
        if self.severity is not None and alert.severity not in self.severity:
            return False
        if self.min_severity is not None and alert.severity.rank < self.min_severity.rank:
            return False
        if self.rule is not None and not any(fnmatch.fnmatchcase(alert.rule_id, p) for p in self.rule):
            return False
        if self.tag is not None and not any(fnmatch.fnmatchcase(t, p) for t in alert.tags for p in self.tag):
            return False
        return self.team is None or team_of(alert) in self.team


def team_of(alert: Alert) -> str | None:
    """The owning team: ``context["team"]`` (set by enrichment) or a ``team:<name>`` tag of the rule."""
    team = alert.context.get("team")
    if isinstance(team, str):
        return team
    return next((t.split(":", 1)[1] for t in alert.tags if t.startswith("team:")), None)


def parse_routes(routes: list[dict[str, Any]]) -> tuple[SlackRoute, ...]:
    """Validate every route; raise ConfigError listing all problems (not only the first)."""
    out, problems = [], []
    for i, r in enumerate(routes):
        try:
            out.append(SlackRoute.model_validate(r))
        except ValidationError as e:
            problems += [f"slack_routes[{i}].{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors()]
    if problems:
        raise ConfigError("invalid Slack routes:\n  " + "\n  ".join(problems))
    return tuple(out)


@dataclass(frozen=True)
class SlackConfig:
    channel: str = "#security-alerts"
    routes: tuple[SlackRoute, ...] = ()
    dpo_channel: str = "#dpo"
    personal_data: Literal["full", "pseudonymised", "none"] = "full"
    min_severity: Severity = Severity.low
    storm_threshold: int = 20
    storm_window_s: float = 300.0
    storm_release_max: int = 3  # at most this many held posts are released one by one when a storm ends
    storm_keep: Severity | None = Severity.critical  # never summarised into a digest
    regroup_window_s: float = 24 * 3600.0
    per_channel_interval_s: float = 1.0
    max_backoff_s: float = 120.0
    timeout_s: float = 10.0
    drain_s: float = 15.0  # how long close() keeps delivering; the rest waits in the outbox
    deliver_on_flush: bool = True  # when no background thread runs
    pseudonym_key: bytes | None = field(default=None, repr=False)  # default: a random key kept in the outbox

    def channels_for(self, alert: Alert) -> list[str]:
        out: list[str] = []
        for r in self.routes:
            if r.matches(alert):
                if r.channel not in out:
                    out.append(r.channel)
                if not r.continue_:
                    break
        return out or [self.channel]

    @classmethod
    def from_settings(cls, settings: Settings) -> SlackConfig:
        return cls(channel=settings.slack_channel, routes=parse_routes(settings.slack_routes),
                   dpo_channel=settings.slack_dpo_channel, personal_data=settings.slack_personal_data,
                   min_severity=Severity(settings.slack_min_severity), storm_threshold=settings.slack_storm_threshold)


def make_client(token: str, base_url: str = "https://slack.com/api/", *, timeout_s: float = 10.0) -> WebClient:
    """A WebClient without its own retries (the outbox owns them) and with its own logger name."""
    from slack_sdk import WebClient

    return WebClient(token=token, base_url=base_url.rstrip("/") + "/", timeout=timeout_s,  # type: ignore[arg-type]
                     retry_handlers=[], logger=logging.getLogger("access_audit.notify.slack.client"))


@dataclass
class Message:
    """A Slack message for one group (rule + dedup key + channel) and what it shows."""

    id: str
    group_key: str
    channel: str
    channel_id: str | None
    ts: str | None
    state: str  # pending | posted | digested | failed
    doc: dict[str, Any]
    counts: dict[str, int]
    first_seen: str
    last_seen: str
    status: str
    history: list[dict[str, Any]]
    created_at: float
    updated_at: float

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass
class ActionOutcome:
    """What ``apply_action`` did: ``changed`` is False for a repeat (a double click) or a transition
    that is not allowed from the current status."""

    changed: bool
    message_id: str
    status: str
    alert_ids: list[str]
    entry: dict[str, Any] | None = None
    reason: str = ""


@dataclass(eq=False)
class _Failure(Exception):
    kind: Literal["rate", "transient", "auth", "permanent"]
    error: str
    retry_after: float = 0.0
    unsure: bool = False


@dataclass
class DeliveryStats:
    sent: int = 0
    retries: int = 0
    failed: int = 0
    reconciled: int = 0
    digests: int = 0
    by_channel: dict[str, int] = field(default_factory=dict)


class SlackNotifier:
    """AlertSink to Slack through the outbox, plus ``post_message`` for the breach workflow."""

    def __init__(self, client: Any, outbox: Outbox, config: SlackConfig | None = None, *,
                 clock: Clock | None = None, sleep: Callable[[float], None] | None = None,
                 own_outbox: bool = False) -> None:
        self.client = client
        self.outbox = outbox
        self.config = config or SlackConfig()
        self.clock = clock or SystemClock()
        self._sleep = sleep or time.sleep
        self._own_outbox = own_outbox
        with outbox._lock:
            outbox.db.executescript(SCHEMA)
        self._buffer: dict[str, Alert] = {}
        self._buffer_lock = threading.Lock()
        self._deliver_lock = threading.Lock()
        self._next_allowed: dict[str, float] = {}
        self._storm_until: dict[str, float] = {}
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.stats = DeliveryStats()
        key = self.config.pseudonym_key
        if key is None:
            stored = outbox.get("slack.pseudonym_key")
            if stored is None:
                stored = secrets.token_hex(32)
                outbox.put("slack.pseudonym_key", stored)
            key = bytes.fromhex(stored)
        self._pkey = key

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Clock | None = None) -> SlackNotifier:
        """The notifier the settings describe; raises ConfigError without a token."""
        token = read_secret(settings.slack_token, settings.slack_token_file)
        if not token:
            raise ConfigError("Slack needs ACCESS_AUDIT_SLACK_TOKEN (or ACCESS_AUDIT_SLACK_TOKEN_FILE)")
        config = SlackConfig.from_settings(settings)
        client = make_client(token, settings.slack_base_url, timeout_s=config.timeout_s)
        return cls(client, Outbox(settings.outbox_path), config, clock=clock, own_outbox=True)

    def _now(self) -> float:
        return self.clock.now().timestamp()

    # --- AlertSink ------------------------------------------------------------------------

    def emit(self, alert: Alert, new: bool) -> None:
        """Remember the alert (a snapshot); ``flush`` writes it to the outbox."""
        if alert.severity.rank < self.config.min_severity.rank:
            return
        with self._buffer_lock:
            # Counter updates are cumulative: only the latest snapshot of an alert matters. Whether
            # it is new follows from the outbox (an alert already linked to a message is an update),
            # which also makes a replayed batch edit the message instead of posting it again.
            self._buffer[alert.id] = alert.model_copy(deep=True)

    def flush(self) -> None:
        """Write the emitted alerts to the outbox (durable when this returns; raises NotifyError if
        the outbox cannot be written). Then, without a background thread, send what is due now;
        delivery problems never raise here (the rows wait in the outbox)."""
        with self._buffer_lock:
            items = list(self._buffer.values())
            self._buffer.clear()
        if items:
            now = self._now()
            with self.outbox.transaction():
                for alert in items:
                    self._record(alert, now)
        if self.config.deliver_on_flush and self._thread is None:
            try:
                self.deliver()
            except Exception:
                log.exception("slack delivery failed; the messages stay in the outbox")

    def close(self) -> None:
        """Flush, stop the background thread, keep delivering for up to ``drain_s``; whatever is
        left stays in the outbox for the next run."""
        self.flush()
        self.stop()
        try:
            done = self.drain(self.config.drain_s)
            if not done:
                left = sum(n for s, n in self.outbox.counts(SINK).items() if s in ("pending", "sending"))
                log.warning("%d Slack message(s) still in the outbox %s; the next run sends them",
                            left, self.outbox.path)
        finally:
            if self._own_outbox:
                self.outbox.close()

    # --- recording (inside the flush transaction) -------------------------------------------

    def _record(self, alert: Alert, now: float) -> None:
        for channel in self.config.channels_for(alert):
            mid = self._message_of(alert.id, channel)
            if mid is not None:
                m = self.message(mid)
                if m is not None:
                    self._fold(m, alert, now)
                continue
            group_key = _hash(channel, alert.rule_id, alert.dedup_key)
            g = self._open_group(group_key, now)
            if g is not None:
                self._link(alert.id, channel, g.id)
                self._fold(g, alert, now, again=True)
            else:
                self._new_message(alert, channel, group_key, now)

    def _message_of(self, alert_id: str, channel: str) -> str | None:
        r = self.outbox.db.execute("SELECT message_id FROM slack_alert_messages WHERE alert_id=? AND channel=?",
                                   (alert_id, channel)).fetchone()
        return r[0] if r else None

    def _link(self, alert_id: str, channel: str, message_id: str) -> None:
        self.outbox.db.execute("INSERT OR IGNORE INTO slack_alert_messages (alert_id, channel, message_id)"
                               " VALUES (?,?,?)", (alert_id, channel, message_id))

    def _open_group(self, group_key: str, now: float) -> Message | None:
        r = self.outbox.db.execute(
            "SELECT id FROM slack_messages WHERE group_key=? AND state IN ('pending','posted') AND status NOT IN"
            " (?,?) AND updated_at >= ? ORDER BY updated_at DESC LIMIT 1",
            (group_key, *TERMINAL, now - self.config.regroup_window_s)).fetchone()
        return self.message(r[0]) if r else None

    def _new_message(self, alert: Alert, channel: str, group_key: str, now: float) -> None:
        mid = _hash(group_key, alert.id)
        doc = alert.to_doc()
        m = Message(mid, group_key, channel, None, None, "pending", doc, {alert.id: alert.count},
                    doc["first_seen"], doc["last_seen"], AlertStatus.open.value, [], now, now)
        self._save(m, insert=True)
        self._link(alert.id, channel, mid)
        keep = self.config.storm_keep is not None and alert.severity.rank >= self.config.storm_keep.rank
        self.outbox.enqueue(SINK, f"{mid}:post", channel, "post", now=now, ref=mid,
                            meta={"severity": alert.severity.value, "rule_id": alert.rule_id, "keep": keep})

    def _fold(self, m: Message, alert: Alert, now: float, *, again: bool = False) -> None:
        before = m.total
        doc = alert.to_doc()
        m.counts[alert.id] = max(m.counts.get(alert.id, 0), alert.count)
        if alert.id == m.doc["id"]:
            m.doc = doc
        m.first_seen = min(m.first_seen, doc["first_seen"], key=_ts)
        m.last_seen = max(m.last_seen, doc["last_seen"], key=_ts)
        m.updated_at = now
        self._save(m)
        if m.state not in ("pending", "posted"):
            return  # summarised in a digest, or its post failed: the store has the counts
        if again:
            self._reply(m, f"{m.id}:again:{alert.id}", now, kind="again", count=alert.count,
                        first_seen=_fmt(doc["first_seen"]), last_seen=_fmt(doc["last_seen"]), alert_id=alert.id)
        else:
            milestone = max((n for n in (10, 100, 1000, 10_000, 100_000) if before < n <= m.total), default=None)
            if milestone is not None and self._posted_or_sending(m):
                self._reply(m, f"{m.id}:milestone:{milestone}", now, kind="milestone", count=m.total,
                            last_seen=_fmt(m.last_seen))
        self._ensure_update(m, now)

    def _posted_or_sending(self, m: Message) -> bool:
        post = self.outbox.row(f"{m.id}:post")
        return m.state == "posted" or (post is not None and post.state == "sending")

    def _ensure_update(self, m: Message, now: float) -> None:
        """One pending edit per message: the edit renders the message's state when it is sent."""
        if not self._posted_or_sending(m):
            return  # the post itself is still waiting and will show the latest state
        if any(r.state == "pending" for r in self.outbox.open_rows(SINK, op="update", ref=m.id)):
            return
        self.outbox.enqueue(SINK, f"{m.id}:update:{uuid.uuid4().hex[:12]}", m.channel, "update", now=now, ref=m.id)

    def _reply(self, m: Message, id: str, now: float, **r: Any) -> None:
        payload = render_json("slack/reply.json.j2", r=r)
        self.outbox.enqueue(SINK, id, m.channel, "reply", now=now, ref=m.id, payload=payload)

    def _save(self, m: Message, *, insert: bool = False) -> None:
        vals = (m.group_key, m.channel, m.channel_id, m.ts, m.state, orjson.dumps(m.doc).decode(),
                orjson.dumps(m.counts).decode(), m.first_seen, m.last_seen, m.status,
                orjson.dumps(m.history).decode(), m.created_at, m.updated_at, m.id)
        if insert:
            self.outbox.db.execute(
                "INSERT INTO slack_messages (group_key, channel, channel_id, ts, state, doc, counts, first_seen,"
                " last_seen, status, history, created_at, updated_at, id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", vals)
        else:
            self.outbox.db.execute(
                "UPDATE slack_messages SET group_key=?, channel=?, channel_id=?, ts=?, state=?, doc=?, counts=?,"
                " first_seen=?, last_seen=?, status=?, history=?, created_at=?, updated_at=? WHERE id=?", vals)

    def message(self, message_id: str) -> Message | None:
        """The state of one Slack message (None if unknown)."""
        with self.outbox._lock:
            r = self.outbox.db.execute(
                "SELECT id, group_key, channel, channel_id, ts, state, doc, counts, first_seen, last_seen, status,"
                " history, created_at, updated_at FROM slack_messages WHERE id=?", (message_id,)).fetchone()
        if r is None:
            return None
        return Message(r[0], r[1], r[2], r[3], r[4], r[5], orjson.loads(r[6]), orjson.loads(r[7]), r[8], r[9],
                       r[10], orjson.loads(r[11]), r[12], r[13])

    def messages_for_alert(self, alert_id: str) -> list[Message]:
        with self.outbox._lock:
            ids = [r[0] for r in self.outbox.db.execute(
                "SELECT message_id FROM slack_alert_messages WHERE alert_id=?", (alert_id,))]
        return [m for m in map(self.message, ids) if m is not None]

    # --- lifecycle (from the interactive endpoint) -----------------------------------------

    def apply_action(self, message_id: str, action: str, *, by: str, by_name: str | None = None,
                     case_id: str | None = None) -> ActionOutcome:
        """Record ``action`` on a message's alerts: new status, who and when in its history, an edit
        of the original message and a line in its thread. Idempotent: a repeat changes nothing.

        Raises KeyError for an unknown message or action.
        """
        act = ACTIONS[action]
        now = self._now()
        with self.outbox.transaction():
            m = self.message(message_id)
            if m is None:
                raise KeyError(message_id)
            if AlertStatus(m.status) not in act.allowed_from:
                return ActionOutcome(False, m.id, m.status, list(m.counts),
                                     reason=f"already {STATUS_LABEL[m.status].lower()}")
            at = self.clock.now().isoformat()
            entry = {"action": act.id, "status": act.status.value, "by": by, "by_name": by_name, "at": at,
                     **({"case_id": case_id} if case_id else {})}
            m.status = act.status.value
            m.history.append(entry)
            m.updated_at = now
            self._save(m)
            if m.state in ("pending", "posted"):
                self._reply(m, f"{m.id}:action:{act.id}", now, kind="action", action_label=act.done,
                            by=_who(by, by_name), at=_fmt(at), case_id=case_id)
                self._ensure_update(m, now)
        return ActionOutcome(True, m.id, m.status, list(m.counts), entry)

    # --- messages for the breach workflow ----------------------------------------------------

    def post_message(self, channel: str | None, text: str, blocks: list[dict[str, Any]] | None = None, *,
                     key: str | None = None, thread_key: str | None = None, trusted: bool = False) -> str:
        """Queue a message (reminders, case updates) through the outbox; returns its key.

        ``text`` is plain text (a reminder naming a case title typed by anyone) and is escaped for
        mrkdwn here: no mentions, links or formatting get through. ``trusted=True`` sends it as
        mrkdwn as given (the caller escaped the untrusted parts with ``notify.render.mrkdwn``);
        ``blocks`` are always the caller's. ``channel`` None means the DPO channel. ``key`` makes the
        call idempotent (the same key is posted once); ``thread_key`` replies in the thread of an
        earlier message posted with that key. Durable when this returns.
        """
        if not trusted:
            text = mrkdwn(text, 3000)
        channel = channel or self.config.dpo_channel
        now = self._now()
        key = key or uuid.uuid4().hex
        self.outbox.enqueue(SINK, f"msg:{key}", channel, "message", now=now, ref=None,
                            payload={"text": text, "blocks": blocks,
                                     "thread": f"msg:{thread_key}" if thread_key else None}, meta={"keep": True})
        return key

    def message_ts(self, key: str) -> str | None:
        """The Slack ts of a message posted with ``post_message(key=...)`` once it was sent."""
        row = self.outbox.row(f"msg:{key}")
        return row.result["ts"] if row and row.state == "sent" and row.result else None

    # --- delivery -----------------------------------------------------------------------------

    def start(self) -> None:
        """Deliver from a background thread until ``stop``/``close``."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self.run_delivery, args=(self._stop,), name="slack-delivery",
                                            daemon=True)
            self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join(timeout=self.config.timeout_s + 5)
            self._thread = None

    def run_delivery(self, stop: threading.Event) -> None:
        """Deliver until ``stop`` is set, waking when the next row is due (at most every second)."""
        while not stop.is_set():
            try:
                self.deliver()
                nd = self.next_due()
            except Exception:
                log.exception("slack delivery loop")
                nd = None
            wait = 1.0 if nd is None else min(1.0, max(0.05, nd - self._now()))
            stop.wait(wait)

    def drain(self, budget_s: float) -> bool:
        """Deliver until the outbox is empty or ``budget_s`` (clock time) is over; True when empty."""
        deadline = self._now() + budget_s
        while True:
            progressed = self.deliver()
            nd = self.next_due()
            if nd is None:
                return True
            now = self._now()
            if nd > deadline or now >= deadline:
                return False
            self._sleep(max(nd - now, 0.0 if progressed else 0.01))

    def pending(self) -> int:
        return sum(n for s, n in self.outbox.counts(SINK).items() if s in ("pending", "sending"))

    def next_due(self) -> float | None:
        """When the next row can be sent (clock seconds), or None when nothing waits."""
        times = []
        for ch in self.outbox.channels(SINK):
            row = self._head(ch)
            if row is not None:
                times.append(max(row.next_attempt_at, self._next_allowed.get(ch, 0.0)))
            if ch in self._storm_until:
                times.append(self._storm_until[ch])
        return min(times) if times else None

    def deliver(self) -> int:
        """Send, for each channel, its next row if it is due. Never sleeps, never raises for a
        delivery problem (the row is retried later or marked failed). Returns requests that worked."""
        if not self._deliver_lock.acquire(blocking=False):
            return 0
        try:
            self._storms()
            done = 0
            for ch in self.outbox.channels(SINK):
                now = self._now()
                if self._next_allowed.get(ch, 0.0) > now:
                    continue
                row = self._head(ch)
                if row is None or row.next_attempt_at > now:
                    continue
                done += self._send(row)
            return done
        finally:
            self._deliver_lock.release()

    def _head(self, channel: str) -> OutboxRow | None:
        """The channel's oldest row that can go now: not held by a storm, its parent posted."""
        storm = self._storm_until.get(channel, 0.0) > self._now()
        for row in self.outbox.open_rows(SINK, channel):
            if row.op == "post":
                if storm and not row.meta.get("keep") and not row.unsure:
                    continue
                return row
            if row.op in ("update", "reply"):
                m = self.message(row.ref or "")
                if m is None or m.state == "failed":
                    self.outbox.fail(row.id, error="its message was never posted")
                    continue
                if m.state == "digested":
                    self.outbox.set_state([row.id], "digested")
                    continue
                if m.ts is None:
                    continue  # waits for its parent
                return row
            if row.op == "message" and row.payload.get("thread"):
                parent = self.outbox.row(row.payload["thread"])
                if parent is not None and parent.state in ("pending", "sending"):
                    continue
            return row
        return None

    def _send(self, row: OutboxRow) -> int:
        ch = row.channel
        now = self._now()
        self.outbox.claim(row.id)
        self._next_allowed[ch] = now + self.config.per_channel_interval_s
        try:
            method, kwargs = self._request(row)
        except Exception as e:  # a template or data bug: retrying would not help
            log.error("slack: cannot render %s (%s): %s", row.id, row.op, e)
            self.outbox.fail(row.id, error=f"render: {e}")
            self.stats.failed += 1
            return 0
        try:
            if row.unsure and row.op in POSTS:
                found = self._find_posted(row, kwargs)
                if found is not None:
                    self.stats.reconciled += 1
                    log.info("slack: %s was already posted (ts %s); not sending it again", row.id, found["ts"])
                    self._sent(row, found, now, reconciled=True)
                    return 1
            resp = self._call(method, kwargs)
        except _Failure as f:
            self._failed(row, f, now)
            return 0
        self._sent(row, {"ts": resp.get("ts"), "channel": resp.get("channel")}, now)
        return 1

    def _request(self, row: OutboxRow) -> tuple[str, dict[str, Any]]:
        meta = {"event_type": EVENT_TYPE, "event_payload": {"outbox_id": row.id}}
        common: dict[str, Any] = {"unfurl_links": False, "unfurl_media": False, "metadata": meta}
        if row.op in ("post", "update"):
            m = self.message(row.ref or "")
            assert m is not None
            body = self.render_message(m)
            if row.op == "post":
                return "chat_postMessage", {"channel": m.channel, **body, **common}
            return "chat_update", {"channel": m.channel_id, "ts": m.ts, **body}
        if row.op == "reply":
            m = self.message(row.ref or "")
            assert m is not None
            return "chat_postMessage", {"channel": m.channel_id or m.channel, "thread_ts": m.ts, **row.payload,
                                        **common}
        p = dict(row.payload)
        channel = row.channel
        thread = p.pop("thread", None)
        if thread:
            parent = self.outbox.row(thread)
            if parent is not None and parent.state == "sent" and parent.result:
                p["thread_ts"] = parent.result["ts"]
                channel = parent.result.get("channel") or channel
        if p.get("blocks") is None:
            p.pop("blocks", None)
        return "chat_postMessage", {"channel": channel, **p, **common}

    def _call(self, method: str, kwargs: dict[str, Any]) -> Any:
        from slack_sdk.errors import SlackApiError

        try:
            return getattr(self.client, method)(**kwargs)
        except SlackApiError as e:
            resp = e.response
            status = getattr(resp, "status_code", 0) or 0
            code = str(resp.get("error", "") if hasattr(resp, "get") else "")[:200]
            if status == 429 or code == "ratelimited":
                raise _Failure("rate", f"429 {code}".strip(), retry_after=_retry_after(resp.headers)) from None
            if status >= 500 or code in TRANSIENT:
                raise _Failure("transient", f"HTTP {status} {code}".strip(), unsure=True) from None
            if code in AUTH:
                raise _Failure("auth", code) from None
            raise _Failure("permanent", code or f"HTTP {status}") from None
        except (URLError, OSError, TimeoutError) as e:
            reason = getattr(e, "reason", e)
            refused = isinstance(reason, ConnectionRefusedError)
            raise _Failure("transient", f"network: {type(reason).__name__}", unsure=not refused) from None
        except Exception as e:  # http.client errors (RemoteDisconnected, IncompleteRead...)
            raise _Failure("transient", f"network: {type(e).__name__}", unsure=True) from None

    def _find_posted(self, row: OutboxRow, kwargs: dict[str, Any]) -> dict[str, Any] | None:
        """Look for a message carrying this row's id in its metadata (an earlier attempt that did
        arrive). None when not found or when the channel cannot be read (then it is sent again)."""
        channel = self._channel_id(kwargs["channel"])
        if not channel:
            log.warning("slack: cannot check whether %s was posted (channel id of %s unknown); sending it",
                        row.id, row.channel)
            return None
        if kwargs.get("thread_ts"):
            args = {"channel": channel, "ts": kwargs["thread_ts"], "include_all_metadata": True, "limit": 200}
            method = "conversations_replies"
        else:
            args = {"channel": channel, "oldest": f"{row.created_at - 60:.6f}", "include_all_metadata": True,
                    "limit": 200}
            method = "conversations_history"
        try:
            resp = self._call(method, args)
        except _Failure as f:
            if f.kind in ("rate", "transient"):
                raise
            log.warning("slack: cannot check whether %s was posted (%s); sending it", row.id, f.error)
            return None
        for msg in resp.get("messages") or []:
            md = msg.get("metadata") or {}
            if md.get("event_type") == EVENT_TYPE and (md.get("event_payload") or {}).get("outbox_id") == row.id:
                return {"ts": msg["ts"], "channel": channel}
        return None

    def _channel_id(self, channel: str) -> str | None:
        """The id of a channel given by id or name: kept in the outbox once known (from a post's
        answer or an earlier look-up), else looked up by name (``conversations.list``, public then
        also private channels as the token's scopes allow). None when Slack does not list it.
        Rate limits and transient failures raise (the row waits and asks again)."""
        if _CHANNEL_ID.fullmatch(channel or ""):
            return channel
        known = self.outbox.get(f"slack.channel_id:{channel}")
        if known:
            return known
        name = channel.lstrip("#")
        for types in ("public_channel,private_channel", "public_channel"):
            cursor: str | None = None
            try:
                for _ in range(100):  # 100 pages of 200: a workspace of 20,000 channels
                    args: dict[str, Any] = {"types": types, "exclude_archived": True, "limit": 200}
                    if cursor:
                        args["cursor"] = cursor
                    resp = self._call("conversations_list", args)
                    for c in resp.get("channels") or []:
                        if c.get("name") == name and _CHANNEL_ID.fullmatch(c.get("id") or ""):
                            self.outbox.put(f"slack.channel_id:{channel}", c["id"])
                            return str(c["id"])
                    cursor = (resp.get("response_metadata") or {}).get("next_cursor") or None
                    if not cursor:
                        break
                return None
            except _Failure as f:
                if f.kind in ("rate", "transient"):
                    raise
                log.warning("slack: cannot look up the channel %s (conversations.list, types %s: %s)",
                            channel, types, f.error)
        return None

    def _sent(self, row: OutboxRow, result: dict[str, Any], now: float, *, reconciled: bool = False) -> None:
        with self.outbox.transaction():
            self.outbox.mark_sent(row.id, now=now, result=result if row.op in POSTS else None)
            self.stats.sent += 1
            self.stats.by_channel[row.channel] = self.stats.by_channel.get(row.channel, 0) + 1
            if result.get("channel") and not _CHANNEL_ID.fullmatch(row.channel):
                self.outbox.put(f"slack.channel_id:{row.channel}", result["channel"])
            if row.op == "post":
                m = self.message(row.ref or "")
                if m is not None:
                    m.ts, m.channel_id, m.state = result["ts"], result.get("channel") or m.channel, "posted"
                    self._save(m)
                    if reconciled:  # the found message may show an older state
                        self._ensure_update(m, now)

    def _failed(self, row: OutboxRow, f: _Failure, now: float) -> None:
        attempts = row.attempts + 1
        if f.kind == "permanent":
            log.error("slack: %s to %s refused: %s (kept in the outbox as failed)", row.op, row.channel, f.error)
            with self.outbox.transaction():
                self.outbox.fail(row.id, error=f.error)
                if row.op == "post" and row.ref:
                    m = self.message(row.ref)
                    if m is not None:
                        m.state = "failed"
                        self._save(m)
            self.stats.failed += 1
            return
        if f.kind == "rate":
            at = now + max(f.retry_after, self.config.per_channel_interval_s)
            self._next_allowed[row.channel] = at
        else:
            at = now + min(self.config.max_backoff_s, 2.0 ** min(attempts - 1, 30))
        (log.error if f.kind == "auth" else log.warning)(
            "slack: %s to %s: %s; attempt %d, next in %.0fs", row.op, row.channel, f.error, attempts, at - now)
        self.outbox.retry(row.id, at=at, error=f.error, unsure=f.unsure and row.op in POSTS)
        self.stats.retries += 1

    # --- storms -----------------------------------------------------------------------------

    def _storms(self) -> None:
        now = self._now()
        for ch in self.outbox.channels(SINK):
            until = self._storm_until.get(ch)
            if until is not None and now < until:
                continue
            posts = [r for r in self.outbox.open_rows(SINK, ch, op="post")
                     if r.state == "pending" and not r.meta.get("keep") and not r.unsure]
            if until is not None:
                del self._storm_until[ch]
                if len(posts) > self.config.storm_release_max:
                    self._digest(ch, posts, now)
                    if len(posts) > self.config.storm_threshold:
                        self._storm_until[ch] = now + self.config.storm_window_s
            elif len(posts) > self.config.storm_threshold:
                self._digest(ch, posts, now)
                self._storm_until[ch] = now + self.config.storm_window_s

    def _digest(self, channel: str, posts: list[OutboxRow], now: float) -> None:
        with self.outbox.transaction():
            msgs = [m for m in (self.message(p.ref or "") for p in posts) if m is not None]
            rules: dict[str, dict[str, Any]] = {}
            for m in msgs:
                r = rules.setdefault(m.doc["rule_id"], {"alerts": 0, "events": 0, "severity": Severity.info})
                r["alerts"] += len(m.counts)
                r["events"] += m.total
                sev = Severity(m.doc["severity"])
                if sev.rank > r["severity"].rank:
                    r["severity"] = sev
            ordered = sorted(rules.items(), key=lambda kv: (-kv[1]["severity"].rank, -kv[1]["alerts"], kv[0]))
            lines = [{"line": f"{code(rid)}: {v['alerts']} alert(s), {v['events']} event(s), highest "
                              f"{v['severity'].value.upper()}"} for rid, v in ordered[:15]]
            # The alerts themselves, per rule (most severe, then most events, first): what the team
            # acts on. Titles and queries go through the channel's personal-data view, as in a post.
            per_rule: dict[str, list[Message]] = {}
            for m in msgs:
                per_rule.setdefault(m.doc["rule_id"], []).append(m)
            listed = []
            for rid, _v in ordered[:DIGEST_RULES]:
                ms = sorted(per_rule[rid], key=lambda m: (-Severity(m.doc["severity"]).rank, -m.total, m.id))
                rows = []
                for m in ms[:DIGEST_ALERTS_PER_RULE]:
                    v = self.view(m)
                    row = (f"• {v['severity_label']} · {mrkdwn(v['title'], 150)} · {m.total} event(s) · "
                           f"last {v['last_seen']}")
                    rows.append(row + (f"\n   {code(v['query'], 200)}" if v["query"] else ""))
                if len(ms) > DIGEST_ALERTS_PER_RULE:
                    rows.append(f"   … and {len(ms) - DIGEST_ALERTS_PER_RULE} more: "
                                f"{code('access-audit alerts list --rule ' + rid)}")
                listed.append({"rule": code(rid), "text": "\n".join(rows)})
            keep = self.config.storm_keep
            d = {"total": sum(len(m.counts) for m in msgs), "rules": lines, "more": max(0, len(ordered) - 15),
                 "listed": listed,
                 "since": _fmt(min((m.first_seen for m in msgs), key=_ts)),
                 "until": _fmt(max((m.last_seen for m in msgs), key=_ts)),
                 "keep_note": f"{keep.value.upper()} alerts are still posted one by one." if keep else ""}
            payload = render_json("slack/digest.json.j2", d=d)
            self.outbox.set_state([p.id for p in posts], "digested")
            ids = {m.id for m in msgs}
            for m in msgs:
                m.state = "digested"
                self._save(m)
            self.outbox.set_state([r.id for r in self.outbox.open_rows(SINK, channel)
                                   if r.ref in ids and r.state == "pending"], "digested")
            self.outbox.enqueue(SINK, f"digest:{channel}:{posts[0].seq}-{posts[-1].seq}", channel, "digest",
                                now=now, payload=payload, meta={"keep": True})
        self.stats.digests += 1
        log.warning("slack: alert storm in %s: %d alert(s) summarised in one digest", channel, d["total"])

    # --- rendering ----------------------------------------------------------------------------

    def render_message(self, m: Message) -> dict[str, Any]:
        """The message body (text + blocks) for a group's current state."""
        return dict(render_json("slack/alert.json.j2", a=self.view(m)))

    def view(self, m: Message) -> dict[str, Any]:
        doc = m.doc
        p = self._personal(doc)
        status = m.status
        return {
            "message_id": m.id, "alert_id": doc["id"], "title": p["title"], "description": doc.get("description") or "",
            "severity": doc["severity"], "severity_label": doc["severity"].upper(), "emoji": _EMOJI[doc["severity"]],
            "risk_score": doc["risk_score"], "status": status, "status_label": STATUS_LABEL[status],
            "user": p["user"], "source_ip": p["source_ip"], "host": doc.get("host"), "resource": p["resource"],
            "rule_id": doc["rule_id"], "log_types": doc.get("log_types") or [],
            "first_seen": _fmt(m.first_seen), "last_seen": _fmt(m.last_seen), "count": m.total,
            "alerts": len(m.counts), "data_categories": doc.get("data_categories") or [],
            "personal_data": bool(doc.get("personal_data")), "query": p["query"],
            "mitre": doc.get("mitre") or [], "tags": doc.get("tags") or [],
            "history": [{"line": f"{ACTIONS[h['action']].done} by {_who(h['by'], h.get('by_name'))} at "
                                 f"{_fmt(h['at'])}" + (f" · breach case {code(h['case_id'])}" if h.get("case_id")
                                                       else "")} for h in m.history],
            "actions": [{"id": a.id, "label": a.label, "style": a.style, "confirm": a.confirm}
                        for a in ACTIONS.values() if AlertStatus(status) in a.allowed_from],
        }

    def pseudonym(self, value: str, prefix: str = "p") -> str:
        """A keyed hash of a personal value: stable for this installation, not reversible without the key."""
        return f"{prefix}-" + hmac.new(self._pkey, value.encode(), hashlib.sha256).hexdigest()[:10]

    def _personal(self, doc: dict[str, Any]) -> dict[str, Any]:
        mode = self.config.personal_data
        title, user, ip, resource = doc["title"], doc.get("user"), doc.get("source_ip"), doc.get("resource")
        if mode == "full":
            return {"title": title, "user": user, "source_ip": ip, "resource": resource, "query": doc.get("query")}
        values: dict[str, str] = {}
        for name, v in [("user.name", user), ("source.ip", ip), *(doc.get("group") or {}).items()]:
            if isinstance(v, str) and len(v) >= 3:
                values[v] = self.pseudonym(v, "ip" if name.endswith(".ip") or name == "ip" else "u")
        if mode == "none":
            values = {v: "[redacted]" for v in values}
            if isinstance(resource, str) and len(resource) >= 3:
                values[resource] = "[redacted]"
        for v in sorted(values, key=len, reverse=True):
            title = title.replace(v, values[v])
        if mode == "none":
            return {"title": title, "user": None, "source_ip": None, "resource": None, "query": None}
        return {"title": title, "user": values.get(user) if user else None,
                "source_ip": values.get(ip) if ip else None, "resource": resource, "query": None}


def _hash(*parts: str) -> str:
    return hashlib.blake2b("\x00".join(parts).encode(), digest_size=12).hexdigest()


def _ts(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))


def _fmt(iso: str) -> str:
    return _ts(iso).strftime("%Y-%m-%d %H:%M:%S UTC")


def _who(by: str, name: str | None) -> str:
    """A Slack user id becomes a mention (Slack shows the name); anything else is inert text."""
    return f"<@{by}>" if _SLACK_USER.fullmatch(by or "") else mrkdwn(name or by or "someone", 80)


def _retry_after(headers: Any) -> float:
    raw = None
    if headers:
        for k, v in dict(headers).items():
            if k.lower() == "retry-after":
                raw = v[0] if isinstance(v, list) else v
    try:
        return max(0.0, float(raw)) if raw is not None else 1.0
    except ValueError:
        return 1.0


__all__ = ["ACTIONS", "ActionOutcome", "Message", "SlackConfig", "SlackNotifier", "SlackRoute", "make_client",
           "parse_routes", "read_secret"]
