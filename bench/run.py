"""The benchmark of issue 10: one command, one run, everything side by side, one table.

    python bench/run.py                                  # every section, 100k events
    python bench/run.py --only floors,bare,worker --events 100000
    python bench/run.py --only run,zircolite --zircolite /work/bench-peers/zircolite \\
        --zircolite-python /work/bench-peers/zvenv/bin/python
    python bench/run.py --only detect,latency,rss,state,queries,startup --write docs/benchmarks.md

Sections (``--only``, comma separated; default all): ``floors`` (orjson, both Kafka clients, ES
bulk, SQLite insert, each alone), ``bare`` (bench/bare_copy.py), ``worker`` (access-audit worker,
Kafka -> Elasticsearch, alerts to Kafka, for each client of ``--clients``), ``run`` (access-audit
run, embedded SQLite, the CloudTrail workload and the 57 SigmaHQ rules), ``zircolite`` (the peer on
the same file and rules, when ``--zircolite`` names a checkout), ``detect`` (parse + enrich +
detect in one process, demo traffic and CloudTrail), ``latency`` (event produced -> alert on the
alerts topic, p50/p99 at ``--rates``), ``rss`` (peak RSS of ``run`` at ``--rss-events``), ``state``
(bytes of rule state per tracked key at ``--state-keys``), ``queries`` (the engineers' five
questions via the HTTP API and the CLI), ``startup`` (``--help`` and ``query``).

Every figure is printed as it is measured, then one table with ratios (vs the bare copy, vs the
ES bulk floor, vs Zircolite) and the issue's targets with met/missed; ``--write FILE`` puts that
table and the machine's details between the markers of FILE (docs/benchmarks.md). Results are
also kept as JSON in the work directory, so sections re-run later merge into the same table.
Timings are measured here and never asserted in tests. The servers are the ones of
scripts/services (Kafka 127.0.0.1:19092, Elasticsearch 127.0.0.1:19200); every topic and index
this run makes has a unique name and is deleted at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
sys.path.insert(0, str(SRC))

SECTIONS = ["floors", "bare", "worker", "scaleout", "run", "zircolite", "detect", "latency", "rss", "state", "queries",
            "startup"]
BEGIN, END = "<!-- bench:begin (written by bench/run.py) -->", "<!-- bench:end -->"


def find_shared() -> Path:
    for p in (REPO.parent / "shared", REPO.parent.parent / "shared", Path("/work/shared")):
        if (p / "bench" / "make_workload.py").exists():
            return p
    raise SystemExit("cannot find ../shared (bench/make_workload.py, datasets); pass --shared")


def log(msg: str) -> None:
    print(f"[bench {datetime.now(UTC):%H:%M:%S}] {msg}", file=sys.stderr, flush=True)


def env_child(**extra: str) -> dict[str, str]:
    e = {**os.environ, "PYTHONPATH": str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    e.update(extra)
    return e


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "access_audit.cli", *args]


# --- measuring a child process: wall time and peak RSS of its whole tree ---------------------------

def _tree_rss_kib(pid: int, field: str = "VmRSS:") -> int:
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status") as fh:
                for line in fh:
                    if line.startswith(field):
                        total += int(line.split()[1])
                        break
            for t in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{t}/children") as fh:
                    todo.extend(int(c) for c in fh.read().split())
        except (OSError, ValueError):
            continue
    return total


def measure(cmd: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None,
            stdout_path: Path | None = None, timeout: float = 7200) -> dict[str, Any]:
    """Run ``cmd``; wall seconds, CPU seconds, peak RSS: the largest sum over the process tree of each
    process's own high-water mark (VmHWM), sampled every 0.1 s. Not wait4's ru_maxrss: Linux carries
    the parent's high-water mark over fork and exec, so it reports this script's own size."""
    out_fh = open(stdout_path, "wb") if stdout_path else subprocess.PIPE  # noqa: SIM115
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out_fh, stderr=subprocess.PIPE)
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.1):
            peak[0] = max(peak[0], _tree_rss_kib(p.pid, "VmHWM:"))

    threading.Thread(target=sample, daemon=True).start()
    err_chunks: list[bytes] = []
    threading.Thread(target=lambda: err_chunks.append(p.stderr.read()), daemon=True).start()  # type: ignore[union-attr]
    stdout = b""
    if out_fh is subprocess.PIPE:
        stdout = p.stdout.read()  # type: ignore[union-attr]
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    done.set()
    p.returncode = os.waitstatus_to_exitcode(status)
    if stdout_path:
        out_fh.close()  # type: ignore[union-attr]
        stdout = stdout_path.read_bytes()[-20000:]
    time.sleep(0.05)
    stderr = b"".join(err_chunks)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:6])}... exited {p.returncode}: {stderr.decode(errors='replace')[-3000:]}")
    return {"wall_s": wall, "cpu_s": ru.ru_utime + ru.ru_stime, "peak_rss_mib": peak[0] / 1024,
            "stdout": stdout.decode(errors="replace"), "stderr": stderr.decode(errors="replace")}


def last_json(text: str) -> dict[str, Any]:
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    raise ValueError(f"no JSON line in: {text[-500:]}")


# --- the machine -----------------------------------------------------------------------------------

def _version(mod: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(mod)
    except PackageNotFoundError:
        return "-"


def machine(args: argparse.Namespace) -> dict[str, Any]:
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ram = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                ram = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    libs = {m: _version(m) for m in ("orjson", "msgspec", "pydantic", "pySigma", "kafka-python", "confluent-kafka",
                                      "elasticsearch")}
    with contextlib.suppress(Exception):
        import confluent_kafka

        libs["librdkafka"] = confluent_kafka.libversion()[0]
    libs["sqlite"] = sqlite3.sqlite_version
    servers = {"elasticsearch": "?", "kafka": "?"}
    with contextlib.suppress(Exception):
        from elasticsearch import Elasticsearch

        es = Elasticsearch(args.es, request_timeout=5)
        nodes = es.nodes.info()["nodes"]
        servers["elasticsearch"] = next(iter(nodes.values()))["version"]
        es.close()
    with contextlib.suppress(Exception):  # the broker's version, from its class path (".../kafka-4.3.1/libs")
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            with contextlib.suppress(OSError):
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                m = re.search(rb"kafka[-_](?:2\.\d+-)?(\d+\.\d+\.\d+)", cmdline)
                if m and b"kafka.Kafka" in cmdline:
                    servers["kafka"] = m.group(1).decode()
                    break
    load = os.getloadavg()
    return {"cpu": cpu, "cores": os.cpu_count(), "ram": ram, "os": platform.platform(),
            "python": platform.python_version(), "libs": libs, "servers": servers,
            "load_at_start": f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "commit": subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                                     text=True).stdout.strip()}


# --- the workload and the Kafka topic -------------------------------------------------------------

class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.shared = args.shared or find_shared()
        self.sigma = self.shared / "datasets" / "sigmahq" / "rules" / "cloud" / "aws" / "cloudtrail"
        self.work = args.work
        self.work.mkdir(parents=True, exist_ok=True)
        self.tag = uuid.uuid4().hex[:8]
        self.results: dict[str, Any] = {}
        self.topics: list[str] = []
        self.indices: list[str] = []
        self._topic: dict[int, str] = {}
        self._admin: Any = None

    def workload(self, n: int, ip_pool: int | None = None) -> Path:
        suffix = f"_ip{ip_pool}" if ip_pool is not None else ""
        path = self.work / f"ct_{n}{suffix}.jsonl"
        if not path.exists():
            log(f"writing the CloudTrail workload, {n:,} events -> {path}")
            extra = ["--ip-pool", str(ip_pool)] if ip_pool is not None else []
            subprocess.run([sys.executable, str(self.shared / "bench" / "make_workload.py"), "-n", str(n), "-o",
                            str(path) + ".tmp", *extra], check=True)
            os.replace(str(path) + ".tmp", path)
        return path

    def kafka_admin(self) -> Any:
        from confluent_kafka.admin import AdminClient

        if self._admin is None:  # kept: futures of a destroyed client fail
            self._admin = AdminClient({"bootstrap.servers": self.args.bootstrap})
        return self._admin

    def new_topic(self, name: str, partitions: int = 3) -> str:
        from confluent_kafka.admin import NewTopic

        fut = self.kafka_admin().create_topics([NewTopic(name, partitions, 1)])
        for f in fut.values():
            f.result(30)
        self.topics.append(name)
        return name

    def produce_file(self, topic: str, path: Path, n: int) -> int:
        """Produce the file's lines with the headers ``access-audit ship`` sends, keyed by sourceIPAddress
        (ship's default partition key, source.ip), with confluent-kafka (fast, so that preparing is cheap)."""
        import orjson
        from confluent_kafka import Producer

        p = Producer({"bootstrap.servers": self.args.bootstrap, "linger.ms": 50, "acks": "all",
                      "queue.buffering.max.messages": 500_000})
        src = str(path)
        sent = 0
        with path.open("rb") as fh:
            for i, line in enumerate(fh, 1):
                line = line.rstrip(b"\n")
                if not line:
                    continue
                try:
                    key = str(orjson.loads(line).get("sourceIPAddress") or "").encode() or None
                except orjson.JSONDecodeError:
                    key = None
                headers = [("origin", f"{src}:{i}".encode()), ("source", src.encode()), ("log_type", b"aws.cloudtrail")]
                while True:
                    try:
                        p.produce(topic, line, key=key, headers=headers)
                        break
                    except BufferError:
                        p.poll(0.2)
                sent += 1
                if sent >= n:
                    break
        left = p.flush(120)
        if left:
            raise RuntimeError(f"{left} messages not acknowledged")
        return sent

    def ct_topic(self, n: int) -> str:
        """One topic holding the first n workload events, shared by floors, bare copy and worker."""
        if n not in self._topic:
            t = self.new_topic(f"bench-{self.tag}.ct{n}")
            log(f"producing {n:,} CloudTrail messages into {t}")
            self.produce_file(t, self.workload(n), n)
            self._topic[n] = t
        return self._topic[n]

    def es(self) -> Any:
        from elasticsearch import Elasticsearch

        return Elasticsearch(self.args.es, request_timeout=120)

    def cleanup(self) -> None:
        if self.args.keep:
            return
        with contextlib.suppress(Exception):
            if self.topics:
                for f in self.kafka_admin().delete_topics(self.topics).values():
                    with contextlib.suppress(Exception):
                        f.result(30)
        with contextlib.suppress(Exception):
            es = self.es()
            for idx in self.indices:
                es.options(ignore_status=404).indices.delete(index=idx)
            es.close()

    def put(self, section: str, **values: Any) -> None:
        self.results.setdefault(section, {}).update(values)
        log(f"{section}: " + ", ".join(f"{k}={_fmt(v)}" for k, v in values.items() if not isinstance(v, dict | list)))


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.3g}" if v < 100 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


# --- floors --------------------------------------------------------------------------------------

def ecs_docs(path: Path, n: int) -> list[tuple[str, str, bytes]]:
    """(id, timestamp, orjson document) of the events our parser makes of the first n lines."""
    import orjson

    from access_audit.core.records import RawRecord
    from access_audit.parse import ParserRegistry

    reg = ParserRegistry()
    out = []
    with path.open("rb") as fh:
        for i, line in enumerate(fh, 1):
            if i > n:
                break
            res = reg.parse(RawRecord(line.rstrip(b"\n"), f"{path}:{i}", str(path), "aws.cloudtrail"))
            for ev in res.events:
                doc = ev.to_doc()
                out.append((ev.id, str(doc.get("@timestamp")), orjson.dumps(doc)))
    return out


def consume_rate(kind: str, b: Bench, topic: str, n: int) -> dict[str, Any]:
    """Messages per second of one client consuming the topic alone: from the first message to the n-th."""
    group = f"bench-{b.tag}-floor-{kind}"
    got, first = 0, None
    if kind == "kafka-python":
        from kafka import KafkaConsumer

        c = KafkaConsumer(topic, bootstrap_servers=b.args.bootstrap, group_id=group, auto_offset_reset="earliest",
                          enable_auto_commit=False, max_poll_records=1000)
        deadline = time.monotonic() + 600
        while got < n and time.monotonic() < deadline:
            for msgs in c.poll(timeout_ms=1000, max_records=1000).values():
                if first is None and msgs:
                    first = time.perf_counter()
                got += len(msgs)
        t = time.perf_counter() - (first or 0)
        c.close()
    else:
        from confluent_kafka import Consumer

        c = Consumer({"bootstrap.servers": b.args.bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                      "enable.auto.commit": False})
        c.subscribe([topic])
        deadline = time.monotonic() + 600
        while got < n and time.monotonic() < deadline:
            msgs = c.consume(1000, 1.0)
            ok = [m for m in msgs if m.error() is None]
            if first is None and ok:
                first = time.perf_counter()
            got += len(ok)
        t = time.perf_counter() - (first or 0)
        c.close()
    return {"messages": got, "seconds": t, "per_s": got / t}


def section_floors(b: Bench) -> None:
    import orjson

    n = b.args.events
    path = b.workload(n)
    lines = path.read_bytes().splitlines()[:n]
    t0 = time.perf_counter()
    for line in lines:
        orjson.loads(line)
    t = time.perf_counter() - t0
    b.put("floor_orjson", per_s=len(lines) / t, n=len(lines), seconds=t)
    del lines

    docs = ecs_docs(path, n)
    avg = sum(len(d) for _, _, d in docs) / len(docs)
    db = b.work / f"floor-{b.tag}.db"
    con = sqlite3.connect(db)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    # OR IGNORE as the store does: the workload repeats some records byte for byte (one id)
    con.execute("CREATE TABLE events (id TEXT PRIMARY KEY, ts TEXT NOT NULL, doc BLOB NOT NULL)")
    t0 = time.perf_counter()
    with con:
        con.executemany("INSERT OR IGNORE INTO events VALUES (?, ?, ?)", docs)
    t = time.perf_counter() - t0
    con.close()
    for f in db.parent.glob(db.name + "*"):
        f.unlink()
    b.put("floor_sqlite", per_s=len(docs) / t, n=len(docs), seconds=t, avg_doc_bytes=round(avg))

    from elasticsearch.helpers import streaming_bulk

    es = b.es()
    idx = f"bench-{b.tag}-floor-bulk"
    b.indices.append(idx)
    es.indices.create(index=idx)
    es.cluster.health(index=idx, wait_for_status="yellow", timeout="60s")
    ok = bad = 0
    t0 = time.perf_counter()
    for good, _ in streaming_bulk(es, ({"_index": idx, "_id": i, "_source": d.decode()} for i, _, d in docs),
                                  chunk_size=1000, raise_on_error=False):
        ok += good
        bad += not good
    t = time.perf_counter() - t0
    es.close()
    b.put("floor_es_bulk", per_s=len(docs) / t, n=len(docs), seconds=t, errors=bad)
    del docs

    topic = b.ct_topic(n)
    for kind in ("kafka-python", "confluent"):
        r = consume_rate(kind, b, topic, n)
        b.put(f"floor_consume_{kind}", per_s=r["per_s"], n=r["messages"], seconds=r["seconds"])


# --- bare copy and worker --------------------------------------------------------------------------

def section_bare(b: Bench) -> None:
    n = b.args.events
    topic = b.ct_topic(n)
    idx = f"bench-{b.tag}-bare"
    b.indices.append(idx)
    r = measure([sys.executable, str(REPO / "bench" / "bare_copy.py"), "--topic", topic, "--count", str(n),
                 "--bootstrap", b.args.bootstrap, "--es", b.args.es, "--index", idx, "--group", f"bench-{b.tag}-bare"],
                env=env_child())
    s = last_json(r["stdout"])
    b.put("bare_copy", per_s=s["per_s"], n=s["messages"], seconds=s["seconds"], indexed=s["indexed"],
          errors=s["errors"], lost_pct=100 * s["errors"] / max(1, s["messages"]), peak_rss_mib=r["peak_rss_mib"])


def run_worker(b: Bench, topic: str, n_records: int, client: str, *, name: str, rules: list[Path] | None = None,
               max_idle: float = 10, alerts: str | None = None,
               first_batch: threading.Event | None = None) -> dict[str, Any]:
    """access-audit worker until it has been idle ``max_idle`` s; the rate from its first to its last batch."""
    prefix = f"bench-{b.tag}-{name}"
    b.indices.append(f"{prefix}-*")
    alerts = alerts or b.new_topic(f"bench-{b.tag}.{name}.alerts")
    dead = b.new_topic(f"bench-{b.tag}.{name}.dead")
    env = env_child(ACCESS_AUDIT_BUS="kafka", ACCESS_AUDIT_STORE="elasticsearch",
                    ACCESS_AUDIT_KAFKA_BOOTSTRAP_SERVERS=b.args.bootstrap, ACCESS_AUDIT_ELASTICSEARCH_URL=b.args.es,
                    ACCESS_AUDIT_ELASTICSEARCH_INDEX_PREFIX=prefix, ACCESS_AUDIT_KAFKA_TOPICS=json.dumps([topic]),
                    ACCESS_AUDIT_KAFKA_ALERTS_TOPIC=alerts, ACCESS_AUDIT_KAFKA_DEAD_LETTER_TOPIC=dead,
                    ACCESS_AUDIT_KAFKA_GROUP_ID=f"bench-{b.tag}-{name}", ACCESS_AUDIT_KAFKA_CLIENT=client,
                    ACCESS_AUDIT_DATA_DIR=str(b.work / f"worker-{b.tag}-{name}"))
    extra = [x for r in rules or [] for x in ("--rules", str(r))]
    t0 = time.perf_counter()
    p = subprocess.Popen(cli("worker", "--max-idle", str(max_idle), *extra), env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    batches: list[tuple[float, int]] = []  # (time, events in the batch)
    tail: list[str] = []
    pat = re.compile(r"batch: (\d+) events")

    def read_err() -> None:
        for raw in p.stderr:  # type: ignore[union-attr]
            line = raw.decode(errors="replace")
            m = pat.search(line)
            if m:
                batches.append((time.perf_counter(), int(m.group(1))))
                if first_batch is not None:
                    first_batch.set()
            else:
                tail.append(line)
                del tail[:-50]

    th = threading.Thread(target=read_err, daemon=True)
    th.start()
    peak = 0
    while p.poll() is None:
        peak = max(peak, _tree_rss_kib(p.pid, "VmHWM:"))
        time.sleep(0.2)
    th.join(5)
    out = p.stdout.read().decode()  # type: ignore[union-attr]
    if p.returncode != 0 or not batches:
        raise RuntimeError(f"worker exited {p.returncode}: {''.join(tail)[-3000:]}")
    stats = last_json(out)
    (t_first, n_first), (t_last, _) = batches[0], batches[-1]
    steady = (sum(n for _, n in batches) - n_first) / (t_last - t_first) if t_last > t_first else None
    es = b.es()
    es.indices.refresh(index=f"{prefix}-events-*", ignore_unavailable=True)
    stored = int(es.count(index=f"{prefix}-events-*", ignore_unavailable=True)["count"])
    es.close()
    return {"per_s": steady, "per_s_with_startup": stats["events"] / (t_last - t0), "records": stats["records"],
            "events": stats["events"], "stored": stored, "dead_letters": stats["dead_letters"],
            "alerts_new": stats["alerts_new"], "peak_rss_mib": peak / 1024, "startup_s": t_first - t0,
            "exact": stored == stats["events"] and stats["records"] == n_records, "alerts_topic": alerts}


def section_worker(b: Bench) -> None:
    n = b.args.events
    topic = b.ct_topic(n)
    for client in b.args.clients:
        r = run_worker(b, topic, n, client, name=f"w-{client}")
        r.pop("alerts_topic")
        b.put(f"worker_{client}", n=n, **r)


def section_scaleout(b: Bench) -> None:
    """1, 2 and 3 workers of the default topology (stage 1 + the hand-over hop + stage 2) on one topic,
    and one worker of topology "single" (no hop) on the same topic: the cost of the hop, and what
    adding workers gives on this machine. Each run has its own group and indices."""
    n = b.args.events
    topic = b.ct_topic(n)
    for topo, k in (("single", 1), ("rekey", 1), ("rekey", 2), ("rekey", 3)):
        r = run_workers_together(b, topic, n, b.args.clients[0], topo, k)
        b.put(f"scaleout_{topo}_{k}", n=n, **r)


def run_workers_together(b: Bench, topic: str, n_records: int, client: str, topology: str, k: int,
                         max_idle: float = 10) -> dict[str, Any]:
    """k workers in one group until all are idle; the rate from the first batch of any worker to the
    last activity (the exit minus the idle wait, stage 2 included)."""
    name = f"so-{topology}-{k}"
    prefix = f"bench-{b.tag}-{name}"
    b.indices.append(f"{prefix}-*")
    env = env_child(ACCESS_AUDIT_BUS="kafka", ACCESS_AUDIT_STORE="elasticsearch",
                    ACCESS_AUDIT_KAFKA_BOOTSTRAP_SERVERS=b.args.bootstrap, ACCESS_AUDIT_ELASTICSEARCH_URL=b.args.es,
                    ACCESS_AUDIT_ELASTICSEARCH_INDEX_PREFIX=prefix, ACCESS_AUDIT_KAFKA_TOPICS=json.dumps([topic]),
                    ACCESS_AUDIT_KAFKA_ALERTS_TOPIC=b.new_topic(f"bench-{b.tag}.{name}.alerts"),
                    ACCESS_AUDIT_KAFKA_DEAD_LETTER_TOPIC=b.new_topic(f"bench-{b.tag}.{name}.dead"),
                    ACCESS_AUDIT_KAFKA_GROUP_ID=f"bench-{b.tag}-{name}", ACCESS_AUDIT_KAFKA_CLIENT=client,
                    ACCESS_AUDIT_KAFKA_TOPOLOGY=topology, ACCESS_AUDIT_KAFKA_HANDOVER_PARTITIONS="3",
                    ACCESS_AUDIT_DATA_DIR=str(b.work / f"worker-{b.tag}-{name}"))
    first: list[float] = []
    t0 = time.perf_counter()
    procs = [subprocess.Popen(cli("worker", "--max-idle", str(max_idle)), env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) for _ in range(k)]

    def read_err(p: subprocess.Popen[bytes]) -> None:
        for raw in p.stderr:  # type: ignore[union-attr]
            if b"batch: " in raw and not first:
                first.append(time.perf_counter())

    threads = [threading.Thread(target=read_err, args=(p,), daemon=True) for p in procs]
    for th in threads:
        th.start()
    peak = 0
    ends: list[float] = []
    for p in procs:
        while p.poll() is None:
            peak = max(peak, sum(_tree_rss_kib(q.pid, "VmHWM:") for q in procs if q.poll() is None))
            time.sleep(0.2)
        ends.append(time.perf_counter())
    stats = [last_json(p.stdout.read().decode()) for p in procs]  # type: ignore[union-attr]
    if any(p.returncode != 0 for p in procs) or not first:
        raise RuntimeError(f"a worker failed: {[p.returncode for p in procs]}")
    t_end = max(ends) - max_idle
    es = b.es()
    es.indices.refresh(index=f"{prefix}-*", ignore_unavailable=True)
    stored = int(es.count(index=f"{prefix}-events-*", ignore_unavailable=True)["count"])
    alerts = int(es.count(index=f"{prefix}-alerts", ignore_unavailable=True)["count"])
    state: dict[str, int] = {}
    with contextlib.suppress(Exception):
        r = es.search(index=f"{prefix}-state", size=0, aggs={"ns": {"terms": {"field": "ns", "size": 10_000}}})
        for bk in r["aggregations"]["ns"]["buckets"]:
            label = bk["key"].split("/", 1)[-1]
            state[label] = state.get(label, 0) + int(bk["doc_count"])
    es.close()
    per_part = [v for lbl, v in state.items() if ":" in lbl and not lbl.endswith(":-1")]
    return {"workers": k, "topology": topology, "per_s": stored / (t_end - first[0]) if t_end > first[0] else None,
            "seconds": t_end - first[0], "startup_s": first[0] - t0, "stored": stored, "alerts": alerts,
            "exact": stored == sum(s["events"] for s in stats), "peak_rss_mib": peak / 1024,
            "state_rows_max": max(per_part, default=0), "state_partitions": len(per_part)}


# --- run and Zircolite ------------------------------------------------------------------------------

def sigma_titles(sigma: Path) -> dict[str, str]:
    """rule id (our id is the file stem) -> title."""
    out = {}
    for f in sorted(sigma.glob("*.yml")):
        m = re.search(r"^title:\s*(.+)$", f.read_text(), re.M)
        out[f.stem] = m.group(1).strip().strip("'\"") if m else f.stem
    return out


def run_embedded(b: Bench, n: int, *, name: str) -> dict[str, Any]:
    path = b.workload(n)
    dd = b.work / f"run-{name}"
    shutil.rmtree(dd, ignore_errors=True)
    r = measure(cli("run", "-i", str(path), "-t", "aws.cloudtrail", "--rules", str(b.sigma), "-q", "--data-dir",
                    str(dd)), env=env_child())
    s = last_json(r["stdout"])
    con = sqlite3.connect(dd / "events.db")
    counts = dict(con.execute("SELECT rule_id, SUM(count) FROM alerts GROUP BY rule_id"))
    con.close()
    return {"n": n, "per_s": s["events"] / r["wall_s"], "records_per_s": s["records"] / r["wall_s"],
            "wall_s": r["wall_s"], "cpu_s": r["cpu_s"], "peak_rss_mib": r["peak_rss_mib"], "events": s["events"],
            "dead_letters": s["dead_letters"], "alerts_new": s["alerts_new"], "detections": counts,
            "data_dir": str(dd)}


def section_run(b: Bench) -> None:
    b.put("run", **run_embedded(b, b.args.events, name=f"{b.args.events}"))


def zircolite_config(b: Bench, zdir: Path) -> Path:
    """Zircolite's own config plus a mapping of every dotted field the Sigma rules use onto itself:
    Zircolite flattens nested JSON to leaf names (userIdentity.type -> type) otherwise."""
    import yaml

    cfg = yaml.safe_load((zdir / "config" / "config.yaml").read_text())
    dotted: set[str] = set()
    for f in b.sigma.glob("*.yml"):
        for doc in yaml.safe_load_all(f.read_text()):
            def walk(x: Any) -> None:
                if isinstance(x, dict):
                    for k, v in x.items():
                        name, *mods = str(k).split("|")
                        if "." in name:
                            dotted.add(name)
                        if "fieldref" in mods:  # the value names a field too
                            dotted.update(f for f in (v if isinstance(v, list) else [v]) if "." in str(f))
                        walk(v)
                elif isinstance(x, list):
                    for v in x:
                        walk(v)
            walk((doc or {}).get("detection", {}))
    cfg.setdefault("mappings", {}).update({d: d for d in sorted(dotted)})
    out = b.work / "zircolite-cloudtrail.yaml"
    out.write_text(yaml.safe_dump(cfg, sort_keys=False))
    b.results.setdefault("zircolite_mapped_fields", sorted(dotted))
    return out


def run_zircolite(b: Bench, n: int) -> dict[str, Any]:
    zdir = b.args.zircolite
    zpy = b.args.zircolite_python or sys.executable
    cfg = zircolite_config(b, zdir)
    path = b.workload(n)
    outdir = b.work / f"zircolite-{n}"
    shutil.rmtree(outdir, ignore_errors=True)
    outdir.mkdir()
    r = measure([str(zpy), str(zdir / "zircolite.py"), "--events", str(path), "--ruleset", str(b.sigma), "--jsonl",
                 "-c", str(cfg), "-o", str(outdir / "detected.json"), "--no-parallel"], cwd=outdir,
                stdout_path=outdir / "stdout.txt")
    found = json.loads((outdir / "detected.json").read_text())
    counts = {d["title"]: int(d.get("count", len(d.get("matches", [])))) for d in found}
    # Matches of events without eventTime: those are dead letters for us (no timestamp), not events.
    no_time = {d["title"]: sum(1 for m in d.get("matches", []) if not (m.get("eventTime") or m.get("eventtime")))
               for d in found}
    return {"n": n, "per_s": n / r["wall_s"], "wall_s": r["wall_s"], "cpu_s": r["cpu_s"],
            "peak_rss_mib": r["peak_rss_mib"], "detections": counts, "without_time": no_time, "config": str(cfg)}


def section_zircolite(b: Bench) -> None:
    if not b.args.zircolite:
        log("zircolite: no --zircolite checkout given; skipped")
        return
    b.put("zircolite", **run_zircolite(b, b.args.events))


def compare_detections(b: Bench) -> list[tuple[str, int, int, int]]:
    """(title, ours, Zircolite's, Zircolite's matches of events without eventTime) per rule."""
    z = b.results.get("zircolite", {})
    ours, peer, no_time = b.results.get("run", {}).get("detections"), z.get("detections"), z.get("without_time", {})
    if ours is None or peer is None:
        return []
    titles = sigma_titles(b.sigma)
    rows = []
    for rid, title in sorted(titles.items(), key=lambda x: x[1]):
        rows.append((title, int(ours.get(rid, 0)), int(peer.get(title, 0)), int(no_time.get(title, 0))))
    return rows


# --- detect stage alone ----------------------------------------------------------------------------

def detect_rate(records: list[Any], rules: list[Any]) -> dict[str, Any]:
    from access_audit.app import build_context
    from access_audit.detect.engine import DetectionEngine
    from access_audit.parse import ParserRegistry
    from access_audit.runtime import settle_heap
    from access_audit.settings import Settings

    reg = ParserRegistry()
    enrichers, ctx = build_context(Settings(data_dir=Path("/nonexistent")))
    engine = DetectionEngine(rules, ctx)
    settle_heap()  # as the commands that run the pipeline do (access_audit/runtime.py)
    n_ev = n_det = 0
    cpu0, t0 = time.process_time(), time.perf_counter()
    for rec in records:
        for ev in reg.parse(rec).events:
            for e in enrichers:
                e.enrich(ev)
            n_ev += 1
            for _ in engine.process(ev):
                n_det += 1
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return {"per_s": n_ev / cpu, "per_s_wall": n_ev / wall, "events": n_ev, "detections": n_det,
            "records": len(records)}


def section_detect(b: Bench) -> None:
    from access_audit.core.records import RawRecord
    from access_audit.demo.generator import generate
    from access_audit.detect.loader import load_rules

    n = b.args.detect_events
    default = load_rules([], include_default=True).rules
    with_sigma = load_rules([b.sigma], include_default=True).rules
    days = 1
    demo: list[Any] = []
    while True:
        raw, _ = generate(seed=7, days=days)
        demo = [RawRecord(r.data, f"{r.source}:{i}", r.source, r.log_type) for i, r in enumerate(raw)]
        if len(demo) >= n or days >= 60:
            break
        days = min(60, days * 2)
    demo = demo[:n]
    b.put("detect_demo", pack=f"default ({len(default)} rules)", **detect_rate(demo, default))
    path = b.workload(max(n, b.args.events))
    ct = []
    with path.open("rb") as fh:
        for i, line in enumerate(fh, 1):
            if i > n:
                break
            ct.append(RawRecord(line.rstrip(b"\n"), f"{path}:{i}", str(path), "aws.cloudtrail"))
    b.put("detect_cloudtrail", pack=f"default + 57 SigmaHQ ({len(with_sigma)} rules)", **detect_rate(ct, with_sigma))


# --- alert latency --------------------------------------------------------------------------------

def section_latency(b: Bench) -> None:
    """Events with a fresh source address each (so each detection opens its own alert, keyed by
    source.ip) are produced at a fixed rate into a topic a worker consumes; a consumer on the alerts
    topic takes the time each new alert arrives. Latency = arrival - production of the event whose
    address the alert carries."""
    secs = b.args.latency_seconds
    for rate in b.args.rates:
        latency_at(b, rate, secs)


def latency_at(b: Bench, rate: int, secs: float) -> None:
    import orjson
    from confluent_kafka import Consumer, Producer

    n = int(rate * secs)
    path = b.workload(max(n, 1000), ip_pool=0)
    lines = [x for x in path.read_bytes().splitlines() if x][:n]
    name = f"lat{rate}"
    topic = b.new_topic(f"bench-{b.tag}.{name}.raw")
    produced: dict[str, float] = {}
    ips = Counter(orjson.loads(x).get("sourceIPAddress") for x in lines)
    # Start the worker on the empty topic and wait until it has joined (one warm-up message).
    warm = b"{}"
    prefix = f"bench-{b.tag}-{name}"
    alerts_topic = f"bench-{b.tag}.{name}.alerts"
    arrivals: list[tuple[float, dict[str, Any]]] = []
    stop, ready = threading.Event(), threading.Event()

    def consume_alerts(alerts_topic: str = alerts_topic) -> None:
        c = Consumer({"bootstrap.servers": b.args.bootstrap, "group.id": f"bench-{b.tag}-{name}-obs",
                      "auto.offset.reset": "earliest", "enable.auto.commit": False})
        c.subscribe([alerts_topic])
        while not stop.is_set():
            for m in c.consume(1000, 0.2):
                if m.error() is None:
                    arrivals.append((time.time(), orjson.loads(m.value())))
        c.close()

    def produce() -> None:
        p = Producer({"bootstrap.servers": b.args.bootstrap, "linger.ms": 5, "acks": "all"})
        p.produce(topic, warm, headers=[("log_type", b"aws.cloudtrail")])
        p.flush(30)
        ready.wait(600)  # the worker has started, joined its group and processed the warm-up message
        time.sleep(b.args.latency_warmup)
        t0 = time.time()
        for i, line in enumerate(lines):
            due = t0 + i / rate
            d = due - time.time()
            if d > 0:
                time.sleep(d)
            ip = orjson.loads(line).get("sourceIPAddress")
            produced.setdefault(ip, time.time())
            while True:
                try:
                    p.produce(topic, line, key=(ip or "").encode(), headers=[
                        ("origin", f"{path}:{i + 1}".encode()), ("source", str(path).encode()),
                        ("log_type", b"aws.cloudtrail")])
                    break
                except BufferError:
                    p.poll(0.05)
            p.poll(0)
        p.flush(60)
        b.results.setdefault("_lat_offered", {})[rate] = len(lines) / (time.time() - t0)

    b.new_topic(alerts_topic)
    obs = threading.Thread(target=consume_alerts, daemon=True)
    obs.start()
    prod = threading.Thread(target=produce, daemon=True)
    worker_box: dict[str, Any] = {}
    def work() -> None:
        try:
            worker_box.update(run_worker(b, topic, n + 1, b.args.clients[0], name=name, rules=[b.sigma],
                                         max_idle=b.args.latency_warmup + 10, alerts=alerts_topic, first_batch=ready))
        except Exception as e:
            worker_box["error"] = e
            ready.set()  # let the producer finish instead of waiting for a worker that is gone

    wt = threading.Thread(target=work)
    wt.start()
    prod.start()
    prod.join()
    wt.join()
    time.sleep(2)
    stop.set()
    obs.join(10)
    if "error" in worker_box:
        raise worker_box["error"]
    lat = sorted(t - produced[a["source_ip"]] for t, a in arrivals
                 if a.get("new") and a.get("source_ip") in produced and ips[a["source_ip"]] == 1)
    offered = b.results.get("_lat_offered", {}).get(rate)
    if not lat:
        b.put(f"latency_{rate}", offered_per_s=offered, alerts=0, note="no alert arrived")
        return
    b.put(f"latency_{rate}", offered_per_s=offered, alerts=len(lat), p50_s=_pct(lat, 50), p99_s=_pct(lat, 99),
          max_s=lat[-1], worker_events=worker_box.get("events"), prefix=prefix)


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    k = (len(xs) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


# --- peak RSS as N grows ----------------------------------------------------------------------------

def section_rss(b: Bench) -> None:
    for n in b.args.rss_events:
        have = b.results.get("run", {})
        r = have if have.get("n") == n else run_embedded(b, n, name=f"rss{n}")
        b.put(f"rss_{n}", n=n, peak_rss_mib=r["peak_rss_mib"], per_s=r["per_s"])
        if b.args.zircolite and "zircolite" in b.args.only_rss_peer:
            zh = b.results.get("zircolite", {})
            z = zh if zh.get("n") == n else run_zircolite(b, n)
            b.put(f"rss_zircolite_{n}", n=n, peak_rss_mib=z["peak_rss_mib"], per_s=z["per_s"])


# --- rule state per tracked key ----------------------------------------------------------------------

STATE_CODE = r"""
import json, os, resource, sqlite3, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[3])
from access_audit.alert.manager import AlertManager
from access_audit.core.records import RawRecord
from access_audit.detect.engine import DetectionEngine
from access_audit.detect.loader import load_rules
from access_audit.parse import ParserRegistry
from access_audit.pipeline import Pipeline
from access_audit.store.sqlite import SqliteStore

n, db = int(sys.argv[1]), Path(sys.argv[2])
import dataclasses
rules = []
for r in load_rules([], include_default=True).rules:
    if r.id != "ssh_brute_force":
        continue
    if dataclasses.is_dataclass(r) and hasattr(r, "max_keys"):
        r = dataclasses.replace(r, max_keys=n + 10)   # the key cap raised to fit
    else:
        r.max_keys = n + 10
    rules.append(r)
assert rules, "the default pack has no ssh_brute_force rule"
store = SqliteStore(db)
p = Pipeline(registry=ParserRegistry(), engine=DetectionEngine(rules), alerts=AlertManager(), store=store)
def recs():
    for i in range(n):
        ip = f"{10 + (i >> 24) % 200}.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"
        sec = i % 86400
        line = (f"Nov  2 {sec // 3600:02d}:{sec // 60 % 60:02d}:{sec % 60:02d} bastion sshd[{1000 + i % 5000}]: "
                f"Failed password for alice from {ip} port 4242 ssh2")
        yield RawRecord(line.encode(), f"state:{i}", "state", "syslog", 2026)
rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
batch = []
for rec in recs():
    batch.append(rec)
    if len(batch) == 5000:
        p.process(batch); batch = []
if batch:
    p.process(batch)
rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
p.checkpoint(force=True)
store.close()
con = sqlite3.connect(db)
total = 0
tables = [t for (t,) in con.execute("SELECT name FROM sqlite_master WHERE type='table'")
          if t == "kv" or "state" in t]
for t in tables:
    cols = [c[1] for c in con.execute(f"PRAGMA table_info({t})")]
    size = "+".join(f"COALESCE(length({c}), 0)" for c in cols)
    total += con.execute(f"SELECT COALESCE(SUM({size}), 0) FROM {t}").fetchone()[0]
tracked = len(getattr(rules[0], "_groups", ())) or None
print(json.dumps({"keys": n, "state_bytes": total, "tables": tables, "rss_growth_kib": rss1 - rss0,
                  "tracked": tracked}))
"""


def section_state(b: Bench) -> None:
    for n in b.args.state_keys:
        db = b.work / f"state-{b.tag}-{n}.db"
        r = measure([sys.executable, "-c", STATE_CODE, str(n), str(db), str(SRC)], env=env_child())
        s = last_json(r["stdout"])
        for f in db.parent.glob(db.name + "*"):
            f.unlink()
        if s.get("tracked") not in (None, n):
            log(f"state: {s['tracked']} keys tracked of {n}: the cap was not raised")
        b.put(f"state_{n}", keys=n, tracked=s.get("tracked"), bytes_per_key=s["state_bytes"] / n,
              rss_bytes_per_key=s["rss_growth_kib"] * 1024 / n,
              seconds=r["wall_s"], tables=",".join(s["tables"]))


# --- the engineers' queries ------------------------------------------------------------------------

def pick_values(db: Path) -> dict[str, str]:
    """Real values for the five questions, from the SQLite store of the run section."""
    con = sqlite3.connect(db)
    q = con.execute
    user = q("SELECT user_name, COUNT(*) c FROM events WHERE user_name IS NOT NULL GROUP BY 1 ORDER BY c DESC LIMIT 1"
             ).fetchone()[0]
    res = q("SELECT resource_name, COUNT(*) c FROM events WHERE resource_name IS NOT NULL GROUP BY 1 ORDER BY c "
            "DESC LIMIT 1 OFFSET 3").fetchone()[0]
    ip = q("SELECT source_ip FROM events WHERE outcome='failure' AND source_ip LIKE '%.%' GROUP BY 1 "
           "ORDER BY COUNT(*) DESC LIMIT 1").fetchone()[0]
    action = q("SELECT action, COUNT(*) c FROM events GROUP BY 1 ORDER BY c DESC LIMIT 1 OFFSET 2").fetchone()[0]
    lo, hi = q("SELECT MIN(ts_us), MAX(ts_us) FROM events").fetchone()
    con.close()
    net = ".".join(ip.split(".")[:2]) + ".0.0/16"

    def iso(us: float) -> str:
        return datetime.fromtimestamp(us / 1e6, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    day = 86400 * 1e6  # the windows end at the newest event (a few templates keep old timestamps)
    return {"user": user, "resource": res, "net": net, "action": action, "since7": iso(hi - 7 * day),
            "until7": iso(hi + 1e6), "since30": iso(hi - 30 * day), "until30": iso(hi + 1e6), "oldest": iso(lo)}


def five_questions(v: dict[str, str]) -> list[tuple[str, dict[str, Any], list[str] | None]]:
    """(name, HTTP request, CLI arguments or None where the CLI has no such command)."""
    return [
        ("events of one user, 7 days", {"path": "/api/events", "q": f'user.name:"{v["user"]}"',
                                        "since": v["since7"], "until": v["until7"], "limit": 100},
         ["query", "--user", v["user"], "--since", v["since7"], "--until", v["until7"], "--limit", "100",
          "-f", "json"]),
        ("who accessed one resource", {"path": "/api/aggregations", "q": f'resource.name:"{v["resource"]}"',
                                       "field": "user.name", "size": 100, "interval": ""},
         ["query", "--resource", v["resource"], "--top", "user.name", "--limit", "100", "-f", "json"]),
        ("failed sign-ins from a /16", {"path": "/api/events", "q": f"event.outcome:failure AND source.ip:{v['net']}",
                                        "limit": 100},
         ["query", f"event.outcome:failure AND source.ip:{v['net']}", "--limit", "100", "-f", "json"]),
        ("hourly histogram of one action, 30 days", {"path": "/api/aggregations", "q": f'event.action:"{v["action"]}"',
                                                     "since": v["since30"], "until": v["until30"],
                                                     "field": "event.action", "size": 1, "interval": "1h"},
         ["query", f'event.action:"{v["action"]}"', "--since", v["since30"], "--until", v["until30"],
          "--histogram", "1h", "-f", "json"]),
        ("top 10 source addresses of one user", {"path": "/api/aggregations", "q": f'user.name:"{v["user"]}"',
                                                 "field": "source.ip", "size": 10, "interval": ""},
         ["query", "--user", v["user"], "--top", "source.ip", "--limit", "10", "-f", "json"]),
    ]


def time_http(base: str, token: str, req: dict[str, Any], reps: int) -> list[float]:
    import httpx

    params = {k: v for k, v in req.items() if k != "path" and v != ""}
    if req.get("interval") == "":
        params["interval"] = ""
    out = []
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=120) as c:
        c.get(req["path"], params=params).raise_for_status()  # warm-up
        for _ in range(reps):
            t0 = time.perf_counter()
            r = c.get(req["path"], params=params)
            out.append(time.perf_counter() - t0)
            r.raise_for_status()
    return out


@contextlib.contextmanager
def serving(b: Bench, env: dict[str, str], data_dir: Path, port: int) -> Any:
    tok = subprocess.run(cli("tokens", "create", "--role", "security_analyst", "--name", "bench", "--data-dir",
                             str(data_dir)), env=env, capture_output=True, check=True, text=True).stdout.strip()
    p = subprocess.Popen(cli("serve", "--port", str(port), "--data-dir", str(data_dir)), env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    import httpx

    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(base + "/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if p.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"serve did not start: {p.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
        time.sleep(0.3)
    try:
        yield base, tok
    finally:
        p.terminate()
        p.wait(30)


def section_queries(b: Bench) -> None:
    run = b.results.get("run")
    if b.args.query_data_dir is not None:  # a store of an earlier run (of `run` on the workload)
        con = sqlite3.connect(b.args.query_data_dir / "events.db")
        n_events = int(con.execute("SELECT count(*) FROM events").fetchone()[0])
        con.close()
        run = {"n": n_events, "data_dir": str(b.args.query_data_dir)}
    elif not run or not Path(run["data_dir"], "events.db").exists():
        run = run_embedded(b, b.args.query_events, name=f"q{b.args.query_events}")
    dd = Path(run["data_dir"])
    v = pick_values(dd / "events.db")
    b.results["query_values"] = v
    reps = b.args.query_reps
    stores = [("sqlite", run["n"], env_child(ACCESS_AUDIT_STORE="sqlite"), dd)]
    es_prefix = b.args.es_query_prefix
    if es_prefix:
        es_dd = b.work / f"es-q-{b.tag}"
        es_dd.mkdir(exist_ok=True)
        es = b.es()
        es.indices.refresh(index=f"{es_prefix}-events-*")
        n_es = int(es.count(index=f"{es_prefix}-events-*")["count"])
        es.close()
        stores.append(("elasticsearch", n_es, env_child(ACCESS_AUDIT_STORE="elasticsearch",
                                                        ACCESS_AUDIT_ELASTICSEARCH_URL=b.args.es,
                                                        ACCESS_AUDIT_ELASTICSEARCH_INDEX_PREFIX=es_prefix), es_dd))
    for kind, n, env, data_dir in stores:
        rows = []
        with serving(b, env, data_dir, b.args.api_port) as (base, tok):
            for name, req, args in five_questions(v):
                http = time_http(base, tok, req, reps)
                row = {"q": name, "http_p50_s": _pct(http, 50), "http_p95_s": _pct(http, 95)}
                if args is not None:
                    ts = []
                    for _ in range(max(3, reps // 3)):
                        t0 = time.perf_counter()
                        subprocess.run(cli(*args, "--data-dir", str(data_dir)), env=env, check=True,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                        ts.append(time.perf_counter() - t0)
                    row.update(cli_p50_s=_pct(ts, 50), cli_p95_s=_pct(ts, 95))
                rows.append(row)
                log(f"query {kind} {name}: " + ", ".join(f"{k}={x:.3f}" for k, x in row.items() if k != "q"))
        b.results[f"queries_{kind}"] = {"n": n, "rows": rows}


# --- start-up ---------------------------------------------------------------------------------------

def section_startup(b: Bench) -> None:
    empty = b.work / f"startup-{b.tag}"
    empty.mkdir(exist_ok=True)
    (empty / "empty.jsonl").write_bytes(b"")
    subprocess.run(cli("run", "-i", str(empty / "empty.jsonl"), "-t", "aws.cloudtrail", "-q", "--data-dir",
                       str(empty)), env=env_child(), check=True, capture_output=True)
    cases = {"python -c pass": [sys.executable, "-c", "pass"],
             "access-audit --help": cli("--help"),
             "access-audit query (empty store)": cli("query", "user.name:nobody", "--data-dir", str(empty), "-f",
                                                     "json")}
    for name, cmd in cases.items():
        ts = []
        for _ in range(b.args.startup_reps):
            t0 = time.perf_counter()
            subprocess.run(cmd, env=env_child(), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            ts.append(time.perf_counter() - t0)
        b.put(f"startup_{name}", median_s=statistics.median(ts), min_s=min(ts))
    shutil.rmtree(empty, ignore_errors=True)


# --- the table ------------------------------------------------------------------------------------

def table(b: Bench) -> str:
    R = b.results
    g = lambda k, f="per_s": (R.get(k) or {}).get(f)  # noqa: E731
    bare, es_floor, zirc = g("bare_copy"), g("floor_es_bulk"), g("zircolite")

    def ratio(x: float | None, base: float | None) -> str:
        return f"{x / base:.2f}×" if x and base else ""

    def rate(x: float | None) -> str:
        return f"{x:,.0f}/s" if x else "not run"

    lines = ["| measured (one run, same machine) | N | figure | vs bare copy | vs ES bulk floor | vs Zircolite | "
             "target | met |", "|---|---:|---:|---:|---:|---:|---|---|"]

    def row(name: str, n: Any, fig: str, vb: str = "", ve: str = "", vz: str = "", target: str = "",
            met: str = "") -> None:
        lines.append(f"| {name} | {_fmt(n) if n else ''} | {fig} | {vb} | {ve} | {vz} | {target} | {met} |")

    def ok(c: bool | None) -> str:
        return "" if c is None else ("met" if c else "**missed**")

    for key, name in (("floor_orjson", "floor: orjson parse alone"),
                      ("floor_consume_kafka-python", "floor: kafka-python consuming alone"),
                      ("floor_consume_confluent", "floor: confluent-kafka consuming alone"),
                      ("floor_es_bulk", "floor: ES `streaming_bulk` alone (our ECS docs)"),
                      ("floor_sqlite", "floor: SQLite insert alone, one WAL transaction")):
        if key in R:
            extra = f" ({R[key]['avg_doc_bytes']:,} B docs)" if key == "floor_sqlite" else ""
            row(name + extra, R[key].get("n"), rate(g(key)))
    if "bare_copy" in R:
        bc = R["bare_copy"]
        row(f"bare copy (bench/bare_copy.py), {bc['lost_pct']:.0f} % rejected by ES", bc["n"], rate(bare),
            "1.00×", ratio(bare, es_floor))
    for client in ("confluent", "kafka-python"):
        k = f"worker_{client}"
        if k in R:
            w = R[k]
            row(f"`worker` ({client}), default pack, Kafka → ES{'' if w['exact'] else ' (**counts not exact**)'}",
                w["n"], rate(w["per_s"]), ratio(w["per_s"], bare), ratio(w["per_s"], es_floor), "",
                "≥ 1.0× bare, ≥ 0.5× ES floor",
                ok(None if not (bare and es_floor) else w["per_s"] >= bare and w["per_s"] >= 0.5 * es_floor))
    single = R.get("scaleout_single_1", {}).get("per_s")
    for k in ("scaleout_single_1", "scaleout_rekey_1", "scaleout_rekey_2", "scaleout_rekey_3"):
        if k in R:
            w = R[k]
            what = ("one stage, no hand-over (topology single)" if w["topology"] == "single"
                    else f"{w['workers']} worker{'s' if w['workers'] > 1 else ''}, with the hand-over hop")
            row(f"`worker` scale-out: {what}; {w['alerts']:,} alerts, state rows ≤ {w['state_rows_max']:,} per "
                f"partition{'' if w['exact'] else ' (**counts not exact**)'}", w["n"], rate(w["per_s"]),
                ratio(w["per_s"], bare), ratio(w["per_s"], es_floor),
                target="" if w["topology"] == "single" else f"hop: {ratio(w['per_s'], single)} of single")
    if "run" in R:
        r = R["run"]
        row("`run`, SQLite, 57 SigmaHQ rules", r["n"], rate(r["per_s"]), vz=ratio(r["per_s"], zirc),
            target="≥ 20× Zircolite", met=ok(None if not zirc else r["per_s"] >= 20 * zirc))
    if "zircolite" in R:
        z = R["zircolite"]
        row("Zircolite 3.7.0, same file and rules, field mapping", z["n"], rate(z["per_s"]), vz="1.00×")
    for k, name in (("detect_demo", "detect stage alone, demo traffic"), ("detect_cloudtrail",
                                                                           "detect stage alone, CloudTrail")):
        if k in R:
            d = R[k]
            row(f"{name}, {d['pack']}, one core (CPU time)", d["events"], rate(d["per_s"]), target="≥ 50,000/s",
                met=ok(d["per_s"] >= 50_000))
    for k in sorted(x for x in R if x.startswith("latency_")):
        lt = R[k]
        if "p99_s" in lt:
            row(f"alert latency at {int(k.split('_')[1]):,}/s offered ({lt['offered_per_s']:,.0f}/s sent), "
                f"{lt['alerts']:,} alerts", lt.get("worker_events"),
                f"p50 {lt['p50_s']:.2f} s, p99 {lt['p99_s']:.2f} s", target="p99 ≤ 1 s at 5k/s",
                met=ok(lt["p99_s"] <= 1.0) if k == "latency_5000" else "")
    for k in sorted((x for x in R if x.startswith("rss_") and not x.startswith("rss_zircolite")),
                    key=lambda x: int(x.split("_")[1])):
        n = R[k]["n"]
        zk = R.get(f"rss_zircolite_{n}") or (R["zircolite"] if R.get("zircolite", {}).get("n") == n else None)
        zr = zk["peak_rss_mib"] if zk else None
        row(f"peak RSS of `run` at {n:,} events", n, f"{R[k]['peak_rss_mib']:,.0f} MiB",
            vz=f"{R[k]['peak_rss_mib'] / zr:.2f}×" if zr else "", target="≤ 0.1× Zircolite at 1M",
            met=ok(R[k]["peak_rss_mib"] <= 0.1 * zr) if zr and n >= 1_000_000 else "")
    if "zircolite" in R:
        row("peak RSS of Zircolite", R["zircolite"]["n"], f"{R['zircolite']['peak_rss_mib']:,.0f} MiB")
    for k in sorted((x for x in R if x.startswith("state_")), key=lambda x: int(x.split("_")[1])):
        s = R[k]
        row(f"rule state per tracked key, threshold by source.ip, {s['keys']:,} keys (in memory: "
            f"{s['rss_bytes_per_key']:,.0f} B)", s["keys"], f"{s['bytes_per_key']:,.0f} B stored", target="≤ 300 B",
            met=ok(s["bytes_per_key"] <= 300))
    for kind in ("sqlite", "elasticsearch"):
        qk = R.get(f"queries_{kind}")
        if not qk:
            continue
        for q in qk["rows"]:
            fig = f"API p50 {q['http_p50_s'] * 1000:,.0f} / p95 {q['http_p95_s'] * 1000:,.0f} ms"
            if "cli_p50_s" in q:
                fig += f"; CLI p50 {q['cli_p50_s'] * 1000:,.0f} / p95 {q['cli_p95_s'] * 1000:,.0f} ms"
            else:
                fig += "; CLI: no such command"
            worst = max(q["http_p95_s"], q.get("cli_p95_s", 0))
            row(f"query ({kind}): {q['q']}", qk["n"], fig, target="p95 ≤ 300 ms", met=ok(worst <= 0.3))
    for k in (x for x in R if x.startswith("startup_")):
        s = R[k]
        name = k.split("_", 1)[1]
        row(f"start-up: `{name}`", None, f"{s['median_s'] * 1000:,.0f} ms (min {s['min_s'] * 1000:,.0f})",
            target="" if name.startswith("python") else "≤ 200 ms",
            met="" if name.startswith("python") else ok(s["median_s"] <= 0.2))
    return "\n".join(lines)


def detections_table(b: Bench) -> str:
    rows = compare_detections(b)
    if not rows:
        return ""
    out = ["| Sigma rule | ours (detections) | Zircolite (matched events) | difference | of Zircolite's, events "
           "without eventTime (dead letters for us) | difference not explained by those |",
           "|---|---:|---:|---:|---:|---:|"]
    for title, a, z, nt in rows:
        rest = a - (z - nt)
        out.append(f"| {title} | {a:,} | {z:,} | {'' if a == z else f'{a - z:+,}'} | {nt or ''} | "
                   f"{'' if rest == 0 else f'{rest:+,}'} |")
    same = sum(1 for _, a, z, _ in rows if a == z)
    same_timed = sum(1 for _, a, z, nt in rows if a == z - nt)
    out.append(f"\n{same} of {len(rows)} rules agree exactly; {same_timed} once the events without a timestamp "
               "are left out.")
    return "\n".join(out)


def render(b: Bench, m: dict[str, Any], cmd: str) -> str:
    libs = ", ".join(f"{k} {v}" for k, v in m["libs"].items())
    srv = ", ".join(f"{k} {v}" for k, v in m["servers"].items())
    parts = [f"Machine: {m['cpu']}, {m['cores']} cores, {m['ram']} RAM, {m['os']}; Python {m['python']}; "
             f"{libs}; servers: {srv}. Load average at start: {m['load_at_start']} (a machine shared with other "
             f"agents: the figures are noisy). Commit {m['commit']}, {m['date']}.", "",
             f"Command: `{cmd}`", "", table(b)]
    det = detections_table(b)
    if det:
        parts += ["", "Per-rule detection counts, same run (`run` alerts' counts summed per rule; Zircolite's "
                  "matched events per rule):", "", det]
    if b.results.get("query_values"):
        parts += ["", "Query values picked from the data: " + ", ".join(
            f"{k}=`{v}`" for k, v in b.results["query_values"].items())]
    return "\n".join(parts)


def write_doc(path: Path, text: str) -> None:
    doc = path.read_text() if path.exists() else f"# Benchmarks\n\n{BEGIN}\n{END}\n"
    if BEGIN not in doc:
        doc += f"\n{BEGIN}\n{END}\n"
    head, rest = doc.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default=",".join(SECTIONS), help=f"sections, comma separated: {','.join(SECTIONS)}; "
                    "'' renders the stored results")
    ap.add_argument("--events", type=int, default=100_000, help="events for floors, bare, worker, run, zircolite")
    ap.add_argument("--work", type=Path, default=Path(os.environ.get("BENCH_WORK", "/tmp/access-audit-bench")),
                    help="work directory (workloads, stores, results.json)")
    ap.add_argument("--shared", type=Path, default=None, help="the shared folder (bench/, datasets/)")
    ap.add_argument("--bootstrap", default=os.environ.get("ACCESS_AUDIT_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092"))
    ap.add_argument("--es", default=os.environ.get("ACCESS_AUDIT_ELASTICSEARCH_URL", "http://127.0.0.1:19200"))
    ap.add_argument("--clients", default="confluent,kafka-python", help="Kafka clients for the worker section")
    ap.add_argument("--zircolite", type=Path, default=None, help="a checkout of Zircolite 3.7.0")
    ap.add_argument("--zircolite-python", type=Path, default=None, help="the Python of Zircolite's own venv")
    ap.add_argument("--only-rss-peer", default="zircolite", help="'zircolite' to measure the peer's RSS too, '' not")
    ap.add_argument("--detect-events", type=int, default=20_000)
    ap.add_argument("--rates", default="1000,5000")
    ap.add_argument("--latency-seconds", type=float, default=20)
    ap.add_argument("--latency-warmup", type=float, default=3, help="seconds to wait after the worker's first "
                    "batch (a warm-up message) before sending")
    ap.add_argument("--rss-events", default="100000,1000000")
    ap.add_argument("--state-keys", default="100000,1000000")
    ap.add_argument("--query-events", type=int, default=1_000_000, help="store size when `run` was not in this run")
    ap.add_argument("--query-data-dir", type=Path, default=None,
                    help="query the store of this data directory (made by `run` on the workload) instead of making one")
    ap.add_argument("--es-query-prefix", default="", help="ES index prefix of a store to query (default: the "
                    "worker section's)")
    ap.add_argument("--query-reps", type=int, default=10)
    ap.add_argument("--api-port", type=int, default=18765)
    ap.add_argument("--startup-reps", type=int, default=7)
    ap.add_argument("--write", type=Path, default=None, help="put the table between the markers of this file")
    ap.add_argument("--fresh", action="store_true", help="forget results of earlier runs in the work directory")
    ap.add_argument("--keep", action="store_true", help="keep the topics and indices")
    args = ap.parse_args()
    args.clients = [c for c in args.clients.split(",") if c]
    args.rates = [int(x) for x in args.rates.split(",") if x]
    args.rss_events = [int(x) for x in args.rss_events.split(",") if x]
    args.state_keys = [int(x) for x in args.state_keys.split(",") if x]
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(only) - set(SECTIONS)
    if unknown:
        raise SystemExit(f"unknown sections: {', '.join(sorted(unknown))}; known: {', '.join(SECTIONS)}")

    b = Bench(args)
    store = args.work / "results.json"
    if store.exists() and not args.fresh:
        b.results = json.loads(store.read_text())
    if only or "_machine" not in b.results:  # --only "" renders the stored results again
        b.results["_machine"] = machine(args)
    m = b.results["_machine"]
    log(f"{m['cpu']}, {m['cores']} cores, {m['ram']}; load {m['load_at_start']}")
    keep_es = "queries" in only and not args.es_query_prefix and "worker" in only
    if keep_es:
        args.es_query_prefix = f"bench-{b.tag}-w-{args.clients[0]}"
    try:
        for s in SECTIONS:
            if s in only:
                log(f"--- {s}")
                try:
                    globals()[f"section_{s}"](b)
                    b.results.pop(f"_failed_{s}", None)
                except Exception as e:  # one broken section must not lose the others' figures
                    log(f"{s} FAILED: {type(e).__name__}: {e}")
                    b.results[f"_failed_{s}"] = f"{type(e).__name__}: {e}"
                store.write_text(json.dumps(b.results, indent=1, default=str))
    finally:
        b.cleanup()
    if only:
        b.results["_command"] = "python bench/run.py " + " ".join(sys.argv[1:])
        store.write_text(json.dumps(b.results, indent=1, default=str))
    text = render(b, b.results["_machine"], b.results.get("_command", "?"))
    print(text)
    if args.write:
        write_doc(args.write, text)
        log(f"wrote {args.write}")


if __name__ == "__main__":
    main()
