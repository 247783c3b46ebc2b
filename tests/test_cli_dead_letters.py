"""dead-letters show and replay: a dead letter is kept whole, and can be run again after a fix."""

from __future__ import annotations

import json
from pathlib import Path

from test_cli_alerts import cli


def _rows(data_dir: Path, *extra: str) -> list[dict]:
    r = cli("dead-letters", "list", "-f", "json", "--limit", "10000", "--data-dir", str(data_dir), *extra)
    assert r.returncode == 0, r.stderr
    return [json.loads(x) for x in r.stdout.splitlines()]


def test_replay_after_the_wrong_year_was_given(tmp_path: Path, datasets: Path):
    # The OpenSSH sample is dated December; given a year in the future every line is refused.
    log = tmp_path / "auth.log"
    lines = (datasets / "loghub" / "OpenSSH_2k.log").read_bytes().splitlines()[:300]
    log.write_bytes(b"\n".join([*lines, b"\x00\xff junk line"]) + b"\n")
    dd = tmp_path / "dd"
    r = cli("run", "-q", "--input", str(log), "--year", "2099", "--data-dir", str(dd))
    assert r.returncode == 1 and "--year 2099" in r.stderr
    dead = _rows(dd)
    assert len(dead) == 301 and sum("in the future" in d["reason"] for d in dead) == 300

    junk = next(d for d in dead if d["raw"].startswith("\x00"))
    shown = json.loads(cli("dead-letters", "show", junk["id"][:8], "--data-dir", str(dd)).stdout)
    assert shown["raw"] == "\\x00\\xff junk line" and shown["bytes"] == 12 and shown["replayed"] is None
    assert cli("dead-letters", "show", "zz", "--data-dir", str(dd)).returncode == 2

    dry = cli("dead-letters", "replay", "--year", "2025", "--dry-run", "--data-dir", str(dd))
    assert dry.returncode == 0 and "301 dead letter(s) chosen: 300 parse now, 1 still fail" in dry.stderr
    assert len(_rows(dd)) == 301, "a dry run changes nothing"

    r = cli("dead-letters", "replay", "--year", "2025", "--data-dir", str(dd))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert (out["replayed"], out["events"], out["events_new"]) == (300, 300, 300) and out["alerts_new"] > 0
    assert [d["raw"] for d in _rows(dd)] == ["\x00\ufffd junk line"], "only the junk line is left to look at"
    assert len(_rows(dd, "--all")) == 301, "the replayed ones are kept as evidence"
    q = cli("query", "-f", "json", "--limit", "1000", "--data-dir", str(dd))
    assert len(q.stdout.splitlines()) == 300

    again = cli("dead-letters", "replay", "--year", "2025", "--data-dir", str(dd))
    assert again.returncode == 0 and "1 dead letter(s) chosen: 0 parse now, 1 still fail" in again.stderr
    q = cli("query", "-f", "json", "--limit", "1000", "--data-dir", str(dd))
    assert len(q.stdout.splitlines()) == 300, "replaying twice adds nothing"
