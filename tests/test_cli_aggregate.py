"""`access-audit query --top/--histogram`: the engineers' counting questions on the command line
("the top 10 source addresses of one user", "an hourly histogram of one action"), answered by the
store's aggregations and checked against the events the same query lists."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from access_audit.cli import app
from access_audit.store.sqlite import SqliteStore


@pytest.fixture(scope="module")
def data_dir(datasets: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    openssh_log = datasets / "loghub" / "OpenSSH_2k.log"
    d = tmp_path_factory.mktemp("agg") / "data"
    r = CliRunner().invoke(app, ["run", "-i", str(openssh_log), "-q", "--data-dir", str(d)])
    assert r.exit_code == 0, r.output
    return d


def _cli(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(app, list(args))
    return r.exit_code, r.stdout, r.stderr


def _events(d: Path, q: str) -> list[dict]:
    code, out, err = _cli("query", q, "--limit", "100000", "-f", "json", "--data-dir", str(d))
    assert code == 0, err
    return [json.loads(x) for x in out.splitlines()]


def test_top_values_are_the_counts_of_the_listed_events(data_dir: Path) -> None:
    q = "event.action:ssh_login AND event.outcome:failure"
    listed = _events(data_dir, q)
    assert len(listed) > 100
    code, out, err = _cli("query", q, "--top", "source.ip", "--top", "user.name", "--limit", "3", "-f", "json",
                          "--data-dir", str(data_dir))
    assert code == 0, err
    rows = [json.loads(x) for x in out.splitlines()]
    for field, path in (("source.ip", ("source", "ip")), ("user.name", ("user", "name"))):
        want = Counter(e.get(path[0], {}).get(path[1]) for e in listed)
        want.pop(None, None)
        got = [(r["value"], r["events"]) for r in rows if r["field"] == field]
        assert len(got) == 3
        assert [n for _, n in got] == sorted((n for _, n in want.items()), reverse=True)[:3]
        assert all(want[v] == n for v, n in got)


def test_histogram_buckets_sum_to_the_events_and_land_in_their_hour(data_dir: Path) -> None:
    q = "event.action:ssh_login"
    listed = _events(data_dir, q)
    code, out, err = _cli("query", q, "--histogram", "1h", "-f", "json", "--data-dir", str(data_dir))
    assert code == 0, err
    buckets = [json.loads(x) for x in out.splitlines()]
    assert sum(b["events"] for b in buckets) == len(listed)
    per_hour = Counter(datetime.fromisoformat(e["@timestamp"].replace("Z", "+00:00")).replace(
        minute=0, second=0, microsecond=0) for e in listed)
    assert {datetime.fromisoformat(b["start"]): b["events"] for b in buckets if b["events"]} == per_hour
    assert all(b["interval"] == "1h" for b in buckets)

    code, out, _ = _cli("query", q, "--histogram", "1h", "--top", "user.name", "--data-dir", str(data_dir))
    assert code == 0 and "top user.name" in out and "events per 1h" in out  # the table form


def test_aggregations_are_in_the_self_audit_and_bad_input_is_a_clear_error(data_dir: Path) -> None:
    code, _, err = _cli("query", "*", "--top", "no.such.field", "--data-dir", str(data_dir))
    assert code != 0 and "Traceback" not in err and "no.such.field" in err
    code, _, err = _cli("query", "*", "--histogram", "7parsecs", "--data-dir", str(data_dir))
    assert code != 0 and "Traceback" not in err and "7parsecs" in err
    code, _, err = _cli("query", "user.name:fztu", "--top", "source.ip", "--data-dir", str(data_dir))
    assert code == 0, err
    s = SqliteStore(data_dir / "events.db")
    try:
        rec = s.self_audit(limit=100)[0]
    finally:
        s.close()
    assert rec["action"] == "aggregate" and rec["interface"] == "cli" and "by source.ip" in rec["query"]
