"""Scale-out against the real broker and Elasticsearch (issue 11): N workers raise exactly the alerts of one.

Workers are `access-audit worker` processes of the default topology ("rekey"): stage 1 stores and
hands events over to one topic per rule grouping (``<group>.by.user.name``...), stage 2 runs the
rules per hand-over partition with per-partition state (``access_audit.handover``).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from test_kafka_pipeline import REPO, Env, env, es, expected_events, kafka_admin, synthetic_auth_log

pytestmark = pytest.mark.integration

# These tests replay days of logs at once through several raw partitions: stage 1 reads one
# partition's batch ahead of another's, so a key's events reach stage 2 hours out of order (a
# backlog, not live traffic). The allowed lateness is set to cover that disorder, as a user
# replaying a backlog would set it (docs/design/topology.md); with the 15-minute default, rules
# over sparse streams (credential stuffing, grants then use) depend on how the partitions interleave.
REPLAY_LATENESS = str(48 * 60)
__all__ = ["env", "es", "kafka_admin"]  # fixtures of test_kafka_pipeline, used here


def okta_failures(path: Path, user: str, n: int, t0: datetime = datetime(2026, 11, 10, 2, 10, tzinfo=UTC)) -> Path:
    """n failed Okta sign-ins for one account, each from its own address, 5 s apart."""
    lines = []
    for i in range(n):
        at = (t0 + timedelta(seconds=5 * i)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        lines.append(orjson.dumps({
            "uuid": f"fail-{user}-{i}", "published": at, "eventType": "user.session.start",
            "version": "0", "severity": "INFO", "displayMessage": "User login to Okta",
            "actor": {"id": "00ub1", "type": "User", "alternateId": user, "displayName": "Gijs Prins"},
            "client": {"ipAddress": f"92.38.10.{20 + i}"},
            "outcome": {"result": "FAILURE", "reason": "INVALID_CREDENTIALS"}}).decode())
    path.write_text("\n".join(lines) + "\n")
    return path


def alerts_by_id(env: Env) -> dict[str, dict]:
    return {a["id"]: a for a in env.index_docs("alerts")}


def spawn(env: Env, logs: Path, idle: str = "20", *extra: str) -> subprocess.Popen[bytes]:
    """A worker whose stderr goes to a file (a pipe nobody reads would fill up and stall it)."""
    path = logs / f"worker-{time.monotonic_ns()}.log"
    with open(path, "wb") as err:
        w = subprocess.Popen([sys.executable, "-m", "access_audit.cli", "worker", "--max-idle", idle, *extra],
                             env=env.env, cwd=REPO, stdout=subprocess.PIPE, stderr=err)
    w.log_path = path  # type: ignore[attr-defined]
    return w


def finish(w: subprocess.Popen[bytes]) -> dict:
    out, _ = w.communicate(timeout=600)
    assert w.returncode == 0, w.log_path.read_text()[-3000:]  # type: ignore[attr-defined]
    return json.loads(out.decode().strip().splitlines()[-1])


def run_workers(env: Env, n: int, logs: Path) -> list[dict]:
    ws = [spawn(env, logs) for _ in range(n)]
    return [finish(w) for w in ws]


@pytest.fixture
def env4(kafka_admin, es):
    from kafka.admin import NewPartitions

    e = Env(kafka_admin, es)
    kafka_admin.create_partitions({e.raw: NewPartitions(total_count=4)})
    e.env["ACCESS_AUDIT_KAFKA_HANDOVER_PARTITIONS"] = "4"
    yield e
    e.cleanup(kafka_admin)


def test_twelve_failures_over_four_partitions_and_two_workers_make_one_alert_of_twelve(env4: Env, tmp_path):
    log = okta_failures(tmp_path / "okta.jsonl", "gprins@zorgwijk.nl", 12)
    port = free_port()
    ws = [spawn(env4, tmp_path, "20", "--health-port", str(port), "--health-host", "127.0.0.1"),
          spawn(env4, tmp_path)]
    time.sleep(12)  # both in the group, the partitions split between them, before anything arrives
    # keyed by source address: the twelve sign-ins land on four raw partitions, so on both workers
    assert env4.ship(log, log_type="okta.system", key_field="source.ip") == 12
    metrics = scrape(f"http://127.0.0.1:{port}/metrics", until="access_audit_events_total 1")
    stats = [finish(w) for w in ws]
    assert all(s["records"] > 0 for s in stats), f"both workers consumed raw records: {stats}"
    assert sum(s["events_new"] for s in stats) == 12
    brute = [a for a in alerts_by_id(env4).values() if a["rule_id"] == "login_brute_force"]
    assert len(brute) == 1, brute
    assert brute[0]["count"] == 12
    assert sum(s["alerts_new"] for s in stats) == len(alerts_by_id(env4))

    # status: the topology, the lag of every partition (all consumed) and the state per partition
    st = env4.cli("status", "--format", "json")["topology"]
    assert st["stages"]["handover"]["group"] == f"g{env4.tag}.by"
    rows = {(r["topic"], r["partition"]): r for r in st["partitions"]}
    assert {t for t, _ in rows} >= {env4.raw, f"g{env4.tag}.by.user.name"}
    assert all(r["lag"] == 0 for r in rows.values()), rows
    from access_audit.handover import partition_of

    owner = rows[(f"g{env4.tag}.by.user.name", partition_of(("gprins@zorgwijk.nl",), 4))]
    assert owner["state_rows"] > 0 and owner["committed"] > 0

    # the first worker's Prometheus endpoint counted what it consumed and handed over
    assert "# TYPE access_audit_records_total counter" in metrics
    assert 1 <= sample(metrics, "access_audit_records_total") <= stats[0]["records"]
    assert sample(metrics, "access_audit_handover_sent_total") >= 1
    assert "# TYPE access_audit_lag_messages gauge" in metrics


def sample(text: str, name: str) -> float:
    got = [ln.split()[1] for ln in text.splitlines() if ln.startswith(name + " ")]
    assert got, f"{name} not in the metrics"
    return float(got[0])


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scrape(url: str, until: str, timeout_s: float = 60) -> str:
    """The metrics text once it shows ``until``'s counter moved (or the last text after the timeout)."""
    import urllib.request

    text, end = "", time.monotonic() + timeout_s
    name = until.split()[0]
    while time.monotonic() < end:
        try:
            text = urllib.request.urlopen(url, timeout=5).read().decode()
            got = [ln for ln in text.splitlines() if ln.startswith(name + " ")]
            if got and float(got[0].split()[1]) >= float(until.split()[1]):
                return text
        except OSError:
            pass
        time.sleep(0.5)
    return text


def _alert_set(env: Env) -> dict[str, tuple]:
    # ids and counts: which event of a burst completes a finding (so an alert's first_seen) still
    # follows arrival order across raw partitions (allowed lateness is not built yet: issue 11 note)
    return {aid: (a["rule_id"], a["count"]) for aid, a in alerts_by_id(env).items()}


def one_then_many(kafka_admin, es, tmp_path: Path, feed) -> tuple[dict[str, tuple], dict[str, tuple]]:
    """The same input (``feed(env, folder)``) through one worker, and through two workers joined by a
    third while one of the first two is SIGKILLed mid-stream. Each run's event count must equal the
    events it parsed; returns both runs' alerts as id -> (rule, count)."""
    from kafka.admin import NewPartitions

    results = []
    for plan in ("one", "many"):
        env = Env(kafka_admin, es)
        try:
            kafka_admin.create_partitions({env.raw: NewPartitions(total_count=4)})
            env.env["ACCESS_AUDIT_KAFKA_HANDOVER_PARTITIONS"] = "4"
            env.env["ACCESS_AUDIT_BATCH_SIZE"] = "500"
            env.env["ACCESS_AUDIT_ALLOWED_LATENESS_MINUTES"] = REPLAY_LATENESS
            expected = feed(env, tmp_path / plan)
            if plan == "one":
                stats = run_workers(env, 1, tmp_path)
                expected = sum(s["events"] for s in stats) if expected is None else expected
            else:
                a, b = spawn(env, tmp_path), spawn(env, tmp_path)
                time.sleep(8)
                c = spawn(env, tmp_path)  # a worker added: the group rebalances
                time.sleep(5)
                a.send_signal(signal.SIGKILL)  # and one dies without a word
                a.communicate(timeout=60)
                finish(b)
                finish(c)
            assert env.doc_count() == (expected if expected is not None else results[0][1])
            results.append((_alert_set(env), env.doc_count()))
        finally:
            env.cleanup(kafka_admin)
    return results[0][0], results[1][0]


def test_workers_added_and_killed_give_the_alerts_of_one(kafka_admin, es, tmp_path):
    """30k sshd lines and an Okta brute force keyed by address: the same alerts (ids and counts)
    through one worker and through 2+1 workers with a SIGKILL, and the exact event count."""
    bulk = synthetic_auth_log(tmp_path / "bulk.log", 30_000, seed=11)
    attacks = okta_failures(tmp_path / "okta.jsonl", "gprins@zorgwijk.nl", 30)
    n_ev, _ = expected_events(bulk, year=2026)

    def feed(env: Env, _folder: Path) -> int:
        env.ship(bulk, year="2026")
        env.ship(attacks, log_type="okta.system", key_field="source.ip")
        return n_ev + 30

    one, many = one_then_many(kafka_admin, es, tmp_path, feed)
    assert one, "the input raises alerts"
    assert many == one


def ship_demo(env: Env, folder: Path, days: int = 2) -> int:
    """The demo company's traffic (every log type of the demo) shipped file by file, keyed by source
    address; its directory and catalogue configured as a user would. Returns the records shipped."""
    from access_audit.demo import SOURCES, generate, write_files
    from access_audit.demo.context import write_context

    records, _ = generate(seed=7, days=days)
    directory, resources = write_context(folder)
    env.env["ACCESS_AUDIT_IDENTITY_FILE"] = str(directory)
    env.env["ACCESS_AUDIT_RESOURCES_FILE"] = str(resources)
    shipped = 0
    for src, path in sorted(write_files(records, folder / "logs").items()):
        shipped += env.ship(path, log_type=SOURCES[src][1], year="2026", source_name=src)
    return shipped


def test_demo_traffic_through_one_and_three_workers_gives_the_same_alerts(kafka_admin, es, tmp_path):
    """Two days of the demo (all rule kinds: thresholds, sequences, value counts, new terms,
    geo-velocity, baselines, need-to-know): the same alerts (ids and counts) through one worker and
    through 2+1 workers with a SIGKILL; every event stored once (the single run's parsed count)."""
    shipped: list[int] = []

    def feed(env: Env, folder: Path) -> None:
        shipped.append(ship_demo(env, folder))

    one, many = one_then_many(kafka_admin, es, tmp_path, feed)
    assert shipped[0] > 20_000 and len(one) > 10, (shipped, len(one))
    assert many == one


def test_topics_create_makes_the_topology_of_the_loaded_rules(env: Env, kafka_admin):
    env.env["ACCESS_AUDIT_KAFKA_HANDOVER_PARTITIONS"] = "5"
    r = subprocess.run([sys.executable, "-m", "access_audit.cli", "topics", "--create", "--format", "json"],
                       env=env.env, cwd=REPO, capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    rows = [json.loads(line) for line in r.stdout.decode().splitlines()]
    handover = {row["topic"]: row for row in rows if row["stage"] == "2"}
    by_user = f"g{env.tag}.by.user.name"
    assert by_user in handover and "login_brute_force" in handover[by_user]["rules"]
    existing = set(kafka_admin.list_topics())
    assert set(handover) <= existing and env.raw in existing
    described = {d["topic"]: len(d["partitions"]) for d in kafka_admin.describe_topics(list(handover))}
    assert set(described.values()) == {5}


def _ship_records(env: Env, records, folder: Path) -> int:
    from access_audit.demo import SOURCES, write_files

    return sum(env.ship(path, log_type=SOURCES[src][1], year="2026", source_name=src)
               for src, path in sorted(write_files(records, folder).items()))


def _settled(env: Env, timeout_s: float = 300) -> int:
    """Wait until the event count stops moving (the workers have taken in what was shipped)."""
    last, still, deadline = -1, 0, time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        n = env.doc_count()
        still = still + 1 if n == last and n > 0 else 0
        if still >= 4:
            return n
        last = n
        time.sleep(1.5)
    raise AssertionError(f"the workers did not settle within {timeout_s} s (at {last} events)")


def test_a_restart_of_all_workers_keeps_the_baselines(kafka_admin, es, tmp_path):
    """Day one of the demo, then every worker stops; day two to workers started afresh: the same
    alerts (ids and counts) as two workers that ran through both days, so no baseline (new terms,
    dormant accounts, the anomaly profiles) is learnt again from history and alerts on it."""
    from kafka.admin import NewPartitions

    from access_audit.demo import generate
    from access_audit.demo.context import write_context

    records, _ = generate(seed=7, days=2)
    # the demo starts with weeks of quiet history (for the baselines) and ends with its two days:
    # the restart falls at the start of the last day
    cut = datetime.combine(records[-1].timestamp.date(), datetime.min.time(), tzinfo=UTC)
    day1, day2 = [r for r in records if r.timestamp < cut], [r for r in records if r.timestamp >= cut]
    assert len(day1) > 5_000 and len(day2) > 5_000, (len(day1), len(day2))
    runs: dict[str, dict[str, tuple]] = {}
    for plan in ("through", "restart"):
        env = Env(kafka_admin, es)
        folder = tmp_path / plan
        try:
            kafka_admin.create_partitions({env.raw: NewPartitions(total_count=4)})
            env.env["ACCESS_AUDIT_KAFKA_HANDOVER_PARTITIONS"] = "4"
            env.env["ACCESS_AUDIT_BATCH_SIZE"] = "500"
            env.env["ACCESS_AUDIT_ALLOWED_LATENESS_MINUTES"] = REPLAY_LATENESS
            directory, resources = write_context(folder)
            env.env["ACCESS_AUDIT_IDENTITY_FILE"] = str(directory)
            env.env["ACCESS_AUDIT_RESOURCES_FILE"] = str(resources)
            _ship_records(env, day1, folder / "day1")
            if plan == "through":
                ws = [spawn(env, tmp_path, "30") for _ in range(2)]
                _settled(env)
                time.sleep(3)  # stage 2 takes in the hand-over of day one
                _ship_records(env, day2, folder / "day2")
                for w in ws:
                    finish(w)
            else:
                run_workers(env, 2, tmp_path)  # both stop when idle: nothing of day one left running
                _ship_records(env, day2, folder / "day2")
                run_workers(env, 2, tmp_path)
            runs[plan] = _alert_set(env)
        finally:
            env.cleanup(kafka_admin)
    baseline_rules = {"login_from_new_country", "dormant_account_reused", "personal_data_read_anomaly"}
    fired = {rule for rule, _ in runs["through"].values()}
    assert runs["through"], "the demo raises alerts"
    assert runs["restart"] == runs["through"], (
        sorted(set(runs["restart"].items()) ^ set(runs["through"].items())))
    assert fired & baseline_rules, fired  # the baselines were exercised: their rules fire on day two's attacks
