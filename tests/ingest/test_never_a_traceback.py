"""Issue 14: every mistake a new user makes ends in one clear line and a non-zero exit, never a traceback."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"


def cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("ACCESS_AUDIT_")}
    base["PYTHONPATH"] = str(SRC)
    r = subprocess.run([sys.executable, "-m", "access_audit.cli", *args], capture_output=True, text=True,
                       env={**base, "COLUMNS": "200", **(env or {})}, cwd=cwd, timeout=300)
    if "--debug" not in args:
        assert "Traceback" not in r.stdout + r.stderr, r.stderr
    return r


@pytest.fixture
def logs(openssh_log: Path, tmp_path: Path) -> Path:
    d = tmp_path / "logs"
    d.mkdir()
    data = openssh_log.read_bytes()
    (d / "auth.log").write_bytes(data[:len(data) // 2])
    (d / "corrupt.gz").write_bytes(b"this is not gzip\n")
    (d / "truncated.gz").write_bytes(gzip.compress(data[len(data) // 2:])[:6000])
    (d / "NOTES.md").write_text("# notes\n")
    return d


def test_a_corrupt_and_a_truncated_gz_in_a_folder(logs: Path, tmp_path: Path):
    r = cli("run", "-q", "--input", str(logs), "--data-dir", str(tmp_path / "dd"))
    assert r.returncode == 1
    s = json.loads(r.stdout)
    errors = {Path(e["path"]).name: e for e in s["file_errors"]}
    assert "corrupt gzip" in errors["corrupt.gz"]["reason"] and errors["corrupt.gz"]["lines_read"] == 0
    assert "truncated gzip" in errors["truncated.gz"]["reason"] and errors["truncated.gz"]["lines_read"] > 100
    assert s["events_new"] == s["events"] > 1000 + errors["truncated.gz"]["lines_read"]  # the rest is stored
    assert [Path(p).name for p in s["skipped_files"]] == ["NOTES.md"]
    assert "skipped" in r.stderr and "NOTES.md" in r.stderr and "truncated gzip" in r.stderr

    alone = cli("run", "-q", "--input", str(logs / "corrupt.gz"), "--data-dir", str(tmp_path / "d2"))
    assert alone.returncode == 1 and "corrupt gzip file" in alone.stderr


def test_wrong_log_type_or_year_exits_non_zero_with_a_hint(logs: Path, tmp_path: Path):
    r = cli("run", "-q", "--input", str(logs / "auth.log"), "--log-type", "nginx", "--data-dir", str(tmp_path / "a"))
    assert r.returncode == 1 and "became a dead letter" in r.stderr and "--log-type nginx right?" in r.stderr
    s = json.loads(r.stdout)
    assert s["events"] == 0 and s["dead_letters_new"] == s["dead_letters"] > 900
    assert list(s["dead_letter_reasons"]) == ["[http] not an access log line"]  # the canonical name, not nginx
    again = json.loads(cli("run", "-q", "--input", str(logs / "auth.log"), "--log-type", "nginx",
                           "--data-dir", str(tmp_path / "a")).stdout)
    assert again["dead_letters_new"] == 0 and again["dead_letters"] == s["dead_letters"]

    r = cli("run", "-q", "--input", str(logs / "auth.log"), "--year", "2099", "--data-dir", str(tmp_path / "b"))
    assert r.returncode == 1 and "--year 2099 right?" in r.stderr
    r = cli("run", "--input", str(logs / "auth.log"), "--year", "99999")
    assert r.returncode == 2 and "--year" in r.stderr


@pytest.mark.parametrize("args, env, expect", [
    (("query", "--since", "99999999d"), {}, "invalid time"),
    (("status",), {"ACCESS_AUDIT_STORE": "mongodb"}, "invalid setting STORE"),
    (("status",), {"ACCESS_AUDIT_BATCH_SIZE": "abc"}, "invalid setting BATCH_SIZE"),
    (("serve", "--port", "99999"), {}, "--port"),
    (("detectors", "lint", "--rules", "/no/such/rules"), {}, "does not exist"),
    (("status",), {"ACCESS_AUDIT_CONFIG": "/no/such/config.yml"}, "no such config file"),
])
def test_bad_input_is_one_line_and_non_zero(args, env, expect, tmp_path: Path):
    (tmp_path / "dd").mkdir()
    (tmp_path / "dd" / "events.db").touch()
    r = cli(*args, env={"ACCESS_AUDIT_DATA_DIR": str(tmp_path / "dd"), **env})
    assert r.returncode != 0 and expect in r.stderr, r.stderr


def test_config_file_problems(tmp_path: Path):
    bad = tmp_path / "bad.yml"
    bad.write_text("slack_channel: [\n")
    r = cli("status", env={"ACCESS_AUDIT_CONFIG": str(bad)})
    assert r.returncode == 2 and "not valid YAML (line 2" in r.stderr

    typo = tmp_path / "typo.yml"
    typo.write_text("SLACK_TOKN: xoxb-1\nbatch_size: -5\n")
    r = cli("status", env={"ACCESS_AUDIT_CONFIG": str(typo)})
    assert "SLACK_TOKN is not a setting" in r.stderr and "did you mean SLACK_TOKEN?" in r.stderr
    assert r.returncode == 2 and "invalid setting BATCH_SIZE" in r.stderr

    r = cli("--version", env={"ACCESS_AUDIT_SLAK_CHANNEL": "#x"})
    assert r.returncode == 0  # --version needs no settings; the typo is warned where settings are read
    r = cli("status", "--data-dir", str(tmp_path / "none"), env={"ACCESS_AUDIT_SLAK_CHANNEL": "#x"})
    assert "ACCESS_AUDIT_SLAK_CHANNEL is not a setting" in r.stderr and "ACCESS_AUDIT_SLACK_CHANNEL" in r.stderr


def test_an_unexpected_error_is_one_line_with_a_debug_hint(tmp_path: Path):
    # A folder where the store's file should be: sqlite cannot open it (no handler of ours expects this).
    (tmp_path / "events.db").mkdir()
    r = cli("status", "--data-dir", str(tmp_path))
    assert r.returncode != 0
    assert "error:" in r.stderr and "--debug" in r.stderr and len(r.stderr.strip().splitlines()) <= 3
    r = cli("status", "--data-dir", str(tmp_path), "--debug")
    assert r.returncode != 0 and "Traceback" in r.stderr  # asked for


def test_ship_to_an_unreachable_kafka_retries_visibly_and_gives_up(logs: Path):
    import time

    t0 = time.monotonic()
    r = cli("ship", str(logs / "auth.log"), "--timeout", "4",
            env={"ACCESS_AUDIT_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"})
    assert r.returncode == 2 and time.monotonic() - t0 < 60, r.stderr
    assert "does not answer" in r.stderr and "retrying in" in r.stderr and "giving up in" in r.stderr
    assert "cannot reach Kafka for the shipper after" in r.stderr.splitlines()[-1]
    assert "ECONNREFUSED" not in r.stderr  # the client's own log lines stay quiet
