"""OneLogin events on Panther's fixtures (the only samples).

Counts are computed from the vendor JSON: of the 36 rows of ``OneLogin.Events.jsonl`` the ones
with a ``p_event_time`` (6) parse, by log type and auto-detected; the others have no time and are
dead letters ``missing timestamp``. With ``created_at`` added by the test, every row parses.
"""

from __future__ import annotations

import orjson
import pytest

from access_audit.core.events import AccessEvent, Outcome
from access_audit.core.records import DeadLetter, RawRecord
from access_audit.parse.onelogin import EVENT_TYPES

TIME_KEYS = ("created_at", "p_event_time")


def test_panther_dataset_parses_and_autodetects(panther, run_dataset):
    rows = panther("OneLogin.Events")
    rep = run_dataset(rows, "onelogin.events", TIME_KEYS)
    rep.assert_ok(min_rate=1.0)
    assert rep.parsed == rep.with_time == sum("p_event_time" in r["event"] for r in rows) == 6
    assert len(rep.timeless_failures) == len(rows) - 6


def test_every_row_with_its_time(panther, registry):
    rows = [r["event"] for r in panther("OneLogin.Events")]
    for i, rec in enumerate(rows):
        rec = {**rec, "created_at": "2026-11-20T10:00:00.000Z"}
        res = registry.parse(RawRecord(data=orjson.dumps(rec), origin=f"o:{i}", source="t", log_type="onelogin"))
        ev = res.events[0]
        tid = int(rec["event_type_id"])
        assert ev.labels["onelogin_event_type_id"] == str(tid)
        assert ev.event.action == EVENT_TYPES[tid][0] and ev.event.outcome is EVENT_TYPES[tid][3]
        actor = rec.get("actor_user_name") or rec.get("user_name")
        assert (ev.user.name if ev.user else None) == actor
        if rec.get("actor_user_name") and rec.get("user_name") and rec["actor_user_name"] != rec["user_name"]:
            assert ev.user.target.name == rec["user_name"]
        if "ipaddr" in rec:
            assert ev.source.ip == rec["ipaddr"]


def test_assumption_targets_the_assumed_user(panther, find, parse_one):
    rec = find(panther("OneLogin.Events"), "User assumed another user's account")
    ev = parse_one({**rec, "created_at": "2026-11-20T10:00:00Z"})
    assert isinstance(ev, AccessEvent) and ev.event.action == "user-assumed-user"
    assert ev.user.name == "Mountain Lion" and ev.user.target.name == "Bob Cat"
    assert ev.resource.type == "user" and ev.resource.name == "Bob Cat"


def test_failed_login_with_app_and_unknown_type(parse_one):
    ev = parse_one({"event_type_id": 6, "created_at": "2026-11-20T10:00:00Z", "user_name": "ann@example.org",
                    "user_id": 42, "ipaddr": "198.51.100.4", "app_name": "Jira", "app_id": 7,
                    "error_description": "Invalid password"})
    assert isinstance(ev, AccessEvent) and ev.event.outcome is Outcome.failure
    assert ev.event.reason == "Invalid password" and ev.user.email == "ann@example.org" and ev.user.id == "42"
    assert (ev.resource.type, ev.resource.id, ev.resource.name) == ("application", "7", "Jira")
    other = parse_one({"event_type_id": 9999, "created_at": "2026-11-20T10:00:00Z", "user_name": "ann"})
    assert isinstance(other, AccessEvent) and other.event.action == "onelogin-event-9999"
    assert other.event.category == [] and other.event.outcome is Outcome.unknown


@pytest.mark.parametrize(("rec", "log_type", "names"), [
    ({"event_type_id": "five", "user_name": "a", "created_at": "2026-01-01T00:00:00Z"}, None, "event_type_id='five'"),
    ({"user_name": "a", "created_at": "2026-01-01T00:00:00Z"}, "onelogin.events", "event_type_id is absent"),
    ({"event_type_id": 5, "user_name": "a", "created_at": 12}, None, "created_at=12 is before"),
    ({"event_type_id": 5, "user_name": "a", "ipaddr": ["x"], "created_at": "2026-01-01T00:00:00Z"}, None,
     "ipaddr is list"),
])
def test_broken_records_are_dead_letters_naming_the_field(parse_one, rec, log_type, names):
    dl = parse_one(rec, log_type)
    assert isinstance(dl, DeadLetter) and names in dl.reason and dl.log_type == "onelogin.events", dl
