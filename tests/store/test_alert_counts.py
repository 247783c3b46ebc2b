"""``write_alerts`` returns the ids it created, so that a run's count of new alerts is the number of
alert documents it added to the store, by construction (issue 15: ``alerts_new: 96`` against 95
documents). Same answer from both stores."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from access_audit.core.alerts import Alert, Severity
from access_audit.store.sqlite import SqliteStore

T0 = datetime(2026, 11, 23, 11, 0, tzinfo=UTC)


def alert(i: str, count: int = 1) -> Alert:
    return Alert(id=i, rule_id="ssh_brute_force", title="t", severity=Severity.high, risk_score=75,
                 dedup_key=i, first_seen=T0, last_seen=T0, created_at=T0, count=count)


def check(store) -> None:
    assert store.write_alerts([alert("a"), alert("b")]) == {"a", "b"}
    # The same finding raised "new" again (a re-opened or replayed alert): not a new document.
    assert store.write_alerts([alert("a", 3), alert("c"), alert("a", 4)]) == {"c"}
    assert store.write_alerts([alert("b", 2)], lifecycle=True) == set()
    assert store.write_alerts([]) == set()


def test_sqlite(tmp_path: Path) -> None:
    s = SqliteStore(tmp_path / "events.db")
    check(s)
    assert s.stats()["alerts"]["total"] == 3
    s.close()


@pytest.mark.integration
def test_elasticsearch(es_url: str) -> None:
    from access_audit.store.elasticsearch import ElasticsearchStore

    s = ElasticsearchStore(es_url, prefix=f"aa-ac-{uuid.uuid4().hex[:8]}")
    s.setup()
    try:
        check(s)
        s.refresh()
        assert s.stats()["alerts"]["total"] == 3
    finally:
        s.es.indices.delete(index=f"{s.prefix}-*", ignore_unavailable=True)
        s.close()
