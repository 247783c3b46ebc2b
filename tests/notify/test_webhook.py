"""The webhook notifier against a local receiver over real HTTP; time is a FrozenClock."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from access_audit.core.alerts import Alert, Severity
from access_audit.notify.outbox import Outbox
from access_audit.notify.webhook import WebhookNotifier, verify_signature
from access_audit.testing import FrozenClock

T0 = datetime(2026, 11, 23, 11, 0, tzinfo=UTC)


@dataclass
class Receiver:
    """Records every POST; answers with the scripted statuses first, then 204."""

    script: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    got: list[tuple[int, dict[str, str], bytes]] = field(default_factory=list)
    server: Any = None
    port: int = 0

    def start(self) -> Receiver:
        rec = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status, headers = rec.script.pop(0) if rec.script else (204, {})
                rec.got.append((status, dict(self.headers.items()), body))
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), H)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def accepted(self) -> list[dict[str, Any]]:
        return [json.loads(b) for s, _, b in self.got if s < 300]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


def make(tmp_path: Path, url: str, clock: FrozenClock, secret: str | None = "whsec") -> WebhookNotifier:
    return WebhookNotifier(url, Outbox(tmp_path / "outbox.db"), secret=secret, clock=clock, timeout_s=0.5,
                           sleep=lambda s: clock.advance(seconds=s), deliver_on_flush=False, own_outbox=True)


def alert(id: str = "w1", count: int = 1) -> Alert:
    return Alert(id=id, rule_id="github_repo_made_public", title="repo made public", severity=Severity.high,
                 risk_score=75, dedup_key="org/repo", first_seen=T0, last_seen=T0, created_at=T0, count=count)


def test_each_alert_is_posted_as_signed_json(tmp_path, receiver):
    clock = FrozenClock()
    n = make(tmp_path, receiver.url, clock)
    n.emit(alert(), True)
    n.flush()
    assert n.deliver() == 1
    [(_, headers, body)] = receiver.got
    doc = json.loads(body)
    assert doc["type"] == "alert.new" and doc["alert"]["id"] == "w1" and doc["alert"]["severity"] == "high"
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Access-Audit-Delivery"] == "w1:new" and headers["X-Access-Audit-Event"] == "alert.new"
    assert headers["X-Access-Audit-Timestamp"] == str(int(clock.now().timestamp()))
    assert verify_signature("whsec", headers["X-Access-Audit-Timestamp"], body, headers["X-Access-Audit-Signature"])
    assert not verify_signature("other", headers["X-Access-Audit-Timestamp"], body,
                                headers["X-Access-Audit-Signature"])
    n.close()


def test_no_signature_header_without_a_secret(tmp_path, receiver):
    n = make(tmp_path, receiver.url, FrozenClock(), secret=None)
    n.emit(alert(), True)
    n.flush()
    n.deliver()
    assert "X-Access-Audit-Signature" not in receiver.got[0][1]
    n.close()


def test_retries_back_off_and_honour_retry_after(tmp_path, receiver):
    clock = FrozenClock()
    receiver.script = [(503, {}), (429, {"Retry-After": "7"}), (500, {})]
    n = make(tmp_path, receiver.url, clock)
    n.emit(alert(), True)
    n.flush()
    at = []
    for _ in range(12):
        before = len(receiver.got)
        n.deliver()
        if len(receiver.got) > before:
            at.append(int((clock.now() - FrozenClock().now()).total_seconds()))
        clock.advance(seconds=1)
    # 503 at 0 s -> backoff 1 s; 429 at 1 s -> Retry-After 7 s; 500 at 8 s -> backoff 4 s (third try); 204 at 12 s
    assert [s for s, _, _ in receiver.got] == [503, 429, 500]
    assert at == [0, 1, 8]
    clock.advance(seconds=1)
    assert n.deliver() == 1
    assert {h["X-Access-Audit-Delivery"] for _, h, _ in receiver.got} == {"w1:new"}  # the same id on every try
    n.close()


def test_a_refusal_is_kept_as_failed_and_the_next_alert_goes_out(tmp_path, receiver):
    receiver.script = [(400, {})]
    n = make(tmp_path, receiver.url, FrozenClock())
    n.emit(alert("one"), True)
    n.emit(alert("two"), True)
    n.flush()
    n.deliver()
    assert [d["alert"]["id"] for d in receiver.accepted()] == ["two"]
    assert n.outbox.counts("webhook") == {"failed": 1, "sent": 1}
    n.close()


def test_an_outage_delivers_in_order_with_updates_collapsed(tmp_path, receiver):
    clock = FrozenClock()
    receiver.stop()  # connection refused
    n = make(tmp_path, receiver.url, clock)
    a = alert("x")
    n.emit(a, True)
    n.flush()
    for c in (2, 5, 9):
        a.count = c
        n.emit(a, False)
        n.flush()
        n.deliver()
        clock.advance(minutes=20)
    n.emit(alert("y"), True)
    n.flush()
    assert receiver.got == []
    receiver.start()  # back, on the same port
    assert n.drain(600)
    assert [(d["type"], d["alert"]["id"], d["alert"]["count"]) for d in receiver.accepted()] == [
        ("alert.new", "x", 1), ("alert.updated", "x", 9), ("alert.new", "y", 1)]
    n.close()
