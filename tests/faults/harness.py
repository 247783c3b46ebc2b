"""Fault-injection harness: its own Kafka and Elasticsearch (scripts/services with other ports
and another state dir, so the shared servers of the rest of the suite are never touched), a
known input, real `access-audit worker` processes, and a tally of lost, duplicated and delayed
events and alerts. Used by the CI-sized suite (tests/faults/test_faults_servers.py) and the
full-size run (bench/faults.py).
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
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
SERVICES = REPO / "scripts" / "services"
KAFKA_PORT, ES_PORT = 29092, 29200
BOOTSTRAP = f"127.0.0.1:{KAFKA_PORT}"
ES_URL = f"http://127.0.0.1:{ES_PORT}"
_state = "/var/lib/access-audit-faults" if os.geteuid() == 0 else str(Path.home() / ".local/state/access-audit-faults")
SERVICES_ENV = {"ACCESS_AUDIT_STATE_DIR": os.environ.get("ACCESS_AUDIT_FAULTS_STATE_DIR", _state),
                "KAFKA_PORT": str(KAFKA_PORT), "ES_PORT": str(ES_PORT), "ES_CLUSTER_NAME": "access-audit-faults"}
BRUTE_RULE = "ssh_brute_force"


def services(cmd: str, what: str = "all", timeout: float = 400) -> None:
    """scripts/services on the fault instance (ports 29092/29200), never the shared one."""
    subprocess.run([str(SERVICES), cmd, what], check=True, timeout=timeout, env={**os.environ, **SERVICES_ENV},
                   stdout=subprocess.DEVNULL)


def known_input(path: Path, n: int, bursts: int, seed: int = 1) -> tuple[int, set[str]]:
    """``n`` distinct sshd lines, of which ``bursts`` brute-force bursts (12 failures from one
    address in a minute, each address once): returns (events, the addresses that must alert)."""
    rng = random.Random(seed)
    burst_at = set(rng.sample(range(n // 12), bursts)) if bursts else set()
    ips: set[str] = set()
    lines = []
    i = 0
    while len(lines) < n:
        sec = len(lines) * 2
        ts = f"Nov {2 + sec // 86400:2d} {sec // 3600 % 24:02d}:{sec // 60 % 60:02d}:{sec % 60:02d}"
        if i in burst_at and len(lines) + 12 <= n:
            ip = f"198.51.{len(ips) // 250}.{len(ips) % 250 + 1}"
            ips.add(ip)
            for k in range(12):
                lines.append(f"{ts} bastion sshd[{9000 + len(lines)}]: Failed password for root from {ip} "
                             f"port {40000 + k} ssh2\n")
        else:
            src = f"10.1.{rng.randrange(256)}.{rng.randrange(1, 255)} port {rng.randrange(1024, 65535)}"
            lines.append(f"{ts} bastion sshd[{1000 + len(lines)}]: Accepted publickey for "
                         f"user{rng.randrange(300):03d} from {src} ssh2\n")
        i += 1
    path.write_text("".join(lines))
    return len(lines), ips


@dataclass
class Tally:
    expected_events: int
    stored_events: int
    expected_alerts: int
    alerts_found: int
    alerts_doubled: int  # more than one alert (by id) for one brute-force address
    topic_alert_dups: int  # 'new' alert messages seen more than once on the alerts topic (at-least-once)
    recovery_s: float  # from the end of the fault until every event was stored
    chain_ok: bool | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def lost(self) -> int:
        return max(0, self.expected_events - self.stored_events)

    @property
    def duplicated(self) -> int:
        return max(0, self.stored_events - self.expected_events)

    @property
    def alerts_lost(self) -> int:
        return self.expected_alerts - self.alerts_found

    def to_json(self) -> dict[str, Any]:
        return {"events": self.expected_events, "lost": self.lost, "duplicated": self.duplicated,
                "alerts": self.expected_alerts, "alerts_lost": self.alerts_lost, "alerts_doubled": self.alerts_doubled,
                "topic_alert_dups": self.topic_alert_dups, "recovery_s": round(self.recovery_s, 1),
                "chain_ok": self.chain_ok, **self.extra}


class Run:
    """One isolated run on the fault instance: its topics, group, index prefix and data dir."""

    def __init__(self, tmp: Path, partitions: int = 4, es_url: str = ES_URL) -> None:
        from elasticsearch import Elasticsearch
        from kafka.admin import KafkaAdminClient, NewTopic

        tag = uuid.uuid4().hex[:8]
        self.tag, self.tmp = tag, tmp
        self.raw, self.alerts, self.dead = f"f{tag}.raw", f"f{tag}.alerts", f"f{tag}.dead"
        self.admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP, request_timeout_ms=30_000)
        self.admin.create_topics([NewTopic(t, partitions, 1) for t in (self.raw, self.alerts, self.dead)])
        self.prefix = f"aa-f-{tag}"
        self.es = Elasticsearch(ES_URL, request_timeout=30)
        self.data_dir = tmp / f"data-{tag}"
        self.env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "ACCESS_AUDIT_BUS": "kafka",
                    "ACCESS_AUDIT_STORE": "elasticsearch", "ACCESS_AUDIT_KAFKA_BOOTSTRAP_SERVERS": BOOTSTRAP,
                    "ACCESS_AUDIT_ELASTICSEARCH_URL": es_url, "ACCESS_AUDIT_ELASTICSEARCH_INDEX_PREFIX": self.prefix,
                    "ACCESS_AUDIT_KAFKA_TOPICS": json.dumps([self.raw]), "ACCESS_AUDIT_KAFKA_ALERTS_TOPIC": self.alerts,
                    "ACCESS_AUDIT_KAFKA_DEAD_LETTER_TOPIC": self.dead, "ACCESS_AUDIT_KAFKA_GROUP_ID": f"g{tag}",
                    "ACCESS_AUDIT_BATCH_SIZE": "1000", "ACCESS_AUDIT_DATA_DIR": str(self.data_dir),
                    "ACCESS_AUDIT_GEOIP": "false"}
        self.workers: list[subprocess.Popen[bytes]] = []
        self.logs: list[Path] = []

    def cli(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([sys.executable, "-m", "access_audit.cli", *args], capture_output=True, env=self.env,
                              timeout=timeout, cwd=REPO)

    def ship(self, path: Path) -> int:
        r = self.cli("ship", str(path), "--topic", self.raw, "--year", "2026")
        assert r.returncode == 0, r.stderr.decode()[-2000:]
        return int(json.loads(r.stdout.decode().strip().splitlines()[-1])["shipped"])

    def start_worker(self, *extra: str) -> subprocess.Popen[bytes]:
        log = self.tmp / f"worker-{self.tag}-{len(self.logs)}.log"
        self.logs.append(log)
        w = subprocess.Popen([sys.executable, "-m", "access_audit.cli", "worker", *extra], env=self.env, cwd=REPO,
                             stdout=subprocess.PIPE, stderr=log.open("wb"))
        self.workers.append(w)
        return w

    def kill(self, w: subprocess.Popen[bytes]) -> None:
        w.send_signal(signal.SIGKILL)
        w.wait(timeout=30)

    def stored(self) -> int:
        try:
            self.es.indices.refresh(index=f"{self.prefix}-events-*", ignore_unavailable=True)
            return int(self.es.count(index=f"{self.prefix}-events-*", ignore_unavailable=True)["count"])
        except Exception:  # the node is down or starting: not an answer
            return -1

    def wait_stored(self, n: int, timeout_s: float) -> float:
        """Seconds until ``n`` events are stored (or the timeout)."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout_s:
            if self.stored() >= n:
                return time.monotonic() - t0
            time.sleep(1.0)
        return time.monotonic() - t0

    def alert_docs(self) -> list[dict[str, Any]]:
        self.es.indices.refresh(index=f"{self.prefix}-alerts", ignore_unavailable=True)
        r = self.es.search(index=f"{self.prefix}-alerts", size=10_000, ignore_unavailable=True,
                           query={"term": {"rule_id": BRUTE_RULE}})
        return [h["_source"] for h in r["hits"]["hits"]]

    def topic_new_alerts(self) -> Counter[str]:
        from kafka import KafkaConsumer

        c = KafkaConsumer(self.alerts, bootstrap_servers=BOOTSTRAP, auto_offset_reset="earliest",
                          enable_auto_commit=False, consumer_timeout_ms=4000, group_id=None)
        ids: Counter[str] = Counter()
        for m in c:
            doc = json.loads(m.value)
            if doc.get("new") and doc.get("rule_id") == BRUTE_RULE:
                ids[doc["id"]] += 1
        c.close()
        return ids

    def topic_alert_ids(self) -> set[str]:
        """The ids of every brute-force alert message on the alerts topic (new or update)."""
        from kafka import KafkaConsumer

        c = KafkaConsumer(self.alerts, bootstrap_servers=BOOTSTRAP, auto_offset_reset="earliest",
                          enable_auto_commit=False, consumer_timeout_ms=4000, group_id=None)
        ids = set()
        for m in c:
            with contextlib.suppress(ValueError):
                doc = json.loads(m.value)
                if doc.get("rule_id") == BRUTE_RULE:
                    ids.add(doc["id"])
        c.close()
        return ids

    def handover_lag(self) -> int | None:
        """Messages of the hand-over topics (stage 2, docs/design/topology.md) the group has not
        committed yet; None while it cannot be read."""
        from kafka import KafkaConsumer, TopicPartition

        try:
            topics = [t for t in self.admin.list_topics() if t.startswith(f"g{self.tag}.by.")]
            committed = {(tp.topic, tp.partition): om.offset
                         for tp, om in self.admin.list_consumer_group_offsets(f"g{self.tag}.by").items()}
            if not topics:  # a broker that has just restarted can answer before its metadata is back
                return None
            c = KafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False, group_id=None)
            try:
                found = {t: sorted(c.partitions_for_topic(t) or []) for t in topics}
                if not all(found.values()):  # partitions not known yet: not an answer, never a false 0
                    return None
                parts = [TopicPartition(t, p) for t, ps in found.items() for p in ps]
                ends = c.end_offsets(parts)
            finally:
                c.close()
            return sum(max(0, ends[tp] - max(0, committed.get((tp.topic, tp.partition), 0))) for tp in parts)
        except Exception:  # the broker is restarting: not an answer
            return None

    def settled_alerts(self, quiet_s: float = 6.0, max_s: float = 60.0) -> list[dict[str, Any]]:
        """The alert documents once stage 2 has caught up (a SIGKILLed worker's hand-over partitions
        move only when its session expires) and their number has not changed for ``quiet_s``."""
        deadline = time.monotonic() + 180
        zeros = 0  # caught up: a lag of 0 read twice, 1 s apart (one read can race a restart)
        while time.monotonic() < deadline and zeros < 2:
            zeros = zeros + 1 if self.handover_lag() == 0 else 0
            time.sleep(1.0)
        t0 = time.monotonic()
        docs = self.alert_docs()
        stable_since = time.monotonic()
        while time.monotonic() - stable_since < quiet_s and time.monotonic() - t0 < max_s:
            time.sleep(1.0)
            now = self.alert_docs()
            if len(now) != len(docs):
                docs, stable_since = now, time.monotonic()
        return docs

    def tally(self, expected: int, ips: set[str], recovery_s: float, **extra: Any) -> Tally:
        docs = self.settled_alerts()
        per_ip = Counter(d.get("source_ip") for d in docs)
        topic = self.topic_new_alerts()
        v = self.cli("verify", "--format", "json")
        chain_ok = json.loads(v.stdout.decode().strip().splitlines()[-1])["ok"] if v.stdout.strip() else None
        if chain_ok is False:
            extra["chain_findings"] = json.loads(v.stdout.decode().strip().splitlines()[-1])["findings"][:5]
        return Tally(expected, self.stored(), len(ips), len(ips & set(per_ip)),
                     sum(n - 1 for ip, n in per_ip.items() if ip in ips and n > 1),
                     sum(n - 1 for n in topic.values() if n > 1), recovery_s, chain_ok, extra)

    def stop_workers(self, grace_s: float = 30) -> None:
        for w in self.workers:
            if w.poll() is None:
                w.send_signal(signal.SIGTERM)
        for w in self.workers:
            with contextlib.suppress(subprocess.TimeoutExpired):
                w.wait(timeout=grace_s)
            if w.poll() is None:
                w.kill()
                w.wait()

    def close(self) -> None:
        self.stop_workers()
        with contextlib.suppress(Exception):
            self.es.indices.delete(index=f"{self.prefix}-*", ignore_unavailable=True)
        with contextlib.suppress(Exception):
            self.admin.delete_topics([self.raw, self.alerts, self.dead])
        self.admin.close()
        self.es.close()


# --- scenarios (sizes are parameters: CI-sized in the suite, full size in bench/faults.py) -----------

def sigkills(tmp: Path, *, events: int, kills: int, bursts: int, seed: int = 1) -> Tally:
    """Two workers in the group; one of them SIGKILLed ``kills`` times at random points and
    started again each time, while the backlog drains."""
    rng = random.Random(seed)
    run = Run(tmp)
    try:
        n, ips = known_input(tmp / "input.log", events, bursts, seed)
        run.ship(tmp / "input.log")
        a, b = run.start_worker(), run.start_worker()
        victims = [a, b]
        t_last = time.monotonic()
        for k in range(kills):
            target = rng.uniform(0.05, 0.95) * n
            deadline = time.monotonic() + 120
            while run.stored() < target * (k + 1) / kills and time.monotonic() < deadline:
                time.sleep(rng.uniform(0.2, 1.0))
            i = rng.randrange(2)
            run.kill(victims[i])
            victims[i] = run.start_worker()
            t_last = time.monotonic()
        waited = run.wait_stored(n, 600)
        del t_last
        time.sleep(3)  # alerts of the last batches
        return run.tally(n, ips, waited, kills=kills)
    finally:
        run.close()


def es_rejections(tmp: Path, *, events: int, bursts: int, reject_s: float) -> Tally:
    """Workers reach Elasticsearch through the fault proxy, which answers every request with 429
    (bulk rejections) for ``reject_s`` while events flow."""
    from proxy import FaultProxy

    px = FaultProxy(("127.0.0.1", ES_PORT)).start()
    run = Run(tmp, es_url=px.url)
    try:
        n, ips = known_input(tmp / "input.log", events, bursts)
        lines = (tmp / "input.log").read_text().splitlines(keepends=True)
        (tmp / "first.log").write_text("".join(lines[: n // 2]))
        (tmp / "second.log").write_text("".join(lines[n // 2:]))
        run.start_worker()
        run.start_worker()
        run.ship(tmp / "first.log")
        run.wait_stored(n // 4, 300)
        px.set("http429")
        t0 = time.monotonic()
        run.ship(tmp / "second.log")  # events keep arriving while every request is rejected
        time.sleep(max(0.0, reject_s - (time.monotonic() - t0)))
        print(f"[faults] 429 for {time.monotonic() - t0:.1f}s: {px.requests_rejected} requests rejected",
              file=sys.stderr)
        px.set("pass")
        waited = run.wait_stored(n, 600)
        time.sleep(3)
        return run.tally(n, ips, waited, rejected_requests=px.requests_rejected)
    finally:
        run.close()
        px.stop()


def es_stopped(tmp: Path, *, events: int, bursts: int, down_s: float) -> Tally:
    """The fault instance's Elasticsearch stopped for ``down_s`` while events keep arriving."""
    run = Run(tmp)
    try:
        n, ips = known_input(tmp / "input.log", events, bursts)
        half = tmp / "first.log"
        lines = (tmp / "input.log").read_text().splitlines(keepends=True)
        half.write_text("".join(lines[: n // 2]))
        second = tmp / "second.log"
        second.write_text("".join(lines[n // 2:]))
        run.start_worker()
        run.start_worker()
        run.ship(half)
        run.wait_stored(n // 4, 300)
        services("stop", "elasticsearch")
        t0 = time.monotonic()
        run.ship(second)  # events keep flowing while the store is down
        time.sleep(max(0.0, down_s - (time.monotonic() - t0)))
        alive = sum(w.poll() is None for w in run.workers)
        services("start", "elasticsearch")
        waited = run.wait_stored(n, 600)
        time.sleep(3)
        return run.tally(n, ips, waited, workers_alive_during_outage=alive)
    finally:
        with contextlib.suppress(Exception):
            services("start", "elasticsearch")
        run.close()


def broker_restart(tmp: Path, *, events: int, bursts: int) -> Tally:
    """The fault instance's Kafka broker restarted (stop, start) in the middle of the stream."""
    run = Run(tmp)
    try:
        n, ips = known_input(tmp / "input.log", events, bursts)
        run.ship(tmp / "input.log")
        run.start_worker()
        run.start_worker()
        run.wait_stored(n // 3, 300)
        services("restart", "kafka")
        waited = run.wait_stored(n, 600)
        time.sleep(3)
        return run.tally(n, ips, waited)
    finally:
        with contextlib.suppress(Exception):
            services("start", "kafka")
        run.close()


def _alerts_topic_writable(run: Run, writable: bool) -> None:
    """Make the alerts topic refuse every write, or take writes again, on the live broker: a topic
    ``max.message.bytes`` of 64 makes the broker answer each produce to it with MESSAGE_TOO_LARGE,
    while the topic, its messages and every other topic stay as they were. (``min.insync.replicas``
    above the replication factor would be the textbook way, but on this Kafka 4.3 broker an
    acks=all produce to such a one-replica topic still succeeded.)"""
    from kafka.admin import ConfigResource, ConfigResourceType

    run.admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, run.alerts,
                                            configs={} if writable else {"max.message.bytes": "64"})])


def _probe_alerts_topic(run: Run) -> str:
    """One write of a typical size to the alerts topic: "ok" or the broker's error (the fault is real)."""
    from kafka import KafkaProducer

    p = KafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", retries=0, request_timeout_ms=5000)
    try:
        p.send(run.alerts, b'{"probe": true, "pad": "' + b"x" * 100 + b'"}').get(timeout=10)
        return "ok"
    except Exception as e:
        return type(e).__name__
    finally:
        p.close(timeout=5)


def alerts_topic_unavailable(tmp: Path, *, events: int, bursts: int, down_s: float) -> Tally:
    """The alerts topic refuses every write for ``down_s`` while events (and brute-force bursts) flow:
    the workers must store every event once, and every alert must reach the topic and the store
    once the topic takes writes again (the batch is not committed until the alerts are
    acknowledged). Counts the alerts of the index missing from the topic."""
    run = Run(tmp)
    try:
        n, ips = known_input(tmp / "input.log", events, bursts)
        lines = (tmp / "input.log").read_text().splitlines(keepends=True)
        (tmp / "first.log").write_text("".join(lines[: n // 3]))
        (tmp / "second.log").write_text("".join(lines[n // 3:]))
        run.start_worker()
        run.start_worker()
        run.ship(tmp / "first.log")
        run.wait_stored(n // 6, 300)
        _alerts_topic_writable(run, False)
        t0 = time.monotonic()
        for _ in range(10):  # the topic's new config reaches the partition leader within moments
            probe = _probe_alerts_topic(run)
            if probe != "ok":
                break
            time.sleep(1.0)
        run.ship(tmp / "second.log")  # events and bursts arrive while no alert can be published
        time.sleep(max(0.0, down_s - (time.monotonic() - t0)))
        stored_during = run.stored()
        alive = sum(w.poll() is None for w in run.workers)
        _alerts_topic_writable(run, True)
        waited = run.wait_stored(n, 600)
        time.sleep(3)
        retried = sum(log.read_text(errors="replace").count("retrying the batch") for log in run.logs)
        t = run.tally(n, ips, waited, probe_during_fault=probe, workers_alive_during_fault=alive,
                      stored_at_end_of_fault=stored_during, batches_retried=retried)
        on_topic = run.topic_alert_ids()
        t.extra["alerts_missing_on_topic"] = sum(1 for d in run.alert_docs() if d["id"] not in on_topic)
        return t
    finally:
        with contextlib.suppress(Exception):
            _alerts_topic_writable(run, True)
        run.close()


SCENARIOS: dict[str, Callable[..., Tally]] = {"sigkills": sigkills, "es_rejections": es_rejections,
                                              "es_stopped": es_stopped, "broker_restart": broker_restart,
                                              "alerts_topic_unavailable": alerts_topic_unavailable}
