"""Box enterprise events on Panther's fixtures (the only samples).

Counts are computed from the vendor JSON: 4 of the 31 rows of ``Box.Event.jsonl`` have a time
(Panther's ``p_event_time``) and parse, by log type and auto-detected; the other 27 have none
(no ``created_at``) and are dead letters ``missing timestamp``. With the documented ``created_at``
added by the test, 30 parse; the one without ``created_by`` is a dead letter naming it.
"""

from __future__ import annotations

import orjson
import pytest

from access_audit.core.events import AccessEvent, Outcome
from access_audit.core.records import DeadLetter, RawRecord

TIME_KEYS = ("created_at", "recorded_at", "p_event_time")
CREATED_AT = "2026-11-20T10:00:00-08:00"


def test_box_fixtures_with_a_time_parse_and_autodetect(panther, run_dataset):
    rows = panther("Box.Event")
    rep = run_dataset(rows, "box.event", TIME_KEYS)
    rep.assert_ok(min_rate=1.0)
    assert len(rows) == 31
    assert rep.parsed == rep.with_time == sum("p_event_time" in r["event"] for r in rows) == 4
    assert len(rep.timeless_failures) == 27
    assert all("missing timestamp" in reason and "created_at" in reason for _, reason in rep.timeless_failures)
    for i, ev in rep.events.items():
        src = rows[i]["event"]
        assert ev.event.action == src["event_type"] and ev.user.name == src["created_by"]["login"]
        assert ev.source.ip == src["ip_address"] == "111.111.111.111"
    failed = [ev for ev in rep.events.values() if ev.event.action == "FAILED_LOGIN"]
    assert len(failed) == 2
    for ev in failed:
        assert ev.event.category == ["authentication"] and ev.event.outcome is Outcome.failure
        assert (ev.resource.type, ev.resource.id) == ("user", "12345678") and ev.user.target is None


def _timed(rows):
    return [{**r["event"], "created_at": CREATED_AT} for r in rows]


def test_box_fixtures_with_their_time(panther, registry):
    recs = _timed(panther("Box.Event"))
    parsed, dead = {}, {}
    for i, rec in enumerate(recs):
        data = orjson.dumps(rec)
        typed = registry.parse(RawRecord(data=data, origin=f"b:{i}", source="t", log_type="box.event"))
        auto = registry.parse(RawRecord(data=data, origin=f"b:{i}", source="t"))
        if typed.events:
            parsed[i] = typed.events[0]
            assert auto.events and auto.events[0].id == typed.events[0].id
        else:
            dead[i] = typed.dead_letters[0].reason
    assert len(parsed) == 30 and list(dead) == [6] and "created_by is absent" in dead[6]
    assert all(ev.timestamp.isoformat() == "2026-11-20T18:00:00+00:00" for ev in parsed.values())
    # "File marked malicious": the file, its owner and parent folder
    ev = parsed[8]
    assert ev.event.kind == "alert" and ev.event.category == ["malware"]
    assert (ev.resource.type, ev.resource.id, ev.resource.name, ev.resource.owner) == (
        "file", "123456789012", "bad_file.pdf", "cat@example")
    assert ev.labels["box_parent_folder"] == "Parent_Folder"
    # "Anomalous Download Event": the Shield alert in the JSON-string details
    ev = parsed[3]
    assert ev.event.action == "SHIELD_ALERT" and ev.event.reason == "Anomalous Download"
    assert ev.labels["box_risk_score"] == "77" and ev.message.startswith("Significant increase in download")
    # "Malicious Content": ids written as numbers
    assert parsed[9].user.id == "12345678" and parsed[9].user.name == "bob@example"
    # "Access Granted": the user granted access is the target
    ev = parsed[1]
    assert ev.event.category == ["iam"] and ev.user.name == "cat@example"
    assert ev.user.target.name == "user@example" and ev.resource.type == "user"
    # "Previewed Anonymously": a file access with the address
    ev = parsed[5]
    assert (ev.event.category, ev.event.type) == (["file"], ["access"]) and ev.source.ip == "1.2.3.4"
    assert ev.user.full_name == "Unknown User" and ev.user.id == "2"
    # "Box - Rogue State Sign-In"
    ev = parsed[30]
    assert ev.event.action == "LOGIN" and ev.event.outcome is Outcome.success and ev.source.ip == "1.1.1.1"


@pytest.mark.parametrize(("rec", "log_type", "names"), [
    ({"type": "event", "event_type": "LOGIN", "created_by": {"login": "a@b"}, "created_at": "soon"}, None,
     "created_at='soon'"),
    ({"type": "event", "event_type": "LOGIN", "created_at": CREATED_AT}, None, "created_by is absent"),
    ({"type": "event", "event_type": "LOGIN", "created_by": {"type": "user"}, "created_at": CREATED_AT}, None,
     "created_by has no login"),
    ({"type": "event", "created_by": {"login": "a@b"}, "created_at": CREATED_AT}, "box.event",
     "event_type is absent"),
    ({"type": "event", "event_type": "DOWNLOAD", "created_by": {"login": "a@b"}, "created_at": CREATED_AT,
      "source": "file"}, None, "source is str"),
])
def test_broken_records_are_dead_letters_naming_the_field(parse_one, rec, log_type, names):
    dl = parse_one(rec, log_type)
    assert isinstance(dl, DeadLetter) and names in dl.reason and dl.log_type == "box.event", dl


def test_a_documented_download_of_a_file_object(parse_one):
    ev = parse_one({"type": "event", "event_id": "e1", "event_type": "DOWNLOAD", "created_at": CREATED_AT,
                    "created_by": {"type": "user", "id": "11", "login": "ann@example.com", "name": "Ann"},
                    "source": {"type": "file", "id": "99", "name": "salaries.xlsx"},
                    "ip_address": "198.51.100.4", "session_id": "s1", "additional_details": "not json"})
    assert isinstance(ev, AccessEvent) and ev.event.dataset == "box.event"
    assert (ev.resource.type, ev.resource.id, ev.resource.name) == ("file", "99", "salaries.xlsx")
    assert ev.labels == {"box_event_id": "e1", "box_session_id": "s1"} and ev.user.email == "ann@example.com"
