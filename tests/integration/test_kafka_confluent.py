"""Both Kafka clients against the real broker and Elasticsearch of scripts/services.

The pipeline tests of test_kafka_pipeline.py run here once per client (``ACCESS_AUDIT_KAFKA_CLIENT``
set on the worker and on ``ship``): exact counts, replay without duplicates, SIGKILL mid-backlog,
Elasticsearch down for 30 s, two workers splitting the partitions, a broker that is down. The
tests below pin what the confluent adapter adds: offsets committed after the store and never
before, the same records (headers) whichever client shipped or consumed them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_kafka_pipeline import (
    BOOTSTRAP,
    REPO,
    Env,
    create_topics,
    es,
    expected_events,
    kafka_admin,
    synthetic_auth_log,
    test_drain_replay_alerts_and_dead_letters,
    test_elasticsearch_down_for_30s_loses_nothing,
    test_sigkill_mid_backlog_loses_and_doubles_nothing,
    test_two_workers_split_partitions_with_the_same_result,
)

from access_audit.alert.manager import AlertManager
from access_audit.core.errors import StoreUnavailableError
from access_audit.core.records import RawRecord
from access_audit.detect.engine import DetectionEngine
from access_audit.detect.loader import load_rules
from access_audit.ingest.files import LineReader
from access_audit.parse import ParserRegistry
from access_audit.pipeline import Pipeline
from access_audit.settings import Settings
from access_audit.store.sqlite import SqliteStore

pytestmark = pytest.mark.integration

CLIENTS = ["confluent", "kafka-python"]

# The pipeline tests, collected again here with the parametrised ``env`` fixture below.
__all__ = ["es", "kafka_admin", "test_drain_replay_alerts_and_dead_letters",
           "test_elasticsearch_down_for_30s_loses_nothing", "test_sigkill_mid_backlog_loses_and_doubles_nothing",
           "test_two_workers_split_partitions_with_the_same_result"]


@pytest.fixture(params=CLIENTS)
def client(request) -> str:
    return request.param


@pytest.fixture
def env(kafka_admin, es, client: str) -> Iterator[Env]:
    e = Env(kafka_admin, es)
    e.env["ACCESS_AUDIT_KAFKA_CLIENT"] = client
    yield e
    e.cleanup(kafka_admin)


def test_worker_waits_for_a_broker_that_is_down(tmp_path: Path, client: str):
    env = {**os.environ, "ACCESS_AUDIT_BUS": "kafka", "ACCESS_AUDIT_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
           "ACCESS_AUDIT_DATA_DIR": str(tmp_path), "ACCESS_AUDIT_KAFKA_CLIENT": client}
    w = subprocess.Popen([sys.executable, "-m", "access_audit.cli", "worker"], env=env, cwd=REPO,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        time.sleep(8)
        assert w.poll() is None, "the worker died instead of waiting for the broker"
    finally:
        w.terminate()
        _, errs = w.communicate(timeout=30)
    assert b"127.0.0.1:1" in errs and (b"ECONNREFUSED" in errs or b"unreachable" in errs), errs[-2000:]


# --- the confluent adapter's own contract -----------------------------------------------------------

def _settings(tag: str, topic: str, client: str = "confluent", **kw) -> Settings:
    return Settings(bus="kafka", kafka_bootstrap_servers=BOOTSTRAP, kafka_topics=[topic], kafka_client=client,
                    kafka_group_id=f"g{tag}", kafka_alerts_topic=f"t{tag}.alerts",
                    kafka_dead_letter_topic=f"t{tag}.dead", **kw)


@pytest.fixture
def topics(kafka_admin) -> Iterator[tuple[str, str]]:
    from kafka.admin import NewTopic

    tag = uuid.uuid4().hex[:8]
    names = [f"t{tag}.raw", f"t{tag}.alerts", f"t{tag}.dead"]
    create_topics(kafka_admin, [NewTopic(t, 3, 1) for t in names])
    yield tag, names[0]
    kafka_admin.delete_topics(names)


def _committed(settings: Settings, topic: str, partitions: int = 3) -> int:
    """Sum of the group's committed offsets, read from the broker by a consumer outside the group."""
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": settings.kafka_group_id, "enable.auto.commit": False})
    try:
        got = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
    finally:
        c.close()
    return sum(max(0, tp.offset) for tp in got)


class CommitWatchingStore(SqliteStore):
    """The real SQLite store; at every write it reads the group's committed offsets from the broker,
    and it is unavailable once (the second batch), as a store outage would make it."""

    def __init__(self, path: Path, settings: Settings, topic: str) -> None:
        super().__init__(path)
        self.settings, self.topic = settings, topic
        self.pipeline: Pipeline | None = None
        self.seen: list[tuple[int, int]] = []  # (records of the batches before, committed offsets)
        self.calls = 0

    def write_events(self, events, docs=None):  # type: ignore[no-untyped-def]
        assert self.pipeline is not None
        self.seen.append((self.pipeline.stats.records, _committed(self.settings, self.topic)))
        self.calls += 1
        if self.calls == 2:
            raise StoreUnavailableError("store outage injected by the test")
        return super().write_events(events, docs)


def _run_pipeline(settings: Settings, store: SqliteStore, until_records: int, timeout_s: float = 300) -> Pipeline:
    from access_audit.ingest.kafka_confluent import ConfluentAlertSink, ConfluentDeadLetterSink, ConfluentRecordSource

    source = ConfluentRecordSource(settings)
    alerts, dead = ConfluentAlertSink(settings), ConfluentDeadLetterSink(settings)
    p = Pipeline(registry=ParserRegistry(), engine=DetectionEngine(load_rules([], include_default=True).rules),
                 alerts=AlertManager(), store=store, sinks=[alerts], dead_letter_sinks=[dead])
    if isinstance(store, CommitWatchingStore):
        store.pipeline = p
    stop = threading.Event()
    threading.Timer(timeout_s, stop.set).start()
    try:
        p.run(source, batch_size=500, stop=stop, until_exhausted=False,
              on_batch=lambda _r: stop.set() if p.stats.records >= until_records else None)
    finally:
        stop.set()
        source.close()
        alerts.close()
        dead.close()
    return p


def test_confluent_commits_after_the_store_and_never_before(topics, tmp_path: Path):
    from access_audit.ingest.kafka_confluent import ship

    tag, topic = topics
    settings = _settings(tag, topic, batch_size=500)
    junk = tmp_path / "junk.log"
    junk.write_bytes(b"\x00\xff not a log line\n{\"truncated\": \n")
    files = [synthetic_auth_log(tmp_path / "bulk.log", 4998, seed=5), junk]
    n_ev, n_dl = expected_events(*files, year=2025)
    assert n_dl == 2
    shipped = ship(settings, LineReader(files, year=2025), topic, key_of=lambda r: r.origin.encode())
    assert shipped == 5000

    store = CommitWatchingStore(tmp_path / "a.db", settings, topic)
    p = _run_pipeline(settings, store, shipped)
    assert p.stats.records == shipped and p.stats.events == n_ev and p.stats.dead_letters == n_dl
    assert p.stats.store_retries == 1, "the injected outage was retried"
    # At every write the broker holds exactly the offsets of the batches before it: the batch being
    # stored is not committed yet (also while the store is down), and every earlier batch is.
    assert len(store.seen) >= 11
    assert all(committed == before for before, committed in store.seen), store.seen
    assert store.seen[1] == store.seen[2], "the outage and its retry see the same committed offsets"
    assert _committed(settings, topic) == shipped
    assert store.stats()["events"]["total"] == n_ev
    store.close()

    # Replay from offset 0 with a fresh group into the same store: every event is known, nothing new.
    replay = SqliteStore(tmp_path / "a.db")
    p2 = _run_pipeline(_settings(tag + "r", topic, batch_size=500), replay, shipped)
    assert p2.stats.records == shipped and p2.stats.events_new == 0 and p2.stats.alerts_new == 0
    assert replay.stats()["events"]["total"] == n_ev
    replay.close()


@pytest.mark.parametrize(("shipper", "consumer"), [("kafka-python", "confluent"), ("confluent", "kafka-python")])
def test_records_are_the_same_whichever_client_ships_or_consumes(topics, shipper: str, consumer: str):
    from access_audit.app import kafka_adapters

    tag, topic = topics
    line = b"Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user webmaster from 173.234.31.186"
    recs = [RawRecord(line, f"/var/log/auth.log:{i}", "/var/log/auth.log", "syslog", 2025 if i % 2 else None)
            for i in range(40)]
    recs.append(RawRecord(b'{"no": "headers but the source"}', "x:1", "stdin", None, None))
    ship_settings = _settings(tag, topic, shipper)
    assert kafka_adapters(ship_settings).ship(ship_settings, recs, topic) == len(recs)
    got: list[RawRecord] = []
    for client in (shipper, consumer):
        settings = _settings(f"{tag}{client}", topic, client)
        src = kafka_adapters(settings).source(settings)
        out: list[RawRecord] = []
        deadline = time.monotonic() + 60
        while not out and time.monotonic() < deadline:
            out.extend(src.poll(5, 1.0))
        assert 0 < src.lag() <= len(recs) - len(out), client  # what the last fetch told, not a broker query
        while len(out) < len(recs) and time.monotonic() < deadline:
            out.extend(src.poll(100, 1.0))
        assert src.lag() == 0, client
        src.close()
        assert sorted(out, key=lambda r: r.origin) == sorted(recs, key=lambda r: r.origin), client
        got.extend(out)
    assert len(got) == 2 * len(recs)
