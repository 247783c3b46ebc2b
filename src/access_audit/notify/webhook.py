"""A generic webhook: every alert as a JSON POST, through the outbox, retried until it is accepted.

Body: ``{"type": "alert.new" | "alert.updated", "alert": {...}}`` (the alert as stored). Headers:
``X-Access-Audit-Delivery`` (the outbox id: the same for a retry, so a receiver can drop
duplicates), ``X-Access-Audit-Event``, ``X-Access-Audit-Timestamp`` and, with a secret,
``X-Access-Audit-Signature: v1=<hex HMAC-SHA256(secret, timestamp + "." + body)>``.

A 2xx is delivered. 429 waits for Retry-After; 408, 425, 5xx and network errors back off
exponentially; any other 4xx is a permanent refusal (the row stays in the outbox as failed). Rows
go out in order; pending counter updates of one alert collapse into the latest.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
import urllib.request
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from urllib.error import HTTPError, URLError

import orjson

from access_audit.core.alerts import Alert, Severity
from access_audit.core.clock import Clock, SystemClock
from access_audit.notify.outbox import Outbox, OutboxRow

if TYPE_CHECKING:
    from access_audit.settings import Settings

log = logging.getLogger(__name__)

SINK = "webhook"


def signature(secret: str, timestamp: str, body: bytes) -> str:
    return "v1=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def verify_signature(secret: str, timestamp: str, body: bytes, header: str) -> bool:
    """For receivers: does ``header`` sign ``body`` at ``timestamp``? (Check the timestamp's age too.)"""
    return hmac.compare_digest(signature(secret, timestamp, body).encode(), header.encode("utf-8", "replace"))


class WebhookNotifier:
    """AlertSink that POSTs alerts to one URL through the outbox."""

    def __init__(self, url: str, outbox: Outbox, *, secret: str | None = None, clock: Clock | None = None,
                 sleep: Callable[[float], None] | None = None, timeout_s: float = 10.0, max_backoff_s: float = 120.0,
                 min_severity: Severity = Severity.low, deliver_on_flush: bool = True, drain_s: float = 10.0,
                 own_outbox: bool = False) -> None:
        self.url = url
        self.outbox = outbox
        self._secret = secret
        self.clock = clock or SystemClock()
        self._sleep = sleep or time.sleep
        self.timeout_s = timeout_s
        self.max_backoff_s = max_backoff_s
        self.min_rank = min_severity.rank
        self.deliver_on_flush = deliver_on_flush
        self.drain_s = drain_s
        self._own_outbox = own_outbox
        self._buffer: dict[str, tuple[Alert, bool]] = {}
        self._lock = threading.Lock()
        self._deliver_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Clock | None = None) -> WebhookNotifier:
        assert settings.webhook_url
        secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else None
        return cls(settings.webhook_url, Outbox(settings.outbox_path), secret=secret, clock=clock, own_outbox=True)

    def _now(self) -> float:
        return self.clock.now().timestamp()

    def emit(self, alert: Alert, new: bool) -> None:
        """Remember the alert; ``flush`` writes it to the outbox."""
        if alert.severity.rank < self.min_rank:
            return
        with self._lock:
            prev = self._buffer.get(alert.id)
            self._buffer[alert.id] = (alert.model_copy(deep=True), new or bool(prev and prev[1]))

    def flush(self) -> None:
        """Write emitted alerts to the outbox (durable on return; raises NotifyError if it cannot),
        then send what is due. Delivery problems never raise here."""
        with self._lock:
            items = list(self._buffer.values())
            self._buffer.clear()
        if items:
            now = self._now()
            with self.outbox.transaction():
                for alert, new in items:
                    doc = alert.to_doc()
                    if new:
                        self.outbox.enqueue(SINK, f"{alert.id}:new", self.url, "alert.new", now=now, ref=alert.id,
                                            payload={"type": "alert.new", "alert": doc})
                        continue
                    stale = [r.id for r in self.outbox.open_rows(SINK, op="alert.updated", ref=alert.id)
                             if r.state == "pending"]
                    self.outbox.set_state(stale, "superseded")
                    self.outbox.enqueue(SINK, f"{alert.id}:update:{alert.count}:{doc['last_seen']}", self.url,
                                        "alert.updated", now=now, ref=alert.id,
                                        payload={"type": "alert.updated", "alert": doc})
        if self.deliver_on_flush:
            try:
                self.deliver()
            except Exception:
                log.exception("webhook delivery failed; the alerts stay in the outbox")

    def close(self) -> None:
        self.flush()
        try:
            if not self.drain(self.drain_s):
                log.warning("%d webhook delivery(ies) still in the outbox; the next run sends them", self.pending())
        finally:
            if self._own_outbox:
                self.outbox.close()

    def pending(self) -> int:
        return sum(n for s, n in self.outbox.counts(SINK).items() if s in ("pending", "sending"))

    def next_due(self) -> float | None:
        rows = self.outbox.open_rows(SINK, self.url)
        return rows[0].next_attempt_at if rows else None

    def drain(self, budget_s: float) -> bool:
        """Deliver until nothing waits or ``budget_s`` (clock time) is over; True when empty."""
        deadline = self._now() + budget_s
        while True:
            self.deliver()
            nd = self.next_due()
            if nd is None:
                return True
            now = self._now()
            if nd > deadline or now >= deadline:
                return False
            self._sleep(max(nd - now, 0.01))

    def deliver(self, max_rows: int = 100) -> int:
        """Send due rows in order until one has to wait; returns how many were settled (sent or refused)."""
        if not self._deliver_lock.acquire(blocking=False):
            return 0
        try:
            done = 0
            for row in self.outbox.open_rows(SINK, self.url)[:max_rows]:
                if row.next_attempt_at > self._now() or not self._send(row):
                    break
                done += 1
            return done
        finally:
            self._deliver_lock.release()

    def _send(self, row: OutboxRow) -> bool:
        now = self._now()
        self.outbox.claim(row.id)
        body = orjson.dumps(row.payload)
        ts = str(int(now))
        headers = {"Content-Type": "application/json", "User-Agent": "access-audit",
                   "X-Access-Audit-Delivery": row.id, "X-Access-Audit-Event": row.op, "X-Access-Audit-Timestamp": ts}
        if self._secret:
            headers["X-Access-Audit-Signature"] = signature(self._secret, ts, body)
        req = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                resp.read()
            self.outbox.mark_sent(row.id, now=now, result={"status": resp.status})
            return True
        except HTTPError as e:
            status = e.code
            if status == 429:
                self._retry(row, now + _retry_after(e.headers.get("Retry-After"), now), f"HTTP {status}")
            elif status in (408, 425) or status >= 500:
                self._retry(row, now + self._backoff(row), f"HTTP {status}")
            else:
                log.error("webhook refused %s: HTTP %d (kept in the outbox as failed)", row.id, status)
                self.outbox.fail(row.id, error=f"HTTP {status}")
                return True  # a refusal does not block the rows behind it
        except (URLError, OSError, TimeoutError) as e:
            self._retry(row, now + self._backoff(row), f"network: {type(getattr(e, 'reason', e)).__name__}")
        except Exception as e:  # http.client errors
            self._retry(row, now + self._backoff(row), f"network: {type(e).__name__}")
        return False

    def _backoff(self, row: OutboxRow) -> float:
        return min(self.max_backoff_s, 2.0 ** min(row.attempts, 30))

    def _retry(self, row: OutboxRow, at: float, error: str) -> None:
        log.warning("webhook: %s: %s; attempt %d, next in %.0fs", row.id, error, row.attempts + 1, at - self._now())
        self.outbox.retry(row.id, at=at, error=error)


def _retry_after(value: Any, now: float) -> float:
    if not value:
        return 1.0
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(str(value)).timestamp() - now)
        except (TypeError, ValueError):
            return 1.0
