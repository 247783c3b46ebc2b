"""`detectors eval --samples`: the default pack on the real third-party logs of ../shared/datasets,
file by file, against the reviewed expectations (evaluate.REAL_SAMPLES): the known attacks raise
their alert (with the events they count), the benign recordings raise nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from access_audit.detect.evaluate import REAL_SAMPLES, evaluate_samples


def test_the_pack_raises_what_each_real_log_must_raise(datasets: Path):
    rows = evaluate_samples(datasets)
    assert len(rows) == len(REAL_SAMPLES) >= 18
    assert [r.file for r in rows if not r.ok] == [], [(r.file, r.alerts, r.expected) for r in rows if not r.ok]
    by = {r.file: r for r in rows}
    assert by["otrf_aws_cloudtrail/ec2_proxy_s3_exfiltration_2020-09-14011940.json"].counted == {
        "aws_instance_credentials_outside_aws": 11}
    assert sum(r.events for r in rows) > 5000


def test_a_wrong_expectation_is_reported(datasets: Path):
    wrong = [{"file": "loghub/OpenSSH_2k.log", "alerts": {"ssh_brute_force": 8}},  # ssh_invalid_user left out
             {"file": "no/such/file.log", "alerts": {}}]
    a, b = evaluate_samples(datasets, samples=wrong)
    assert not a.ok and a.alerts["ssh_invalid_user"] == 26
    assert b.missing and not b.ok


def test_the_command_reports_and_checks(datasets: Path):
    r = subprocess.run([sys.executable, "-m", "access_audit.cli", "detectors", "eval", "--samples", str(datasets),
                        "--check", "--format", "json"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    rows = [json.loads(x) for x in r.stdout.splitlines()]
    assert all(x["ok"] for x in rows) and len(rows) == len(REAL_SAMPLES)
    r = subprocess.run([sys.executable, "-m", "access_audit.cli", "detectors", "eval", "--samples", "/nonexistent"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "is not a folder" in r.stderr and "Traceback" not in r.stderr
