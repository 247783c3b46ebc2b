"""Issue 12 in notify/: a case title reaching #dpo in a breach reminder is escaped for mrkdwn, and a
signed Slack click is acted on only for Slack users mapped to a role that may work cases."""

from __future__ import annotations

import json
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.error import HTTPError
from urllib.parse import urlencode

from fake_slack import FakeSlack

from access_audit.core.alerts import Alert, AlertStatus, Severity
from access_audit.notify.interactive import (
    InteractionHandler,
    InteractionServer,
    SignatureVerifier,
    role_authoriser,
    sign,
)
from access_audit.notify.outbox import Outbox
from access_audit.notify.slack import SlackConfig, SlackNotifier, make_client
from access_audit.store.sqlite import SqliteStore
from access_audit.testing import FrozenClock

T0 = datetime(2026, 11, 23, 11, 58, 5, tzinfo=UTC)
SECRET = "0123456789abcdef0123456789abcdef"
EVIL = "<!channel> *URGENT* <https://evil.example|click here> `x` ~y~ &amp;"


def make(tmp_path: Path, fake: FakeSlack, clock: FrozenClock) -> SlackNotifier:
    return SlackNotifier(make_client(fake.token, fake.base_url, timeout_s=0.4), Outbox(tmp_path / "outbox.db"),
                         SlackConfig(deliver_on_flush=False), clock=clock, sleep=lambda s: clock.advance(seconds=s),
                         own_outbox=True)


def test_a_reminder_naming_an_evil_case_title_is_inert_in_the_dpo_channel(tmp_path, fake):
    from access_audit.breach.reminders import slack_sender

    n = make(tmp_path, fake, FrozenClock(T0))
    slack_sender(n, "#dpo")(f"[breach BR-2026-0001] 24 h left: {EVIL}")  # what the dispatcher sends
    assert n.drain(10)
    [msg] = fake.posts("#dpo")
    text = msg["text"]
    assert "<!channel>" not in text and "<https://" not in text and "&lt;!channel&gt;" in text
    assert "*URGENT*" not in text and "`x`" not in text  # formatting defused
    n.close()


def _body(user: str, action: str, mid: str) -> bytes:
    payload = {"type": "block_actions", "user": {"id": user, "username": user.lower()},
               "actions": [{"action_id": f"access_audit.{action}", "value": mid}]}
    return urlencode({"payload": json.dumps(payload)}).encode()


def _post(url: str, clock: FrozenClock, body: bytes) -> tuple[int, dict[str, Any]]:
    t = str(int(clock.now().timestamp()))
    req = urllib.request.Request(url + "slack/interactions", data=body, method="POST", headers={
        "Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": t,
        "X-Slack-Signature": sign(SECRET, t, body)})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read())
    except HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def test_signed_clicks_are_authorised_by_the_slack_user_role_mapping(tmp_path, fake):
    clock = FrozenClock(T0)
    store = SqliteStore(tmp_path / "events.db")
    a = Alert(id="a1", rule_id="ssh_root_login", title="root login", severity=Severity.high, risk_score=75,
              dedup_key="k", first_seen=T0, last_seen=T0, created_at=T0)
    store.write_alerts([a])
    n = make(tmp_path, fake, clock)
    n.emit(a, True)
    n.flush()
    n.deliver()
    mid = n.messages_for_alert(a.id)[0].id
    roles = {"UANALYST": "security_analyst", "UENG": "engineer"}
    may = {"security_analyst", "dpo", "admin"}
    handler = InteractionHandler(n, SignatureVerifier(SECRET, clock=clock), store=store,
                                 authorise=role_authoriser(roles, lambda role, action: role in may))
    server = InteractionServer(handler).start()
    try:
        for user in ("UENG", "USTRANGER"):  # signed by Slack, but not someone who may change alerts
            assert _post(server.url, clock, _body(user, "resolve", mid)) == (403, {"ok": False,
                                                                                  "error": "not_authorised"})
            clock.advance(seconds=1)
        assert store.alerts()[0].status == AlertStatus.open
        status, doc = _post(server.url, clock, _body("UANALYST", "acknowledge", mid))
        assert (status, doc["status"]) == (200, "acknowledged")
        assert store.alerts()[0].context["history"][-1]["by"] == "UANALYST"
    finally:
        server.stop()
        n.close()
        store.close()
