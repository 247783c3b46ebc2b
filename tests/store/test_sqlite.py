from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from access_audit.core.records import DeadLetter, RawRecord
from access_audit.parse import ParserRegistry
from access_audit.store.query import Query, parse_query, parse_when
from access_audit.store.sqlite import SqliteStore
from access_audit.testing import FrozenClock

LINES = [
    "Nov  2 08:00:00 bastion sshd[1]: Accepted publickey for alice from 10.1.2.3 port 50000 ssh2",
    "Nov  2 08:05:00 bastion sshd[2]: Failed password for bob from 203.0.113.9 port 50001 ssh2",
    "Nov  2 08:06:00 bastion sshd[2]: Failed password for bob from 203.0.113.9 port 50002 ssh2",
    "Nov  2 09:00:00 bastion sshd[3]: Accepted password for bob from 203.0.113.9 port 50003 ssh2",
    "Nov  2 10:00:00 db-01 sshd[4]: Invalid user oracle from 198.51.100.7 port 4444",
]


@pytest.fixture
def store(tmp_path: Path):
    s = SqliteStore(tmp_path / "events.db")
    reg = ParserRegistry(clock=FrozenClock())
    evs = [e for i, line in enumerate(LINES) for e in reg.parse(RawRecord(line.encode(), f"f:{i}", "f",
                                                                            "syslog", 2026)).events]
    assert s.write_events(evs) == 5
    yield s
    s.close()


def ids(store, q: str, **kw) -> list[str]:
    return [f"{e.user.name}@{e.timestamp:%H:%M}" for e in store.search(Query(expr=parse_query(q), **kw))]


def test_replay_is_a_no_op(store, tmp_path):
    evs = store.search(Query())
    assert store.write_events(evs) == 0
    assert store.stats()["events"]["total"] == 5


def test_queries(store):
    assert ids(store, "user.name:bob AND event.outcome:failure") == ["bob@08:06", "bob@08:05"]
    assert ids(store, "NOT source.ip:10.0.0.0/8 AND event.outcome:success") == ["bob@09:00"]
    assert ids(store, "related.ip:10.1.2.3") == ["alice@08:00"]
    assert ids(store, "host.name:db*") == ["oracle@10:00"]
    assert ids(store, "source.port:>=50002 AND source.port:<50003") == ["bob@08:06"]
    assert ids(store, "authentication.method:publickey OR event.reason:invalid_user") == ["oracle@10:00", "alice@08:00"]
    assert ids(store, '"invalid user"') == ["oracle@10:00"]
    assert ids(store, "user.name:bob", order="asc", limit=2) == ["bob@08:05", "bob@08:06"]
    since = datetime(2026, 11, 2, 8, 30, tzinfo=UTC)
    assert ids(store, "", since=since, until=since + timedelta(hours=1)) == ["bob@09:00"]


def test_injection_attempts_are_data(store):
    assert ids(store, "user.name:\"bob' OR '1'='1\"") == []
    assert ids(store, 'user.name:"x\') UNION SELECT doc FROM events --"') == []
    assert store.stats()["events"]["total"] == 5


def test_search_after_pages_through_everything(store):
    seen, after = [], None
    while True:
        page = store.search(Query(limit=2, after=after))
        if not page:
            break
        seen += [e.id for e in page]
        after = (page[-1].timestamp.isoformat(), page[-1].id)
    assert len(seen) == len(set(seen)) == 5


def test_dead_letters_keep_raw_bytes_and_are_idempotent(tmp_path):
    s = SqliteStore(tmp_path / "x.db")
    dl = DeadLetter(raw=b"\x00\xffjunk", reason="unrecognised format", source="f", origin="f:9", log_type=None,
                    stage="parse", received_at=datetime(2026, 1, 1, tzinfo=UTC))
    s.write_dead_letters([dl])
    s.write_dead_letters([dl])
    (row,) = s.dead_letters()
    assert row["reason"] == "unrecognised format" and row["origin"] == "f:9"
    assert s.stats()["dead_letters"] == {"total": 1, "by_log_type": {"unknown": 1},
                                         "top_reasons": [{"reason": "unrecognised format", "count": 1}]}


def test_parse_when():
    now = datetime(2026, 11, 23, 12, tzinfo=UTC)
    assert parse_when("24h", now) == now - timedelta(hours=24)
    assert parse_when("2026-11-01", now) == datetime(2026, 11, 1, tzinfo=UTC)
