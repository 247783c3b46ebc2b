"""access-audit alerts list|show|ack|resolve, dead-letters list, and --format everywhere it is offered."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACCESS_AUDIT_")}
    r = subprocess.run([sys.executable, "-m", "access_audit.cli", *args], capture_output=True, text=True,
                       env={**env, "PYTHONPATH": str(SRC), "COLUMNS": "200"}, timeout=300)
    assert "Traceback" not in r.stdout + r.stderr, r.stderr
    return r


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory, datasets: Path) -> str:
    dd = tmp_path_factory.mktemp("alerts") / "dd"
    log = tmp_path_factory.mktemp("logs") / "auth.log"
    log.write_bytes((datasets / "loghub" / "OpenSSH_2k.log").read_bytes().rstrip(b"\n") + b"\n\x00\xff junk line\n")
    assert cli("run", "-q", "--input", str(log), "--data-dir", str(dd)).returncode == 0
    return str(dd)


def test_list_show_ack_resolve(data_dir: str):
    rows = [json.loads(x) for x in cli("alerts", "list", "-f", "json", "--data-dir", data_dir).stdout.splitlines()]
    assert len(rows) >= 10 and all(r["status"] == "open" for r in rows)
    target = next(r for r in rows if r["rule_id"] == "ssh_brute_force")
    shown = cli("alerts", "show", target["id"][:10], "--data-dir", data_dir)
    assert shown.returncode == 0 and target["id"] in shown.stdout and "access-audit query" in shown.stdout

    r = cli("alerts", "ack", target["id"][:10], "--note", "looking", "--data-dir", data_dir)
    assert r.returncode == 0 and "now acknowledged" in r.stderr
    acked = cli("alerts", "list", "--status", "acknowledged", "-f", "csv", "--data-dir", data_dir).stdout
    (row,) = csv.DictReader(io.StringIO(acked))
    assert row["id"] == target["id"]
    assert cli("alerts", "resolve", target["id"], "--data-dir", data_dir).returncode == 0
    doc = json.loads(cli("alerts", "show", target["id"], "-f", "json", "--data-dir", data_dir).stdout)
    assert doc["status"] == "resolved" and [h["action"] for h in doc["context"]["history"]] == ["ack", "resolve"]
    assert doc["context"]["history"][0]["note"] == "looking"

    missing = cli("alerts", "show", "ffffffffffff", "--data-dir", data_dir)
    assert missing.returncode == 2 and "no alert" in missing.stderr


def test_dead_letters_list(data_dir: str):
    (dl,) = [json.loads(x) for x in cli("dead-letters", "list", "-f", "json", "--data-dir", data_dir).stdout
             .splitlines()]
    assert dl["reason"].startswith("unrecognised format") and dl["origin"].endswith(":2001")
    assert "junk line" in cli("dead-letters", "list", "--data-dir", data_dir).stdout


@pytest.mark.parametrize("args", [("alerts", "list"), ("dead-letters", "list"), ("status",), ("query",),
                                  ("detectors", "list"), ("detectors", "test")])
def test_unknown_formats_are_refused_and_csv_is_csv(args, data_dir: str):
    r = cli(*args, "-f", "xml", *(("--data-dir", data_dir) if args[0] != "detectors" else ()))
    assert r.returncode == 2 and "unknown format 'xml'" in r.stderr
    r = cli(*args, "-f", "csv", *(("--data-dir", data_dir) if args[0] != "detectors" else ()))
    assert r.returncode == 0
    header = next(csv.reader(io.StringIO(r.stdout)))
    assert len(header) >= 3 and not r.stdout.lstrip().startswith(("{", "┏", "─"))
