"""The scheduler service sends due breach reminders once, also across a restart."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path


def cli(*args: str, dd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "access_audit.cli", *args, "--data-dir", str(dd)],
                          capture_output=True, text=True, timeout=120)


def test_scheduler_fires_overdue_reminders_once(tmp_path: Path):
    r = cli("breach", "open", "--title", "Lost laptop", "--summary", "A laptop with customer data was stolen",
            "--format", "json", dd=tmp_path)
    assert r.returncode == 0, r.stderr
    case_id = json.loads(r.stdout)["id"]
    # The 1h-before reminder of the 72h GDPR clock falls due 3 seconds from now.
    aware = (datetime.now(UTC) - timedelta(hours=71) + timedelta(seconds=3)).isoformat(timespec="seconds")
    r = cli("breach", "aware", case_id, "--at", aware, "--reason", "police report", dd=tmp_path)
    assert r.returncode == 0, r.stderr

    first = cli("scheduler", "--max-seconds", "8", dd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.stderr.count(case_id) == 1, first.stderr  # fired at its moment, by APScheduler
    second = cli("scheduler", "--max-seconds", "2", dd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert case_id not in second.stderr, "a restart must not send the same reminders again"
