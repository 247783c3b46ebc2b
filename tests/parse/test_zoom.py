"""Zoom operation logs and sign-in activity on Panther's fixtures (the only samples).

Counts are computed from the vendor JSON: 28 of the 29 rows of ``Zoom.Operation.jsonl`` have a
time (``time``, or Panther's ``p_event_time`` in one) and parse, by log type and auto-detected;
the other ("Non admin user update") has none and is a dead letter ``missing timestamp``. The one
row of ``Zoom.Activity.jsonl`` parses.
"""

from __future__ import annotations

import pytest

from access_audit.core.events import AccessEvent, Outcome
from access_audit.core.records import DeadLetter

TIME_KEYS = ("time", "p_event_time")


def test_operation_logs(panther, run_dataset, find):
    rows = panther("Zoom.Operation")
    rep = run_dataset(rows, "zoom.operation", TIME_KEYS)
    rep.assert_ok(min_rate=1.0)
    assert len(rows) == 29 and rep.parsed == rep.with_time == 28
    assert [lb for lb, _ in rep.timeless_failures] == [
        "#3 Zoom.All.Meetings.Secured.With.One.Option.Disabled / Non admin user update"]
    for i, ev in rep.events.items():
        src = rows[i]["event"]
        assert ev.event.action == src["action"] and ev.user.name == src["operator"]
        assert ev.message == src["operation_detail"] and ev.labels["zoom_category_type"] == src["category_type"]
        assert ev.event.category == (["configuration"] if src["category_type"] == "Account" else ["iam"])
    by_name = {rows[i]["test_name"]: ev for i, ev in rep.events.items()}
    ev = by_name["Admin Promotion Event"]
    assert (ev.resource.type, ev.resource.name, ev.user.target.name) == ("user", "homer.simpson@duff.io",
                                                                        "homer.simpson@duff.io")
    assert ev.user.name == "admin-test%1223+123@duff.dev.co" and ev.labels["zoom_setting"] == "Change Role"
    assert ev.timestamp.isoformat() == "2022-07-05T20:28:48+00:00" and ev.event.type == ["change"]
    ev = by_name["User Creation Event - Zoom"]  # the one with p_event_time only
    assert ev.event.type == ["creation"] and ev.resource.name == "homer@simpson.io"
    assert ev.timestamp.isoformat() == "2021-06-27T00:08:28.792000+00:00"
    ev = by_name["Meeting Passcode Disabled"]
    assert (ev.resource.type, ev.resource.name) == ("group", "Springfield")
    assert by_name["Add User Group"].resource.name == "Engineers"
    ev = by_name["2FA Disabled"]
    assert (ev.resource.type, ev.resource.name, ev.labels["zoom_setting"]) == ("account", "Zoom", "Security")
    assert ev.user.target is None and ev.event.outcome is Outcome.success


def test_sign_in_activity(panther, run_dataset):
    rows = panther("Zoom.Activity")
    rep = run_dataset(rows, "zoom.activity", TIME_KEYS)
    rep.assert_ok(min_rate=1.0)
    assert rep.parsed == len(rows) == 1
    ev = rep.events[0]
    assert ev.event.action == "Sign in" and ev.event.category == ["authentication"] and ev.event.type == ["start"]
    assert ev.user.email == "dude.lightbulb@example.co" and ev.source.ip == "1.1.1.1"
    assert ev.user_agent.original == "mac 5.15.7.21404" and ev.timestamp.isoformat() == "2023-08-14T16:17:05+00:00"
    assert (ev.resource.type, ev.resource.name) == ("application", "Zoom")


def test_sign_out(parse_one):
    ev = parse_one({"email": "ann@example.com", "time": "2026-11-20T10:00:00Z", "type": "Sign out",
                    "ip_address": "198.51.100.7", "client_type": "Browser", "version": "-"})
    assert isinstance(ev, AccessEvent) and ev.event.dataset == "zoom.activity" and ev.event.type == ["end"]


@pytest.mark.parametrize(("rec", "log_type", "names"), [
    ({"action": "Update", "category_type": "User", "operator": "a@b.io", "time": "yesterday"}, None,
     "time='yesterday'"),
    ({"action": "Update", "category_type": "User", "operator": None, "time": "2026-11-20 10:00:00"}, None,
     "operator is absent"),
    ({"category_type": "User", "operator": "a@b.io", "time": "2026-11-20 10:00:00"}, "zoom.operation",
     "action is absent"),
    ({"action": "Update", "category_type": "User", "operator": 7, "time": "2026-11-20 10:00:00"}, None,
     "operator is int"),
    ({"email": None, "type": "Sign in", "time": "2026-11-20 10:00:00"}, None, "email is absent"),
    ({"email": "a@b.io", "type": "Sign in"}, None, "none of time, p_event_time"),
])
def test_broken_records_are_dead_letters_naming_the_field(parse_one, rec, log_type, names):
    dl = parse_one(rec, log_type)
    assert isinstance(dl, DeadLetter) and names in dl.reason and dl.log_type.startswith("zoom."), dl


def test_a_blank_action_is_kept_not_a_crash(parse_one):
    # found by fuzzing: the verb is the action's last word, and "  " has none
    ev = parse_one({"action": "  ", "category_type": "Account", "operator": "a@b.io", "time": "2026-11-20 10:00:00"})
    assert isinstance(ev, AccessEvent) and ev.event.action == "  " and ev.event.type == ["change"]
