"""Slack faults over the fake (tests/notify/fake_slack.py, real HTTP): down for a simulated hour,
then 429 with Retry-After, then 500s, and the notifier process killed with a post in flight.
Slack has no idempotency key: the outbox delivers at least once and checks what was already
posted, so the fake must record every alert exactly once.
"""

from __future__ import annotations

import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "notify"))

from fake_slack import FakeSlack

from access_audit.core.alerts import Alert, Severity
from access_audit.notify.outbox import Outbox
from access_audit.notify.slack import SlackConfig, SlackNotifier, make_client
from access_audit.testing import FrozenClock

T0 = datetime(2026, 11, 23, 11, 0, tzinfo=UTC)


def notifier(tmp: Path, fake: FakeSlack, clock: FrozenClock) -> SlackNotifier:
    return SlackNotifier(make_client(fake.token, fake.base_url, timeout_s=0.4), Outbox(tmp / "outbox.db"),
                         SlackConfig(deliver_on_flush=False, storm_threshold=1000), clock=clock,
                         sleep=lambda s: clock.advance(seconds=s), own_outbox=True)


def alert(i: int) -> Alert:
    return Alert(id=f"al{i:03d}", rule_id="ssh_brute_force", title=f"brute force from 198.51.100.{i}",
                 severity=Severity.high, risk_score=75, dedup_key=f"198.51.100.{i}", first_seen=T0, last_seen=T0,
                 created_at=T0, count=10, source_ip=f"198.51.100.{i}", log_types=["syslog"])


def posted_ids(fake: FakeSlack) -> Counter[str]:
    return Counter(m["metadata"]["event_payload"]["outbox_id"] for m in fake.posts("#security-alerts"))


def test_down_for_an_hour_then_429_then_500_then_killed_mid_post_delivers_each_alert_once(tmp_path: Path) -> None:
    fake = FakeSlack().start()
    clock = FrozenClock(T0)
    n = notifier(tmp_path, fake, clock)
    alerts = [alert(i) for i in range(40)]
    n.emit(alerts[0], True)  # one post before the outage: the notifier knows the channel's id
    n.flush()
    assert n.drain(60)
    fake.stop()  # down: connection refused
    for a in alerts[1:20]:
        n.emit(a, True)
        n.flush()
        for _ in range(12):  # a simulated hour in 15-second steps while alerts arrive
            n.deliver()
            clock.advance(seconds=15)
    assert len(posted_ids(fake)) == 1
    fake.start()
    for _ in range(5):
        fake.fail("chat.postMessage", "429", retry_after=30)
    for _ in range(5):
        fake.fail("chat.postMessage", "500")
    for a in alerts[20:30]:
        n.emit(a, True)
    n.flush()
    for _ in range(40):
        n.deliver()
        clock.advance(seconds=5)
    # Killed with a post in flight: Slack stored it, the answer never came back.
    fake.fail("chat.postMessage", "hang_after")
    n.deliver()
    n.outbox.close() if hasattr(n.outbox, "close") else None  # the process is gone; its outbox file stays
    n2 = notifier(tmp_path, fake, clock)  # the restarted process, same outbox
    for a in alerts[30:]:
        n2.emit(a, True)
    n2.flush()
    assert n2.drain(3600)
    ids = posted_ids(fake)
    assert len(ids) == len(alerts), f"every alert posted: {len(ids)} of {len(alerts)}"
    assert max(ids.values()) == 1, f"none twice: {[k for k, v in ids.items() if v > 1]}"
    answered = Counter(r.answered for r in fake.requests)
    assert answered["429"] >= 5 and answered["500"] >= 5
    rate_limited = [r for r in fake.requests if r.answered == "429"]
    assert len(rate_limited) == 5, "a 429 is waited out (Retry-After), not hammered"
    n2.close()
    fake.stop()


def test_the_first_post_to_a_channel_lost_in_flight_is_not_doubled(tmp_path: Path) -> None:
    fake = FakeSlack().start()
    clock = FrozenClock(T0)
    n = notifier(tmp_path, fake, clock)
    fake.fail("chat.postMessage", "hang_after")  # Slack stores it; the answer never arrives
    n.emit(alert(1), True)
    n.flush()
    n.deliver()
    n2 = notifier(tmp_path, fake, clock)  # restarted
    assert n2.drain(3600)
    ids = posted_ids(fake)
    n2.close()
    fake.stop()
    assert list(ids.values()) == [1]
    assert n2.stats.reconciled == 1
    assert [r.method for r in fake.requests] == ["chat.postMessage", "conversations.list",
                                                "conversations.history", "chat.update"]
