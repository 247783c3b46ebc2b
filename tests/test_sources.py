"""Log sources that go silent (issue 16): silent, dropped, ok and too sparse to judge, by log
type x host or cloud account, in both stores; one alert per silent source and window whose count
rises at each check; the `sources` command's table, exit code and `--alert`."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from access_audit import sources as src
from access_audit.core.events import AccessEvent
from access_audit.store.sqlite import SqliteStore

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
QUIET = timedelta(hours=2)


def _ev(i: int, ds: str, ts: datetime, host: str | None = None, account: str | None = None) -> AccessEvent:
    doc: dict[str, Any] = {"@timestamp": ts.isoformat(), "event": {"id": f"{ds}-{host}-{account}-{i}", "dataset": ds}}
    if host:
        doc["host"] = {"name": host}
    if account:
        doc["cloud"] = {"provider": "aws", "account": {"id": account}}
    return AccessEvent.from_doc(doc)


def _spread(n: int, since: datetime, until: datetime) -> list[datetime]:
    step = (until - since) / n
    return [since + step * i for i in range(n)]


def _traffic() -> list[AccessEvent]:
    base_lo, base_hi = NOW - QUIET - timedelta(days=1), NOW - QUIET
    evs = []
    # bastion: 48 a day and 6 in the last two hours: ok
    evs += [_ev(i, "syslog", t, host="bastion") for i, t in enumerate(_spread(48, base_lo, base_hi))]
    evs += [_ev(100 + i, "syslog", t, host="bastion") for i, t in enumerate(_spread(6, base_hi, NOW))]
    # db1: 40 a day, then nothing: silent
    evs += [_ev(i, "syslog", t, host="db1") for i, t in enumerate(_spread(40, base_lo, base_hi))]
    # the AWS account: 1,200 a day (100 expected in two hours), 3 in the last two: dropped
    evs += [_ev(i, "aws.cloudtrail", t, account="123456789012") for i, t in enumerate(_spread(1200, base_lo, base_hi))]
    evs += [_ev(2000 + i, "aws.cloudtrail", t, account="123456789012") for i, t in enumerate(_spread(3, base_hi, NOW))]
    # Okta (no host, no account): 5 a day, too few to judge
    evs += [_ev(i, "okta.system", t) for i, t in enumerate(_spread(5, base_lo, base_hi))]
    # the week before the baseline does not count
    evs += [_ev(5000 + i, "github.audit", NOW - timedelta(days=5, hours=i)) for i in range(50)]
    return evs


@pytest.fixture(params=["sqlite", pytest.param("elasticsearch", marks=pytest.mark.integration)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "sqlite":
        s: Any = SqliteStore(tmp_path / "events.db")
    else:
        from access_audit.store.elasticsearch import ElasticsearchStore

        s = ElasticsearchStore(request.getfixturevalue("es_url"), prefix=f"aa-src-{uuid4().hex[:8]}")
        s.setup()
    s.write_events(_traffic())
    if hasattr(s, "refresh"):
        s.refresh()
    yield s
    if request.param == "elasticsearch":
        s.es.options(ignore_status=404).indices.delete(index=f"{s.prefix}-*", expand_wildcards="all")
        s.es.options(ignore_status=404).indices.delete_index_template(name=f"{s.prefix}-events")
    s.close()


def test_each_source_is_judged_by_its_own_rate(store: Any):
    rows = {r.name: (r.status, r.baseline, r.recent) for r in src.source_health(store, NOW, quiet=QUIET)}
    assert rows == {
        "syslog host.name=db1": ("silent", 40, 0),
        "aws.cloudtrail cloud.account.id=123456789012": ("dropped", 1200, 3),
        "syslog host.name=bastion": ("ok", 48, 6),
        "okta.system": ("sparse", 5, 0),
        "github.audit": ("silent", 0, 0),  # stopped five days ago: still silent
    }
    worst = [r.status for r in src.source_health(store, NOW, quiet=QUIET)]
    assert worst == ["silent", "silent", "dropped", "ok", "sparse"]


def test_a_source_that_stays_silent_is_one_alert_counting_the_checks(store: Any):
    sink = _Sink()
    for minutes in (0, 5, 10):  # three checks, five minutes apart
        now = NOW + timedelta(minutes=minutes)
        rows = src.source_health(store, now, quiet=QUIET)
        src.raise_alerts(store, [sink], src.silence_alerts(rows, now, quiet=QUIET))
        if hasattr(store, "refresh"):
            store.refresh()
    stored = {a.dedup_key: a for a in store.alerts(rule_id=src.RULE_ID, limit=100)}
    assert set(stored) == {"syslog|host.name|db1", "aws.cloudtrail|cloud.account.id|123456789012", "github.audit"}
    assert stored["syslog|host.name|db1"].count == 3
    assert stored["syslog|host.name|db1"].host == "db1"
    assert stored["syslog|host.name|db1"].first_seen == NOW
    assert "no event in the last 2 h" in stored["syslog|host.name|db1"].description
    assert [new for _, new in sink.seen] == [True] * 3 + [False] * 6
    # the evidence query finds what the source sent last
    assert stored["syslog|host.name|db1"].query == 'event.dataset:"syslog" AND host.name:"db1"'


class _Sink:
    def __init__(self) -> None:
        self.seen: list[tuple[str, bool]] = []

    def emit(self, alert: Any, new: bool) -> None:
        self.seen.append((alert.rule_id, new))

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def test_the_sources_command_shows_the_table_exits_1_and_raises_alerts(tmp_path: Path):
    s = SqliteStore(tmp_path / "events.db")
    s.write_events(_traffic())
    s.close()

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "access_audit.cli", "sources", "--data-dir", str(tmp_path),
                               "--at", NOW.isoformat(), *args], capture_output=True, text=True, timeout=120)

    r = cli("--format", "json")
    assert r.returncode == 1, r.stderr  # a source is silent
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [(x["status"], x["dataset"], x["key"]) for x in rows][:3] == [
        ("silent", "github.audit", None), ("silent", "syslog", "db1"), ("dropped", "aws.cloudtrail", "123456789012")]
    r = cli()
    assert r.returncode == 1 and "silent" in r.stdout and "db1" in r.stdout and "Traceback" not in r.stderr
    r = cli("--alert")
    assert "3 new alert(s)" in r.stderr
    lines = (tmp_path / "alerts.jsonl").read_text().splitlines()
    assert sorted(json.loads(x)["title"] for x in lines) == [
        "Log source dropped: aws.cloudtrail cloud.account.id=123456789012", "Log source silent: github.audit",
        "Log source silent: syslog host.name=db1"]
    # three days on, nothing came in: every source known in the week before is silent
    r = cli("--at", (NOW + timedelta(days=3)).isoformat(), "--format", "json")
    assert r.returncode == 1
    assert {(x["dataset"], x["key"], x["status"]) for x in map(json.loads, r.stdout.splitlines())} == {
        ("syslog", "db1", "silent"), ("syslog", "bastion", "silent"), ("aws.cloudtrail", "123456789012", "silent"),
        ("okta.system", None, "sparse")}  # GitHub's last events are eight days old by then: out of the week


def test_the_scheduler_checks_the_sources_and_raises_the_alert(tmp_path: Path):
    import os

    now = datetime.now(UTC)
    s = SqliteStore(tmp_path / "events.db")
    s.write_events([_ev(i, "syslog", now - timedelta(hours=3, minutes=i), host="db1") for i in range(30)]
                   + [_ev(100 + i, "syslog", now - timedelta(minutes=i), host="bastion") for i in range(30)])
    s.close()
    env = {**os.environ, "ACCESS_AUDIT_DATA_DIR": str(tmp_path)}
    r = subprocess.run([sys.executable, "-m", "access_audit.cli", "scheduler", "--max-seconds", "4"],
                       capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stderr
    assert "log sources checked every 5 min" in r.stderr
    alerts = [json.loads(x) for x in (tmp_path / "alerts.jsonl").read_text().splitlines()]
    assert [(a["rule_id"], a["host"]) for a in alerts] == [(src.RULE_ID, "db1")]  # db1 stopped 3 h ago; not bastion
