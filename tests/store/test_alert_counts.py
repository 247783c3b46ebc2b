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


@pytest.mark.integration
def test_elasticsearch_counts_an_alert_whose_answer_was_lost_once(es_url: str) -> None:
    """The bulk request reaches Elasticsearch, which creates the alert; the answer comes after the
    client's timeout (a fault proxy holds it). The pipeline writes the batch again: 200, not 201,
    and the alert must still be counted created, once."""
    import sys
    from urllib.parse import urlparse

    sys.path.insert(0, str(Path(__file__).parents[1] / "faults"))
    from proxy import FaultProxy

    from access_audit.core.errors import StoreUnavailableError
    from access_audit.store.elasticsearch import ElasticsearchStore

    u = urlparse(es_url)
    px = FaultProxy((u.hostname or "127.0.0.1", u.port or 9200)).start()
    s = ElasticsearchStore(px.url, prefix=f"aa-ac-{uuid.uuid4().hex[:8]}", request_timeout=1.0, max_retries=0)
    s.setup()
    try:
        assert s.write_alerts([alert("a")]) == {"a"}
        px.set("slow_answer", delay_s=2.0, match=b"/_bulk")
        with pytest.raises(StoreUnavailableError):
            s.write_alerts([alert("b"), alert("a", 2)])
        assert px.answers_held == 1
        px.set("pass")
        s.refresh()
        assert set(s.alerts_by_ids(["a", "b"])) == {"a", "b"}  # Elasticsearch did the work
        assert s.write_alerts([alert("b"), alert("a", 2)]) == {"b"}  # the retry: b counted, a not
        assert s.write_alerts([alert("b", 3)]) == set()  # and only once
        s.refresh()
        assert s.stats()["alerts"]["total"] == 2
    finally:
        px.set("pass")
        s.es.indices.delete(index=f"{s.prefix}-*", ignore_unavailable=True)
        s.close()
        px.stop()


# --- the count of a run: the store's answer, through the real embedded pipeline -----------------

ROOT = "Dec 10 11:{m:02d}:40 LabSZ sshd[255{m:02d}]: Accepted publickey for root from 203.0.113.7 port 500{m:02d} ssh2"


def _records(tmp: Path, name: str, minute: int) -> list:
    from access_audit.ingest.files import LineReader

    f = tmp / name
    f.write_text(ROOT.format(m=minute) + "\n")
    return list(LineReader([f]))


def _worker(data_dir: Path):
    from access_audit.app import build_embedded
    from access_audit.settings import Settings
    from access_audit.testing import FrozenClock, ListSink

    return build_embedded(Settings(data_dir=data_dir), sinks=[ListSink()], clock=FrozenClock())


def _killed_before_its_checkpoint(tmp_path: Path):
    """A worker stores a root login's alert and dies before its checkpoint; the next one gets a
    second root login of the same host, address and hour: the same alert id (decisions §3), which
    its alert manager does not know and opens as new."""
    data = tmp_path / "data"
    first = _worker(data)
    first.pipeline.process(_records(tmp_path, "a.log", 3))  # process: no checkpoint
    first.store.close()
    return first, _worker(data)


def test_an_alert_the_manager_opens_again_is_not_new_by_the_store(tmp_path: Path) -> None:
    from access_audit.alert.created import flag_created

    _, second = _killed_before_its_checkpoint(tmp_path)
    batch = second.pipeline.prepare(_records(tmp_path, "b.log", 20))
    second.pipeline.detect(batch)
    [(alert_, manager_new)] = batch.alert_updates
    assert alert_.rule_id == "ssh_root_login" and manager_new  # the manager's memory: new
    created = second.store.write_alerts([alert_])
    assert created == set() and second.store.stats()["alerts"]["total"] == 1
    assert flag_created(batch.alert_updates, created) == [(alert_, False)]  # the store's answer
    second.store.close()


def test_flags_follow_the_store_once_per_id_and_survive_a_retried_write() -> None:
    from access_audit.alert.created import flag_created

    a, a2, b = alert("a"), alert("a", 2), alert("b")
    flagged = flag_created([(a, True), (a2, True), (b, True)], {"a"})
    assert [n for _, n in flagged] == [True, False, False]
    # The pipeline writes the batch again (the alerts topic failed after the store took them):
    # the store now creates nothing, and the first answer stands.
    assert [n for _, n in flag_created(flagged, set())] == [True, False, False]
    assert [n for _, n in flag_created([(a, False)], {"a"})] == [True]


def test_alerts_new_of_two_runs_equals_the_alerts_stored(tmp_path: Path) -> None:
    first, second = _killed_before_its_checkpoint(tmp_path)
    second.pipeline.process(_records(tmp_path, "b.log", 20))
    stored = second.store.stats()["alerts"]["total"]
    second.store.close()
    assert stored == 1
    assert first.pipeline.stats.alerts_new + second.pipeline.stats.alerts_new == stored
