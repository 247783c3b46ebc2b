"""Production path against a real Kafka broker and a real Elasticsearch node (scripts/services).

Each test ships logs into its own topic with `access-audit ship`, runs `access-audit worker`
processes (consumer group -> parse -> Elasticsearch -> alerts/dead letters to Kafka) and checks
the acceptance criteria: exact counts, replay without duplicates, SIGKILL mid-backlog,
Elasticsearch down for 30 s, two workers splitting the partitions.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from access_audit.core.records import RawRecord
from access_audit.ingest.files import LineReader
from access_audit.parse import ParserRegistry

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
BOOTSTRAP = os.environ.get("ACCESS_AUDIT_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092")
ES_URL = os.environ.get("ACCESS_AUDIT_ELASTICSEARCH_URL", "http://127.0.0.1:19200")


def _unavailable(what: str, e: Exception) -> None:
    msg = f"{what} is not reachable ({e}); run scripts/services start"
    if os.environ.get("CI"):
        pytest.fail(msg)
    pytest.skip(msg)


@pytest.fixture(scope="module")
def kafka_admin():
    from kafka.admin import KafkaAdminClient

    try:
        admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP, request_timeout_ms=10_000)
    except Exception as e:
        _unavailable("Kafka", e)
    yield admin
    admin.close()


@pytest.fixture(scope="module")
def es():
    from elasticsearch import Elasticsearch

    client = Elasticsearch(ES_URL, request_timeout=30)
    try:
        client.cluster.health(wait_for_status="yellow", timeout="30s")
    except Exception as e:
        _unavailable("Elasticsearch", e)
    yield client
    client.close()


def create_topics(admin, topics: list) -> None:
    """admin.create_topics, again if the module's admin connection went stale: the broker closes
    a connection idle for 10 minutes (connections.max.idle.ms) and kafka-python reconnects on the
    next try."""
    from kafka.errors import KafkaConnectionError

    for attempt in range(10):
        try:
            admin.create_topics(topics)
            return
        except KafkaConnectionError:
            if attempt == 9:
                raise
            time.sleep(1.0)


class Env:
    """One isolated setup: its own topics, consumer group and index prefix."""

    def __init__(self, admin, es, partitions: int = 3) -> None:
        from kafka.admin import NewTopic

        tag = uuid.uuid4().hex[:8]
        self.tag = tag
        self.raw, self.alerts, self.dead = f"t{tag}.raw", f"t{tag}.alerts", f"t{tag}.dead"
        create_topics(admin, [NewTopic(t, partitions, 1) for t in (self.raw, self.alerts, self.dead)])
        self.prefix = f"aa-it-{tag}"
        self.es = es
        self.env = {**os.environ, "ACCESS_AUDIT_BUS": "kafka", "ACCESS_AUDIT_STORE": "elasticsearch",
                    "ACCESS_AUDIT_KAFKA_BOOTSTRAP_SERVERS": BOOTSTRAP, "ACCESS_AUDIT_ELASTICSEARCH_URL": ES_URL,
                    "ACCESS_AUDIT_ELASTICSEARCH_INDEX_PREFIX": self.prefix,
                    "ACCESS_AUDIT_KAFKA_TOPICS": json.dumps([self.raw]),
                    "ACCESS_AUDIT_KAFKA_ALERTS_TOPIC": self.alerts,
                    "ACCESS_AUDIT_KAFKA_DEAD_LETTER_TOPIC": self.dead,
                    "ACCESS_AUDIT_KAFKA_GROUP_ID": f"g{tag}", "ACCESS_AUDIT_BATCH_SIZE": "2000"}

    def cli(self, *args: str, env: dict[str, str] | None = None, timeout: float = 900) -> dict:
        r = subprocess.run([sys.executable, "-m", "access_audit.cli", *args], capture_output=True,
                           env=env or self.env, timeout=timeout, cwd=REPO)
        assert r.returncode == 0, r.stderr.decode()[-3000:]
        return json.loads(r.stdout.decode().strip().splitlines()[-1])

    def worker(self, *extra: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-m", "access_audit.cli", "worker", *extra],
                                env=env or self.env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def ship(self, *files: Path, **kw: str) -> int:
        extra = [x for k, v in kw.items() for x in (f"--{k.replace('_', '-')}", v)]
        return self.cli("ship", *map(str, files), "--topic", self.raw, *extra)["shipped"]

    def doc_count(self) -> int:
        self.es.indices.refresh(index=f"{self.prefix}-events-*", ignore_unavailable=True)
        return int(self.es.count(index=f"{self.prefix}-events-*", ignore_unavailable=True)["count"])

    def index_docs(self, suffix: str) -> list[dict]:
        self.es.indices.refresh(index=f"{self.prefix}-{suffix}", ignore_unavailable=True)
        res = self.es.search(index=f"{self.prefix}-{suffix}", size=10_000, ignore_unavailable=True)
        return [h["_source"] for h in res["hits"]["hits"]]

    def topic_values(self, topic: str, timeout_s: float = 10) -> list[bytes]:
        from kafka import KafkaConsumer

        c = KafkaConsumer(topic, bootstrap_servers=BOOTSTRAP, auto_offset_reset="earliest",
                          enable_auto_commit=False, consumer_timeout_ms=int(timeout_s * 1000), group_id=None)
        vals = [m.value for m in c]
        c.close()
        return vals

    def cleanup(self, admin) -> None:
        self.es.indices.delete(index=f"{self.prefix}-*", ignore_unavailable=True)
        with contextlib.suppress(Exception):  # best effort (the hand-over topics too)
            handover = [t for t in admin.list_topics() if self.tag in t and ".by." in t]  # any group of this test
            admin.delete_topics([self.raw, self.alerts, self.dead, *handover])


@pytest.fixture
def env(kafka_admin, es) -> Iterator[Env]:
    e = Env(kafka_admin, es)
    yield e
    e.cleanup(kafka_admin)


def synthetic_auth_log(path: Path, n: int, seed: int = 1) -> Path:
    """n distinct, realistic sshd lines over a few days (used as the bulk of the backlog)."""
    rng = random.Random(seed)
    users = [f"user{i:03d}" for i in range(300)]
    with path.open("w") as fh:
        for i in range(n):
            day, sec = 2 + i * 3 // n, (i * 7) % 86400
            ts = f"Nov {day:2d} {sec // 3600:02d}:{sec // 60 % 60:02d}:{sec % 60:02d}"
            ip = f"203.0.{rng.randrange(0, 64)}.{rng.randrange(1, 255)}"
            u = rng.choice(users)
            kind = rng.random()
            if kind < 0.6:
                msg = f"Accepted publickey for {u} from {ip} port {rng.randrange(1024, 65535)} ssh2"
            elif kind < 0.9:
                msg = f"Failed password for {u} from {ip} port {rng.randrange(1024, 65535)} ssh2"
            else:
                msg = f"Disconnected from user {u} {ip} port {rng.randrange(1024, 65535)}"
            fh.write(f"{ts} bastion sshd[{1000 + i}]: {msg}\n")
    return path


def expected_events(*files: Path, year: int | None = None) -> tuple[int, int]:
    """(events, dead letters) when these files are parsed: the ground truth for counts."""
    reg = ParserRegistry()
    ev = dl = 0
    for rec in LineReader(list(files), year=year):
        res = reg.parse(RawRecord(rec.data, rec.origin, rec.source, rec.log_type, year))
        ev += len(res.events)
        dl += len(res.dead_letters)
    return ev, dl


def test_drain_replay_alerts_and_dead_letters(env: Env, openssh_log: Path, tmp_path: Path):
    bulk = synthetic_auth_log(tmp_path / "bulk.log", 100_000)
    junk = tmp_path / "junk.log"
    junk.write_bytes(b"\x00\xff not a log line\n{\"truncated\": \nDec 10 06:55:46 LabSZ sshd[1]: fine line ok\n")
    n_ev, n_dl = expected_events(openssh_log, bulk, junk, year=2025)
    assert n_dl == 2
    shipped = env.ship(openssh_log, bulk, junk, year="2025")
    assert shipped == 2000 + 100_000 + 3

    t0 = time.monotonic()
    stats = env.cli("worker", "--max-idle", "15")
    elapsed = time.monotonic() - t0
    assert stats["records"] == shipped and stats["events"] == n_ev and stats["dead_letters"] == n_dl
    assert env.doc_count() == n_ev, "every parsed event is in Elasticsearch exactly once"
    print(f"drained {shipped} records in {elapsed:.1f}s")

    dead = [json.loads(v) for v in env.topic_values(env.dead)]
    assert len(dead) == n_dl and all(d["reason"] and d["raw_b64"] for d in dead)
    dl_index = env.index_docs("dead-letters")
    assert sorted(d["reason"] for d in dl_index) == sorted(d["reason"] for d in dead)

    alerts = [json.loads(v) for v in env.topic_values(env.alerts)]
    brute_ips = {a["source_ip"] for a in alerts if a["rule_id"] == "ssh_brute_force"}
    assert {"183.62.140.253", "187.141.143.180", "103.99.0.122"} <= brute_ips
    indexed = {a["id"]: a for a in env.index_docs("alerts")}
    assert {a["id"] for a in alerts} == set(indexed)

    # Replay the whole topic from offset 0 with a fresh consumer group: nothing new.
    replay_env = {**env.env, "ACCESS_AUDIT_KAFKA_GROUP_ID": f"replay-{env.tag}"}
    stats2 = env.cli("worker", "--max-idle", "15", env=replay_env)
    assert stats2["records"] == shipped and stats2["events_new"] == 0
    assert env.doc_count() == n_ev
    assert len(env.index_docs("dead-letters")) == n_dl


def test_sigkill_mid_backlog_loses_and_doubles_nothing(env: Env, tmp_path: Path):
    bulk = synthetic_auth_log(tmp_path / "bulk.log", 60_000, seed=2)
    n_ev, _ = expected_events(bulk, year=2026)
    env.ship(bulk, year="2026")
    w = env.worker()
    deadline = time.monotonic() + 300
    while env.doc_count() < 10_000:
        assert time.monotonic() < deadline and w.poll() is None, w.stderr.read().decode()[-2000:] if w.poll() else ""
        time.sleep(0.5)
    w.send_signal(signal.SIGKILL)
    w.wait()
    killed_at = env.doc_count()
    assert killed_at < n_ev, "the worker was killed in the middle of the backlog"
    # The killed member's session (10 s) must expire before its partitions are reassigned.
    stats = env.cli("worker", "--max-idle", "40")
    assert stats["records"] > 0
    assert env.doc_count() == n_ev


def test_elasticsearch_down_for_30s_loses_nothing(env: Env, tmp_path: Path):
    first = synthetic_auth_log(tmp_path / "a.log", 20_000, seed=3)
    second = tmp_path / "b.log"
    second.write_text("".join(x.replace("bastion", "bastion2") for x in first.read_text().splitlines(True)))
    n_ev = expected_events(first, year=2026)[0] * 2
    env.ship(first, year="2026")
    w = env.worker("--max-idle", "60")
    try:
        deadline = time.monotonic() + 300
        while env.doc_count() < 20_000:
            assert time.monotonic() < deadline
            time.sleep(0.5)
        subprocess.run([str(REPO / "scripts" / "services"), "stop", "elasticsearch"], check=True, timeout=120)
        env.ship(second, year="2026")  # events keep flowing while the store is down
        time.sleep(30)
        assert w.poll() is None, "the worker must wait for the store, not die"
        subprocess.run([str(REPO / "scripts" / "services"), "start", "elasticsearch"], check=True, timeout=300)
        out, errs = w.communicate(timeout=600)
    finally:
        if w.poll() is None:
            w.kill()
        subprocess.run([str(REPO / "scripts" / "services"), "start", "elasticsearch"], timeout=300)
    assert w.returncode == 0, errs.decode()[-3000:]
    stats = json.loads(out.decode().strip().splitlines()[-1])
    assert stats["retries"] > 0, "the outage was noticed and the batch retried"
    assert b"retrying the batch" in errs
    assert env.doc_count() == n_ev


def test_two_workers_split_partitions_with_the_same_result(env: Env, tmp_path: Path, kafka_admin):
    from kafka.admin import NewPartitions

    kafka_admin.create_partitions({env.raw: NewPartitions(total_count=4)})
    bulk = synthetic_auth_log(tmp_path / "bulk.log", 40_000, seed=4)
    n_ev, _ = expected_events(bulk, year=2026)
    env.ship(bulk, year="2026")
    ws = [env.worker("--max-idle", "20") for _ in range(2)]
    outs = [w.communicate(timeout=600) for w in ws]
    stats = []
    for w, (out, errs) in zip(ws, outs, strict=True):
        assert w.returncode == 0, errs.decode()[-3000:]
        stats.append(json.loads(out.decode().strip().splitlines()[-1]))
    assert all(s["records"] > 0 for s in stats), f"both workers got partitions: {stats}"
    assert sum(s["events_new"] for s in stats) == n_ev
    assert env.doc_count() == n_ev


def test_worker_waits_for_a_broker_that_is_down(tmp_path: Path):
    """No broker at start: the worker logs and keeps retrying, it does not die."""
    env = {**os.environ, "ACCESS_AUDIT_BUS": "kafka", "ACCESS_AUDIT_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
           "ACCESS_AUDIT_DATA_DIR": str(tmp_path)}
    w = subprocess.Popen([sys.executable, "-m", "access_audit.cli", "worker"], env=env, cwd=REPO,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        time.sleep(8)
        assert w.poll() is None, "the worker died instead of waiting for the broker"
    finally:
        w.terminate()
        _, errs = w.communicate(timeout=30)
    assert b"127.0.0.1:1" in errs and (b"ECONNREFUSED" in errs or b"unreachable" in errs)
