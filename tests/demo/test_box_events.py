"""The demo's Box source: HR's and finance's admin_logs events, in Box's Events API shape, and no alert."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

import orjson
import pytest

from access_audit.core.records import RawRecord
from access_audit.demo import COMPANY, generate
from access_audit.demo.generator import BOX, BOX_USERS, DEFAULT_START, SRC_BOX
from access_audit.parse import ParserRegistry
from access_audit.testing import FrozenClock


@pytest.fixture(scope="module")
def week():
    return generate(seed=7, days=7)


def test_events_have_the_admin_logs_shape(week) -> None:
    recs, _ = week
    mine = [(r, orjson.loads(r.data)) for r in recs if r.log_type == BOX]
    assert mine and {r.source for r, _ in mine} == {SRC_BOX}
    team = {COMPANY.user(n).email for n in BOX_USERS}
    types: Counter[str] = Counter()
    sessions: dict[str, set[str]] = {}
    for r, o in mine:
        assert o["type"] == "event" and o["created_by"]["login"] in team
        created = datetime.fromisoformat(o["created_at"])
        assert created == r.timestamp and created.utcoffset() in (timedelta(hours=1), timedelta(hours=2))
        assert datetime.fromisoformat(o["recorded_at"]) >= created
        types[o["event_type"]] += 1
        if o["event_type"] == "LOGIN":
            assert o["source"] == o["created_by"] and o["additional_details"] is None
        else:
            assert o["source"]["item_type"] == "file" and o["source"]["parent"]["type"] == "folder"
            if o["event_type"] == "UPLOAD":  # a new version only by the folder's owner
                assert o["source"]["owned_by"]["login"] == o["created_by"]["login"]
        sessions.setdefault(o["session_id"], set()).add(o["created_by"]["login"])
    assert set(types) == {"LOGIN", "PREVIEW", "DOWNLOAD", "UPLOAD"} and types["PREVIEW"] > types["DOWNLOAD"]
    assert all(len(who) == 1 for who in sessions.values())  # a session is one person's
    assert len(sessions) < len(mine)  # and holds several events


def test_parsed_fields(week) -> None:
    recs, _ = week
    reg = ParserRegistry(clock=FrozenClock(DEFAULT_START + timedelta(days=10)))
    actions: Counter[str] = Counter()
    for i, r in enumerate(x for x in recs if x.log_type == BOX):
        parser, _ = reg.detect(r.data)
        assert parser.name == BOX
        res = reg.parse(RawRecord(r.data, f"{r.source}:{i}", r.source, r.log_type))
        assert not res.dead_letters
        (ev,) = res.events
        assert ev.timestamp == r.timestamp and ev.event.outcome.value == "success" and ev.event.provider == "box"
        assert ev.user.email == ev.user.name and ev.source.ip and ev.user.target is None
        actions[ev.event.action] += 1
        if ev.event.action == "LOGIN":
            assert ev.event.category == ["authentication"] and ev.resource.type == "user"
        else:
            assert ev.event.category == ["file"] and ev.resource.type == "file" and ev.resource.owner
            assert ev.labels["box_parent_folder"] in ("Personeelsdossiers", "Salarisadministratie", "Arbodienst")
    assert set(actions) == {"LOGIN", "PREVIEW", "DOWNLOAD", "UPLOAD"}


def test_the_box_file_parses_and_raises_nothing(demo_source) -> None:
    path, run, n = demo_source(SRC_BOX, BOX)
    assert path.name == "box-events.jsonl"
    assert (run.stats.records, run.stats.events, run.stats.dead_letters, run.stored) == (n, n, 0, n)
    assert run.alerts == []  # active staff only (the finance employee on leave is silent)
