"""The Slack notifier against a local fake of the Slack Web API, over real HTTP.

Time is a FrozenClock; the notifier's sleeps advance it, so an hour of outage takes a second.
"""

from __future__ import annotations

import json
import logging
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.error import HTTPError
from urllib.parse import urlencode

import pytest
from fake_slack import FakeSlack
from typer.testing import CliRunner

from access_audit.core.alerts import Alert, AlertStatus, Severity
from access_audit.core.errors import ConfigError
from access_audit.notify.interactive import InteractionHandler, InteractionServer, SignatureVerifier, sign
from access_audit.notify.outbox import Outbox
from access_audit.notify.render import code, code_block, mrkdwn, plain
from access_audit.notify.slack import SlackConfig, SlackNotifier, make_client, parse_routes
from access_audit.settings import Settings
from access_audit.store.sqlite import SqliteStore
from access_audit.testing import FrozenClock

T0 = datetime(2026, 11, 23, 11, 58, 5, tzinfo=UTC)
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


def make(tmp_path: Path, fake: FakeSlack, clock: FrozenClock, **cfg: Any) -> SlackNotifier:
    cfg.setdefault("deliver_on_flush", False)
    return SlackNotifier(make_client(fake.token, fake.base_url, timeout_s=0.4), Outbox(tmp_path / "outbox.db"),
                         SlackConfig(**cfg), clock=clock, sleep=lambda s: clock.advance(seconds=s),
                         own_outbox=True)


def alert(id: str = "a1b2c3", *, rule_id: str = "ssh_root_login", dedup: str | None = None,
          severity: Severity = Severity.high, count: int = 1, **kw: Any) -> Alert:
    doc: dict[str, Any] = dict(
        id=id, rule_id=rule_id, title="root logged in on web-1 from 203.0.113.7",
        description="A successful login straight to root.", severity=severity, risk_score=75,
        dedup_key=dedup or f"web-1|{id}", first_seen=T0, last_seen=T0, created_at=T0, count=count, user="root",
        source_ip="203.0.113.7", host="web-1", data_categories=["health"], personal_data=True,
        mitre=["T1078.003"], tags=["attack.initial_access"], log_types=["syslog"],
        query="user.name:root AND source.ip:203.0.113.7")
    doc.update(kw)
    return Alert(**doc)


def send(n: SlackNotifier, *alerts: Alert, new: bool = True) -> None:
    for a in alerts:
        n.emit(a, new)
    n.flush()


def field(blocks: list[dict[str, Any]], name: str) -> str:
    for b in blocks:
        for f in b.get("fields", []):
            if f["text"].startswith(f"*{name}*\n"):
                return str(f["text"].split("\n", 1)[1])
    raise KeyError(name)


def outbox_ids(messages: list[dict[str, Any]]) -> list[str]:
    return [m["metadata"]["event_payload"]["outbox_id"] for m in messages]


# --- the message ------------------------------------------------------------------------------


def test_an_alert_becomes_this_exact_block_kit_message(tmp_path, fake, clock):
    n = make(tmp_path, fake, clock)
    send(n, alert())
    assert n.deliver() == 1
    [req] = fake.calls("chat.postMessage")
    mid = n.messages_for_alert("a1b2c3")[0].id
    confirm = {"title": {"type": "plain_text", "text": "Escalate to a breach case?"},
               "text": {"type": "mrkdwn", "text": "This opens a personal-data breach case; the 72-hour clock for "
                                                  "the authority starts from awareness."},
               "confirm": {"type": "plain_text", "text": "Escalate"}, "deny": {"type": "plain_text", "text": "Cancel"}}
    assert req.args == {
        "channel": "#security-alerts",
        "text": "HIGH: root logged in on web-1 from 203.0.113.7",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "emoji": True,
                                        "text": ":red_circle: root logged in on web-1 from 203.0.113.7"}},
            {"type": "section", "fields": [
                {"type": "mrkdwn", "text": "*Severity*\nHIGH · risk 75"},
                {"type": "mrkdwn", "text": "*Status*\nOpen"},
                {"type": "mrkdwn", "text": "*Who*\n`root` from `203.0.113.7`"},
                {"type": "mrkdwn", "text": "*What*\n`ssh_root_login` on syslog"},
                {"type": "mrkdwn", "text": "*Where*\nhost `web-1`"},
                {"type": "mrkdwn", "text": "*When*\n2026-11-23 11:58:05 UTC"},
                {"type": "mrkdwn", "text": "*Events*\n1"},
                {"type": "mrkdwn", "text": "*Data categories*\nhealth · personal data"},
            ]},
            {"type": "section", "text": {"type": "mrkdwn", "text": "A successful login straight to root."}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "*Evidence*\n```access-audit query "
                                                                   "'user.name:root AND source.ip:203.0.113.7'```"}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": "alert `a1b2c3` · MITRE T1078.003 · tags "
                                                                        "`attack.initial_access`"}]},
            {"type": "actions", "block_id": "access_audit.actions", "elements": [
                {"type": "button", "action_id": "access_audit.acknowledge", "value": mid,
                 "text": {"type": "plain_text", "text": "Acknowledge"}},
                {"type": "button", "action_id": "access_audit.escalate", "value": mid,
                 "text": {"type": "plain_text", "text": "Escalate to breach case"}, "style": "danger",
                 "confirm": confirm},
                {"type": "button", "action_id": "access_audit.false_positive", "value": mid,
                 "text": {"type": "plain_text", "text": "False positive"}},
                {"type": "button", "action_id": "access_audit.resolve", "value": mid,
                 "text": {"type": "plain_text", "text": "Resolve"}, "style": "primary"},
            ]},
        ],
        "unfurl_links": False,
        "unfurl_media": False,
        "metadata": {"event_type": "access_audit_outbox", "event_payload": {"outbox_id": f"{mid}:post"}},
    }
    assert n.outbox.row(f"{mid}:post").state == "sent"
    assert n.message(mid).ts == fake.posts("#security-alerts")[0]["ts"]
    n.close()


def test_injection_attempts_in_user_controlled_text_are_inert(tmp_path, fake, clock):
    evil = alert(user="<!channel>", source_ip="<@U123>", host="*bold*", resource="<http://evil.example|click here>",
                 title="Login by <!here> <@U0ADMIN> <http://evil|click> *bold* ~strike~ `x`\u202e\x07",
                 description="see <!everyone> _now_", query='user.name:"```<!channel>"',
                 log_types=["<!subteam^S1>"], data_categories=["<@U9>"])
    n = make(tmp_path, fake, clock)
    send(n, evil)
    n.deliver()
    [req] = fake.calls("chat.postMessage")
    blocks = req.args["blocks"]
    mrkdwn_texts = [req.args["text"]] + [
        t["text"] for b in blocks for t in [b.get("text") or {}, *b.get("fields", []), *b.get("elements", [])]
        if isinstance(t, dict) and t.get("type") == "mrkdwn"]
    joined = "\n".join(mrkdwn_texts)
    for bad in ("<!channel>", "<!here>", "<!everyone>", "<!subteam", "<@U123>", "<@U0ADMIN>", "<@U9>", "<http",
                "\u202e", "\x07"):
        assert bad not in joined, bad
    # formatting markers are broken up in text; inside `code` they are literal anyway
    assert blocks[2]["text"]["text"] == "see &lt;!everyone&gt; _\u200bnow_\u200b"
    assert field(blocks, "Who") == "`&lt;!channel&gt;` from `&lt;@U123&gt;`"
    assert field(blocks, "Where") == "host `*bold*` · `&lt;http://evil.example|click here&gt;`"
    assert req.args["text"] == ("HIGH: Login by &lt;!here&gt; &lt;@U0ADMIN&gt; &lt;http://evil|click&gt; "
                                "*\u200bbold*\u200b ~\u200bstrike~\u200b `\u200bx`\u200b")
    assert blocks[3]["text"]["text"] == "*Evidence*\n```access-audit query 'user.name:\"ˋˋˋ&lt;!channel&gt;\"'```"
    # plain_text is shown literally by Slack (no mentions, no links); control characters are still gone
    assert blocks[0]["text"]["text"] == ":red_circle: Login by <!here> <@U0ADMIN> <http://evil|click> *bold* " \
                                        "~strike~ `x`"
    n.close()


def test_escaping_filters():
    assert mrkdwn("a & b <c> *d*") == "a &amp; b &lt;c&gt; *\u200bd*\u200b"
    assert mrkdwn("x" * 400, 10) == "x" * 9 + "…"
    assert mrkdwn("tab\tand\x00nul\r\nline") == "tab andnul\nline"
    assert code("a`b <c>") == "`aˋb &lt;c&gt;`"
    assert code(None) == "—"
    assert code_block("```<!here>") == "```ˋˋˋ&lt;!here&gt;```"
    assert plain("two\nlines\u202e") == "two lines"


@pytest.mark.parametrize("mode", ["pseudonymised", "none"])
def test_personal_data_is_limited_by_configuration(tmp_path, fake, clock, mode):
    a = alert(user="alice@zorgwijk.nl", source_ip="198.51.100.7", resource="/patients/jan-jansen",
              title="alice@zorgwijk.nl read /patients/jan-jansen from 198.51.100.7",
              group={"user.name": "alice@zorgwijk.nl", "source.ip": "198.51.100.7"},
              query="user.name:alice@zorgwijk.nl AND source.ip:198.51.100.7")
    n = make(tmp_path, fake, clock, personal_data=mode)
    send(n, a)
    n.deliver()
    [req] = fake.calls("chat.postMessage")
    body = json.dumps(req.args)
    assert "alice" not in body and "198.51.100.7" not in body
    blocks = req.args["blocks"]
    u, ip = n.pseudonym("alice@zorgwijk.nl", "u"), n.pseudonym("198.51.100.7", "ip")
    assert "Query withheld from Slack (personal data)" in blocks[3]["text"]["text"]
    if mode == "pseudonymised":
        assert field(blocks, "Who") == f"`{u}` from `{ip}`"
        assert blocks[0]["text"]["text"] == f":red_circle: {u} read /patients/jan-jansen from {ip}"
        # the key lives in the outbox: the same person gets the same pseudonym in the next run
        n.close()
        again = make(tmp_path, fake, clock, personal_data=mode)
        assert again.pseudonym("alice@zorgwijk.nl", "u") == u
        again.close()
    else:
        assert u not in body and "jan-jansen" not in body
        assert field(blocks, "Who") == "—"
        assert blocks[0]["text"]["text"] == ":red_circle: [redacted] read [redacted] from [redacted]"
        n.close()


# --- routing ----------------------------------------------------------------------------------


def test_routes_by_severity_rule_tag_and_team_with_a_default(tmp_path, fake, clock):
    routes = parse_routes([
        {"severity": "critical", "channel": "#sec-critical"},
        {"rule": "aws_*", "channel": "#cloud-sec", "continue": True},
        {"tag": ["okta", "iam*"], "channel": "#iam"},
        {"team": "payments", "channel": "#team-payments"},
    ])
    cases = {
        "c1": (alert("c1", severity=Severity.critical), ["#sec-critical"]),
        "c2": (alert("c2", rule_id="aws_console_login_without_mfa", tags=[]), ["#cloud-sec"]),
        "c3": (alert("c3", rule_id="aws_iam_change", tags=["iam.policy"]), ["#cloud-sec", "#iam"]),
        "c4": (alert("c4", rule_id="github_repo_made_public", tags=["team:payments"]), ["#team-payments"]),
        "c5": (alert("c5", rule_id="ledger_export", tags=[], context={"team": "payments"}), ["#team-payments"]),
        "c6": (alert("c6", rule_id="ssh_invalid_user", severity=Severity.medium, tags=[]), ["#security-alerts"]),
    }
    n = make(tmp_path, fake, clock, routes=routes)
    for a, want in cases.values():
        assert n.config.channels_for(a) == want
    send(n, *(a for a, _ in cases.values()))
    assert n.drain(60)
    got: dict[str, list[str]] = {}
    for r in fake.calls("chat.postMessage"):
        alert_id = r.args["blocks"][-2]["elements"][0]["text"].split("`")[1]
        got.setdefault(alert_id, []).append(r.args["channel"])
    assert {k: sorted(v) for k, v in got.items()} == {k: sorted(want) for k, (_, want) in cases.items()}
    n.close()


def test_invalid_routes_are_all_reported():
    with pytest.raises(ConfigError) as e:
        parse_routes([{"chanel": "#x"}, {"channel": "#y", "severity": "urgent"}])
    msg = str(e.value)
    assert "slack_routes[0].channel" in msg and "slack_routes[0].chanel" in msg and "slack_routes[1].severity" in msg


# --- grouping ---------------------------------------------------------------------------------


def test_repeats_edit_the_message_and_new_alerts_of_the_same_key_reply_in_its_thread(tmp_path, fake, clock):
    n = make(tmp_path, fake, clock)
    a = alert(dedup="web-1|203.0.113.7")
    send(n, a)
    n.deliver()
    a.count, a.last_seen = 4, T0 + timedelta(minutes=2)
    send(n, a, new=False)
    clock.advance(seconds=1)
    n.deliver()
    [upd] = fake.calls("chat.update")
    assert field(upd.args["blocks"], "Events") == "4"
    assert field(upd.args["blocks"], "When") == "2026-11-23 11:58:05 UTC → 2026-11-23 12:00:05 UTC"

    a.count = 12  # passes 10: a reply in the thread as well as the edit
    send(n, a, new=False)
    assert n.drain(10)
    [parent] = fake.posts("#security-alerts")
    assert [m["text"] for m in fake.thread("#security-alerts", parent["ts"])] == [
        "Now 12 events; last seen 2026-11-23 12:00:05 UTC."]
    assert field(parent["blocks"], "Events") == "12" and parent["edits"] == 2

    b = alert("d4e5f6", dedup="web-1|203.0.113.7", count=3,  # the same key again after the suppression window
              first_seen=T0 + timedelta(hours=2), last_seen=T0 + timedelta(hours=2, minutes=1))
    send(n, b)
    assert n.drain(10)
    assert len(fake.posts("#security-alerts")) == 1  # never a second top-level message
    parent = fake.posts("#security-alerts")[0]
    assert field(parent["blocks"], "Events") == "15 in 2 alerts"
    assert field(parent["blocks"], "When") == "2026-11-23 11:58:05 UTC → 2026-11-23 13:59:05 UTC"
    assert fake.thread("#security-alerts", parent["ts"])[-1]["text"] == (
        "Seen again: 3 more event(s) from 2026-11-23 13:58:05 UTC to 2026-11-23 13:59:05 UTC (alert `d4e5f6`).")
    n.close()


def test_edits_waiting_for_an_unsent_post_collapse_into_it(tmp_path, fake, clock):
    n = make(tmp_path, fake, clock)
    a = alert()
    send(n, a)
    for c in (2, 3, 7):
        a.count = c
        send(n, a, new=False)
    assert n.drain(10)
    assert [r.method for r in fake.requests] == ["chat.postMessage"]
    assert field(fake.calls("chat.postMessage")[0].args["blocks"], "Events") == "7"
    n.close()


def test_a_replayed_batch_does_not_post_again(tmp_path, fake, clock):
    n = make(tmp_path, fake, clock)
    send(n, alert())
    n.deliver()
    n.close()
    n = make(tmp_path, fake, clock)  # a new process replays the batch: the same alert arrives as new
    send(n, alert())
    assert n.drain(10)
    assert len(fake.posts("#security-alerts")) == 1
    n.close()


# --- pacing, retries ------------------------------------------------------------------------------


def test_each_channel_gets_at_most_one_message_per_second(tmp_path, fake, clock):
    routes = parse_routes([{"rule": "a_*", "channel": "#a"}, {"rule": "b_*", "channel": "#b"}])
    n = make(tmp_path, fake, clock, routes=routes)
    send(n, *(alert(f"a{i}", rule_id="a_rule") for i in range(3)), *(alert(f"b{i}", rule_id="b_rule")
                                                                      for i in range(2)))
    steps = []
    for dt in (0, 0, 0.5, 0.5, 0.5, 0.5, 1):
        clock.advance(seconds=dt)
        steps.append(n.deliver())
    assert steps == [2, 0, 0, 2, 0, 1, 0]
    assert [m["blocks"][-2]["elements"][0]["text"].split("`")[1] for m in fake.posts("#a")] == ["a0", "a1", "a2"]
    n.close()


def test_a_429_waits_for_retry_after(tmp_path, fake, clock):
    n = make(tmp_path, fake, clock)
    fake.fail("chat.postMessage", "429", retry_after=30)
    send(n, alert())
    assert n.deliver() == 0
    clock.advance(seconds=29)
    assert n.deliver() == 0
    assert len(fake.requests) == 1
    clock.advance(seconds=1)
    assert n.deliver() == 1
    assert [r.answered for r in fake.requests] == ["429", "ok"]
    assert len(fake.posts("#security-alerts")) == 1
    n.close()


def test_server_errors_back_off_and_check_before_posting_again(tmp_path, fake, clock):
    n = make(tmp_path, fake, clock)
    send(n, alert("first"))
    n.deliver()
    fake.fail("chat.postMessage", "500", times=2)
    send(n, alert("second"))
    log, seen = [], len(fake.requests)
    for dt in (1, 1, 1, 1, 1):
        clock.advance(seconds=dt)
        n.deliver()
        log.append([f"{r.method}:{r.answered}" for r in fake.requests[seen:]])
        seen = len(fake.requests)
    # 500 -> 1 s -> (is it there? no) 500 -> 2 s -> (is it there? no) posted
    assert log == [["chat.postMessage:500"], ["conversations.history:ok", "chat.postMessage:500"], [],
                   ["conversations.history:ok", "chat.postMessage:ok"], []]
    assert len(fake.posts("#security-alerts")) == 2
    n.close()


@pytest.mark.parametrize("kind", ["hang", "hang_after"])
def test_a_request_that_times_out_is_posted_exactly_once(tmp_path, fake, clock, kind):
    """hang: Slack never got it; hang_after: Slack posted it but the answer was lost."""
    n = make(tmp_path, fake, clock)
    send(n, alert("first"))
    n.deliver()
    fake.fail("chat.postMessage", kind)
    send(n, alert("second"))
    clock.advance(seconds=1)
    assert n.deliver() == 0  # timed out after 0.4 s
    assert n.drain(30)
    assert len(fake.posts("#security-alerts")) == 2
    assert len(set(outbox_ids(fake.posts("#security-alerts")))) == 2
    assert n.stats.reconciled == (1 if kind == "hang_after" else 0)
    n.close()


def test_a_crash_while_sending_is_checked_before_posting_again(tmp_path, fake, clock):
    n = make(tmp_path, fake, clock)
    send(n, alert("first"))
    n.deliver()
    send(n, alert("second"))
    [row] = n.outbox.open_rows("slack")
    n.outbox.claim(row.id)
    _, kwargs = n._request(row)
    n.client.chat_postMessage(**kwargs)  # the request reached Slack, then the process died
    n.outbox.close()
    n = make(tmp_path, fake, clock)
    assert n.outbox.row(row.id).state == "pending" and n.outbox.row(row.id).unsure
    assert n.drain(10)
    assert outbox_ids(fake.posts("#security-alerts")) == [f"{n.messages_for_alert(x)[0].id}:post"
                                                          for x in ("first", "second")]
    assert n.stats.reconciled == 1
    n.close()


def test_the_first_post_lost_in_flight_is_found_by_the_channel_id_looked_up_by_name(tmp_path, fake, clock):
    """The first post to a channel: its id is not known yet (no answer came back), so it is looked up
    by name (conversations.list, paged) before the history is searched; the look-up is kept."""
    for i in range(450):  # three pages of 200 before ours
        fake.create_channel(f"#team-{i:03d}")
    fake.fail("chat.postMessage", "hang_after")
    n = make(tmp_path, fake, clock, channel="#zz-alerts")
    send(n, alert("first"))
    assert n.deliver() == 0
    assert n.drain(30)
    assert outbox_ids(fake.posts("#zz-alerts")) == [f"{n.messages_for_alert('first')[0].id}:post"]
    assert n.stats.reconciled == 1
    lists = fake.calls("conversations.list")
    assert [r.args.get("cursor") is None for r in lists] == [True, False, False]
    assert n.outbox.get("slack.channel_id:#zz-alerts") == fake.channel("#zz-alerts").id
    n.close()


@pytest.mark.parametrize("scopes", [{"public_channel"}, set()])
def test_without_the_scope_to_list_channels_a_lost_first_post_is_sent_again(tmp_path, fake, clock, scopes):
    """Listing private channels needs groups:read: without it the public ones are listed. Without
    channels:read the id stays unknown and the post is sent again (at least once, never dropped)."""
    fake.list_scopes = scopes
    fake.fail("chat.postMessage", "hang_after")
    n = make(tmp_path, fake, clock)
    send(n, alert("first"))
    n.deliver()
    assert n.drain(30)
    posts = outbox_ids(fake.posts("#security-alerts"))
    assert len(posts) == (1 if scopes else 2) and len(set(posts)) == 1
    assert [r.answered for r in fake.calls("conversations.list")] == ["error:missing_scope"] * (2 - len(scopes)) + (
        ["ok"] if scopes else [])
    n.close()


def test_a_refused_message_is_kept_as_failed_and_does_not_block_the_channel(tmp_path, fake, clock):
    n = make(tmp_path, fake, clock)
    fake.fail("chat.postMessage", "error:not_in_channel")
    send(n, alert("one"), alert("two"))
    assert n.drain(10)
    assert n.outbox.counts("slack") == {"failed": 1, "sent": 1}
    assert n.outbox.requeue_failed("slack", now=clock.now().timestamp()) == 1
    assert n.drain(10)
    assert len(fake.posts("#security-alerts")) == 2
    n.close()


def test_an_hour_of_outage_delivers_every_alert_once_in_order(tmp_path, fake, clock):
    """Slack answers 500 for 20 minutes, then refuses connections for 40; the first request of the
    outage was posted but its answer lost. Alerts and counter updates keep coming throughout."""
    n = make(tmp_path, fake, clock, storm_threshold=100)
    emitted = [alert("a00", count=1)]
    send(n, emitted[0])
    n.deliver()
    fake.fail("chat.postMessage", "hang_after")
    start, i = clock.now(), 0
    while clock.now() < start + timedelta(hours=1):
        if i % 20 == 0:  # a new alert every 5 minutes
            emitted.append(alert(f"a{len(emitted):02d}", last_seen=T0 + timedelta(seconds=15 * i)))
            send(n, emitted[-1])
        if i % 7 == 3:  # and counter updates of earlier ones
            a = emitted[i % len(emitted)]
            a.count += 2
            send(n, a, new=False)
        n.deliver()
        if i == 0:
            fake.outage = "500"
        if i == 80:
            fake.outage = None
            fake.stop()
        clock.advance(seconds=15)
        i += 1
    during = len(fake.requests)
    fake.start()  # back, on the same port
    assert n.drain(900)
    posts = fake.posts("#security-alerts")
    assert len(emitted) == 13 and len(posts) == 13
    assert outbox_ids(posts) == [f"{n.messages_for_alert(a.id)[0].id}:post" for a in emitted]  # once, in order
    for a, m in zip(emitted, posts, strict=True):
        assert field(m["blocks"], "Events") == str(a.count)  # the last count, by the post or an edit
    assert n.stats.reconciled == 1
    assert n.pending() == 0 and "failed" not in n.outbox.counts("slack")
    assert during < 60  # backing off, not hammering: about one try per 2 minutes at most
    n.close()


# --- storms -----------------------------------------------------------------------------------


def test_a_storm_becomes_one_digest_and_critical_alerts_still_get_through(tmp_path, fake, clock):
    n = make(tmp_path, fake, clock, storm_threshold=5, storm_window_s=300, storm_release_max=3)
    brute = [alert(f"b{i}", rule_id="ssh_brute_force") for i in range(8)]
    invalid = [alert(f"i{i}", rule_id="ssh_invalid_user", severity=Severity.medium) for i in range(2)]
    crit = alert("crit", rule_id="ssh_brute_force_then_success", severity=Severity.critical)
    send(n, *brute[:4], crit, *brute[4:], *invalid)
    assert n.deliver() == 1
    clock.advance(seconds=1)
    assert n.deliver() == 1
    crit_post, digest = fake.posts("#security-alerts")
    assert crit_post["blocks"][0]["text"]["text"].startswith(":rotating_light: ")
    assert digest["text"] == (":rotating_light: Alert storm: 10 alert(s) held back from this channel between "
                              "2026-11-23 11:58:05 UTC and 2026-11-23 11:58:05 UTC.")
    assert digest["blocks"][1]["text"]["text"] == (
        "`ssh_brute_force`: 8 alert(s), 8 event(s), highest HIGH\n"
        "`ssh_invalid_user`: 2 alert(s), 2 event(s), highest MEDIUM")
    assert n.outbox.counts("slack")["digested"] == 10
    # the held-back alerts themselves, per rule, the most events first, five at most, and how to see the rest
    listed = digest["blocks"][2]["text"]["text"].split("\n")
    assert listed[0] == "*`ssh_brute_force`*"
    assert listed[1].startswith("• HIGH · root logged in on web-1 from ")
    assert "1 event(s) · last 2026-11-23" in listed[1]
    assert sum(x.startswith("• ") for x in listed) == 5
    assert listed[-1] == "   … and 3 more: `access-audit alerts list --rule ssh_brute_force`"
    assert digest["blocks"][3]["text"]["text"].startswith("*`ssh_invalid_user`*\n• MEDIUM · ")
    assert listed[2] == "   `user.name:root AND source.ip:203.0.113.7`", "the evidence query, copyable"

    brute[0].count = 50  # an update of a summarised alert: the store has it, Slack stays quiet
    send(n, brute[0], new=False)
    late = [alert(f"late{i}", rule_id="okta_mfa_deactivated") for i in range(2)]
    send(n, *late)  # held while the storm lasts
    for _ in range(5):
        clock.advance(seconds=10)
        assert n.deliver() == 0
    clock.advance(seconds=300)  # the storm is over: two held alerts are few enough to post one by one
    assert n.drain(10)
    assert len(fake.posts("#security-alerts")) == 4
    assert fake.calls("chat.update") == []
    n.close()


# --- messages for the breach workflow ---------------------------------------------------------------


def test_post_message_goes_through_the_outbox_once_per_key_and_threads(tmp_path, fake, clock):
    n = make(tmp_path, fake, clock)
    n.post_message(None, "Breach case *C-7* opened", key="case-7", trusted=True)
    n.post_message(None, "Breach case *C-7* opened", key="case-7", trusted=True)
    n.post_message(None, "Reminder: 24 h left to notify the authority", key="case-7:rem-24", thread_key="case-7")
    assert n.outbox.row("msg:case-7").state == "pending"  # durable before anything is sent
    assert n.drain(10)
    [top] = fake.posts("#dpo")
    assert top["text"] == "Breach case *C-7* opened" and n.message_ts("case-7") == top["ts"]
    assert [m["text"] for m in fake.thread("#dpo", top["ts"])] == ["Reminder: 24 h left to notify the authority"]
    n.close()


# --- interactivity over real HTTP ---------------------------------------------------------------


class Client:
    def __init__(self, url: str, clock: FrozenClock, message_id: str) -> None:
        self.url, self.clock, self.mid = url, clock, message_id

    def body(self, action: str, value: str | None = None) -> bytes:
        payload = {"type": "block_actions", "user": {"id": "U024BE7LH", "username": "alice"},
                   "container": {"type": "message"},
                   "actions": [{"action_id": f"access_audit.{action}", "value": value or self.mid}]}
        return urlencode({"payload": json.dumps(payload)}).encode()

    def post(self, body: bytes, *, ts: int | None = None, secret: str = SECRET, signature: str | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
        t = str(int(self.clock.now().timestamp()) if ts is None else ts)
        h = {"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": t,
             "X-Slack-Signature": signature or sign(secret, t, body)} if headers is None else headers
        req = urllib.request.Request(self.url + "slack/interactions", data=body, headers=h, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                return r.status, json.loads(r.read())
        except HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")


@pytest.fixture
def interactive(tmp_path, fake, clock):
    store = SqliteStore(tmp_path / "events.db")
    a = alert()
    store.write_alerts([a])
    n = make(tmp_path, fake, clock)
    send(n, a)
    n.deliver()
    cases: list[list[str]] = []

    def open_case(alerts: list[Alert], by: str) -> str:
        cases.append([x.id for x in alerts])
        return "case-1"

    handler = InteractionHandler(n, SignatureVerifier(SECRET, clock=clock), store=store, on_escalate=open_case)
    server = InteractionServer(handler).start()
    yield n, store, Client(server.url, clock, n.messages_for_alert(a.id)[0].id), cases
    server.stop()
    n.close()
    store.close()


def test_signature_verification_good_bad_stale_and_replayed(interactive, clock):
    _, store, c, _ = interactive
    body = c.body("acknowledge")
    now = int(clock.now().timestamp())
    assert c.post(body, secret="not-the-secret")[0] == 401  # bad signature
    assert c.post(body, ts=now - 301)[0] == 401  # stale
    assert c.post(body, ts=now + 301)[0] == 401  # from the future
    assert c.post(body, signature=sign(SECRET, str(now), c.body("resolve")))[0] == 401  # body swapped
    assert c.post(body, headers={"Content-Type": "application/x-www-form-urlencoded"})[0] == 401  # unsigned
    assert store.alerts()[0].status == AlertStatus.open  # nothing above got through
    assert c.post(body, ts=now - 299) == (200, {"ok": True, "changed": True, "status": "acknowledged"})  # good
    assert c.post(body, ts=now - 299)[0] == 401  # the same request again: a replay
    assert c.post(b"payload=%7Bnot+json", ts=now)[0] == 400
    assert c.post(c.body("acknowledge", value="no-such-message"))[0] == 404


def test_acknowledge_is_recorded_edits_the_message_and_a_double_click_changes_nothing(interactive, fake, clock):
    n, store, c, _ = interactive
    assert c.post(c.body("acknowledge")) == (200, {"ok": True, "changed": True, "status": "acknowledged"})
    rows = len(n.outbox.rows("slack"))
    clock.advance(seconds=1)
    assert c.post(c.body("acknowledge")) == (200, {"ok": True, "changed": False, "status": "acknowledged"})
    assert len(n.outbox.rows("slack")) == rows
    [a] = store.alerts()
    assert a.status == AlertStatus.acknowledged
    assert a.context["history"] == [{"action": "acknowledge", "status": "acknowledged", "by": "U024BE7LH",
                                     "by_name": "alice", "at": "2026-11-23T12:00:00+00:00"}]
    assert n.drain(10)
    [parent] = fake.posts("#security-alerts")
    assert field(parent["blocks"], "Status") == "Acknowledged"
    assert parent["blocks"][-2]["elements"][0]["text"] == "Acknowledged by <@U024BE7LH> at 2026-11-23 12:00:00 UTC"
    assert [b["action_id"] for b in parent["blocks"][-1]["elements"]] == [
        "access_audit.escalate", "access_audit.false_positive", "access_audit.resolve"]
    assert [m["text"] for m in fake.thread("#security-alerts", parent["ts"])] == [
        "Acknowledged by <@U024BE7LH> at 2026-11-23 12:00:00 UTC."]


def test_escalate_opens_one_case_and_resolve_is_final(interactive, fake, clock):
    n, store, c, cases = interactive
    assert c.post(c.body("escalate"))[1]["status"] == "escalated"
    clock.advance(seconds=1)
    assert c.post(c.body("escalate"))[1]["changed"] is False
    assert cases == [["a1b2c3"]]
    assert store.alerts()[0].context["history"][0]["case_id"] == "case-1"
    clock.advance(seconds=1)
    assert c.post(c.body("resolve"))[1] == {"ok": True, "changed": True, "status": "resolved"}
    clock.advance(seconds=1)
    assert c.post(c.body("false_positive"))[1]["changed"] is False
    assert [h["action"] for h in store.alerts()[0].context["history"]] == ["escalate", "resolve"]
    assert n.drain(10)
    [parent] = fake.posts("#security-alerts")
    assert parent["blocks"][-1]["type"] == "context"  # resolved: no buttons left
    assert parent["blocks"][-1]["elements"][0]["text"] == (
        "Escalated to a breach case by <@U024BE7LH> at 2026-11-23 12:00:00 UTC · breach case `case-1`\n"
        "Resolved by <@U024BE7LH> at 2026-11-23 12:00:02 UTC")


# --- wiring, secrets --------------------------------------------------------------------------------


def test_secrets_never_appear_in_logs(tmp_path, fake, clock, caplog):
    caplog.set_level(logging.DEBUG)
    n = make(tmp_path, fake, clock)
    fake.fail("chat.postMessage", "500")
    send(n, alert())
    n.deliver()
    fake.stop()
    clock.advance(seconds=5)
    n.deliver()
    fake.start()
    clock.advance(seconds=5)
    n.deliver()
    v = SignatureVerifier(SECRET, clock=clock)
    handler = InteractionHandler(n, v)
    handler.handle({"X-Slack-Request-Timestamp": "1", "X-Slack-Signature": "v0=00"}, b"payload=x")
    n.close()
    assert "chat.postMessage" in caplog.text or "slack" in caplog.text
    assert fake.token not in caplog.text and SECRET not in caplog.text
    s = Settings(slack_token=fake.token, slack_signing_secret=SECRET)
    assert fake.token not in repr(s) and fake.token not in str(s.model_dump())


def test_alert_sinks_pick_slack_with_a_token_and_the_console_without(tmp_path, fake):
    from rich.console import Console

    from access_audit.app import alert_sinks
    from access_audit.notify.console import ConsoleNotifier, JsonlAlertSink
    from access_audit.notify.webhook import WebhookNotifier

    def kinds(settings: Settings, console: Any) -> list[type]:
        sinks = alert_sinks(settings, console)
        for s in sinks:
            s.close()
        return [type(s) for s in sinks]

    console = Console(file=open(tmp_path / "out.txt", "w"))  # noqa: SIM115
    assert kinds(Settings(data_dir=tmp_path), console) == [ConsoleNotifier, JsonlAlertSink]
    assert kinds(Settings(data_dir=tmp_path), None) == [JsonlAlertSink]
    token_file = tmp_path / "token"
    token_file.write_text(fake.token + "\n")
    s = Settings(data_dir=tmp_path, slack_token_file=token_file, slack_base_url=fake.base_url,
                 webhook_url="http://127.0.0.1:9/hook")
    sinks = alert_sinks(s, console)
    assert [type(x) for x in sinks] == [SlackNotifier, WebhookNotifier, JsonlAlertSink]
    assert sinks[0].client.token == fake.token
    sinks[1].drain_s = 0
    for x in sinks:
        x.close()
    with pytest.raises(ConfigError, match="secrets file"):
        alert_sinks(Settings(data_dir=tmp_path, slack_token_file=tmp_path / "missing"), console)


def test_run_delivers_to_slack_when_a_token_is_set(tmp_path, fake):
    from access_audit.cli import app

    log = tmp_path / "auth.log"
    log.write_text("Dec 10 11:03:40 LabSZ sshd[25539]: Accepted publickey for root from 203.0.113.7 port 50011 "
                   "ssh2: RSA SHA256:abc\n")
    env = {"ACCESS_AUDIT_SLACK_TOKEN": fake.token, "ACCESS_AUDIT_SLACK_BASE_URL": fake.base_url,
           "ACCESS_AUDIT_SLACK_CHANNEL": "#soc"}
    res = CliRunner().invoke(app, ["run", "-i", str(log), "--year", "2024", "--data-dir", str(tmp_path / "d")],
                             env=env)
    assert res.exit_code == 0, res.output
    [post] = fake.posts("#soc")
    assert post["text"] == "HIGH: root logged in on LabSZ from 203.0.113.7"
    assert (tmp_path / "d" / "outbox.db").exists()
