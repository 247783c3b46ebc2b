"""The scheduler SIGKILLed with reminders due: every reminder fires exactly once over the killed
run and its restart (the claim in the repository before each send; missed ones fire at start)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def cli(*args: str, dd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "access_audit.cli", *args, "--data-dir", str(dd)],
                          capture_output=True, text=True, timeout=120, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO / "src")})


def test_scheduler_killed_with_reminders_due_fires_each_once(tmp_path: Path) -> None:
    cases = []
    for i in range(4):
        r = cli("breach", "open", "--title", f"Case {i}", "--summary", "Records exposed", "--format", "json",
                dd=tmp_path)
        assert r.returncode == 0, r.stderr
        cases.append(json.loads(r.stdout)["id"])
    t0 = datetime.now(UTC)
    for cid, d in zip(cases, (25, 28, 45, 48), strict=True):
        # The 1h-before reminder of the case's 72h clock falls due at t0 + d (after these commands).
        aware = (t0 - timedelta(hours=71) + timedelta(seconds=d)).isoformat(timespec="seconds")
        assert cli("breach", "aware", cid, "--at", aware, "--reason", "report", dd=tmp_path).returncode == 0
    assert datetime.now(UTC) < t0 + timedelta(seconds=22), "the setup was too slow for the timings below"
    log1 = tmp_path / "first.log"
    with log1.open("w") as fh:
        p = subprocess.Popen([sys.executable, "-m", "access_audit.cli", "scheduler", "--data-dir", str(tmp_path)],
                             stderr=fh, stdout=subprocess.DEVNULL, cwd=REPO,
                             env={**os.environ, "PYTHONPATH": str(REPO / "src")})
        deadline = t0 + timedelta(seconds=36)  # two fired, two still due
        time.sleep(max(0.0, (deadline - datetime.now(UTC)).total_seconds()))
        p.send_signal(signal.SIGKILL)
        p.wait()
    first = log1.read_text()
    second = cli("scheduler", "--max-seconds", "20", dd=tmp_path)
    assert second.returncode == 0, second.stderr
    both = first + second.stderr
    counts = {c: both.count(c) for c in cases}
    assert counts == dict.fromkeys(cases, 1), (counts, first[-2000:], second.stderr[-2000:])
    assert sum(first.count(c) for c in cases) >= 1, "the killed run had fired some"
    assert sum(second.stderr.count(c) for c in cases) >= 1, "the restart fired the rest"
