"""``access-audit breach ...`` end to end, in a subprocess, on a temporary data directory."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from breach_helpers import FULL


def run(data_dir: Path, *args: str, ok: bool = True, input: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ACCESS_AUDIT_ACTOR": "Fenna de Vries", "ACCESS_AUDIT_ORGANISATION_NAME": "Zorgwijk B.V.",
           "ACCESS_AUDIT_DPO_NAME": "Fenna de Vries", "ACCESS_AUDIT_DPO_EMAIL": "fg@zorgwijk.example",
           "COLUMNS": "200"}
    p = subprocess.run([sys.executable, "-m", "access_audit.cli", "breach", *args, "--data-dir", str(data_dir)],
                       capture_output=True, text=True, env=env, timeout=120, input=input or "")
    if ok:
        assert p.returncode == 0, p.stderr
    return p


def test_round_trip(tmp_path: Path):
    d = tmp_path / "data"
    p = run(d, "open", "--title", "Mass export", "--summary", "A support employee exported customers",
            "--format", "json")
    case = json.loads(p.stdout)
    cid = case["id"]
    assert cid.startswith("BR-") and case["state"] == "reported"
    assert case["details"]["contact"]["email"] == "fg@zorgwijk.example"
    assert [c["status"] for c in case["clocks"]] == ["waiting"]
    assert run(d, "open", "--title", "second").stdout.strip() != cid  # text: only the new id

    run(d, "aware", cid, "--at", "2026-03-27 10:00", "--reason", "logs confirm", "--yes")  # no offset: Amsterdam
    show = json.loads(run(d, "show", cid, "--format", "json").stdout)
    assert show["state"] == "confirmed" and show["timezone"] == "Europe/Amsterdam"
    assert show["awareness"]["at"] == "2026-03-27T09:00:00Z"
    clock = show["clocks"][0]
    assert (clock["id"], clock["due"], clock["due_utc"]) == ("gdpr.authority", "2026-03-30T11:00:00+02:00",
                                                             "2026-03-30T09:00:00Z")
    assert "BR-" in run(d, "show", cid).stdout  # the text view renders too

    p = run(d, "draft", cid, "--lang", "en", "--preview", ok=False)
    assert p.returncode == 1 and "likely_consequences" in p.stderr

    sets = []
    for k, v in FULL.items():
        sets += ["--set", f"{k}={','.join(v) if isinstance(v, list) else str(v).lower() if isinstance(v, bool) else v}"]
    run(d, "edit", cid, *sets, "--reason", "investigation")
    assert "proposed:" in run(d, "assess", cid, "--identifiability", "maximum").stdout
    p = run(d, "draft", cid, "--lang", "en", ok=False)  # real time is long past 30 March 2026
    assert p.returncode == 1 and "[delay_reasons]" in p.stderr
    run(d, "edit", cid, "--set", "delay_reasons=Test case entered late")
    md = run(d, "draft", cid, "--lang", "en").stdout
    assert "Reasons for the delay (Art. 33(1)):** Test case entered late" in md
    assert "## 4. Consequences (Art. 33(3)(c))" in md and "Identity fraud" in md
    run(d, "draft", cid, "--kind", "data_subjects", "--lang", "nl", "--format", "html", "--out",
        str(tmp_path / "brief.html"))
    assert "Wat u zelf kunt doen" in (tmp_path / "brief.html").read_text()
    run(d, "draft", cid, "--lang", "nl", "--format", "pdf", "--out", str(tmp_path / "melding.pdf"))
    assert (tmp_path / "melding.pdf").read_bytes().startswith(b"%PDF")

    approved = json.loads(run(d, "approve", cid, "--format", "json").stdout)
    assert approved["approval"]["late"] and approved["approval"]["delay_reasons"] == "Test case entered late"
    run(d, "submit", cid, "--channel", "AP meldloket", "--reference", "M-2026-42")
    run(d, "supplement", cid, "--text", "Final count", "--set", "subjects_max=2043")
    p = run(d, "close", cid, "--reason", "too early", ok=False)
    assert p.returncode == 2 and "cannot go from submitted to closed" in p.stderr
    run(d, "subjects", cid, "--decision", "communicate", "--reasoning", "high risk")
    p = run(d, "close", cid, "--reason", "done", ok=False)
    assert p.returncode == 2 and "when and how is not recorded" in p.stderr
    run(d, "subjects-told", cid, "--at", "now", "--channel", "letter")
    closed = json.loads(run(d, "close", cid, "--reason", "done", "--format", "json").stdout)
    assert closed["state"] == "closed" and closed["clocks"][0]["status"] == "met_late"
    assert [e["action"] for e in closed["trail"]][-4:] == ["supplement", "subjects", "subjects_told", "close"]

    rows = list(csv.DictReader(io.StringIO(run(d, "register", "--format", "csv").stdout)))
    assert rows[0]["id"] == cid and rows[0]["authority_reference"] == "M-2026-42"
    assert json.loads(run(d, "register", "--format", "json").stdout)[0]["subjects_max"] == 2043
    assert "reminder(s) sent" in run(d, "remind").stderr


def test_open_alert_twice_opens_no_duplicate(tmp_path: Path):
    from test_prefill import mass_read_alert

    from access_audit.store.sqlite import SqliteStore

    d = tmp_path / "data"
    store = SqliteStore(d / "events.db")
    store.write_alerts([mass_read_alert()])
    store.close()
    cid = run(d, "open", "--alert", "a1b2c3").stdout.strip()
    p = run(d, "open", "--alert", "a1b2c3", ok=False)
    assert p.returncode == 2 and f"a1b2c3 is in {cid}" in p.stderr
    assert run(d, "list", "--format", "json").stdout.count('"id":"BR-') == 1


def test_reads_of_cases_and_the_register_are_in_the_self_audit(tmp_path: Path):
    """Issue 12: every CLI read is recorded with the OS user, the breach commands too."""
    import getpass

    from access_audit.store.sqlite import SqliteStore

    d = tmp_path / "data"
    cid = run(d, "open", "--title", "Lost laptop").stdout.strip()
    run(d, "show", cid)
    run(d, "list")
    run(d, "register", "--format", "json")
    store = SqliteStore(d / "events.db")
    try:
        recs = store.self_audit(limit=100)
    finally:
        store.close()
    actions = sorted(r["action"] for r in recs)
    assert actions == ["case_list", "case_read", "register_export"], actions
    assert all(r["os_user"] == getpass.getuser() and r["interface"] == "cli" for r in recs)
    assert any(r.get("query") == cid for r in recs if r["action"] == "case_read")


def test_drafts_shown_by_the_cli_are_in_the_self_audit(tmp_path: Path):
    """Issue 12: a draft shows the case's facts; rendering one (preview or recorded) is a read."""
    import getpass

    from access_audit.store.sqlite import SqliteStore

    d = tmp_path / "data"
    cid = run(d, "open", "--title", "Lost laptop").stdout.strip()
    run(d, "aware", cid, "--at", "now", "--reason", "logs confirm")
    assert "# Melding datalek" in run(d, "draft", cid, "--phased", "--preview").stdout
    p = run(d, "draft", cid, "--lang", "en", "--preview", ok=False)  # not renderable: nothing was shown
    assert p.returncode == 1 and not p.stdout
    store = SqliteStore(d / "events.db")
    try:
        recs = [r for r in store.self_audit(limit=100) if r["action"] == "draft_read"]
    finally:
        store.close()
    assert [(r["query"], r["os_user"], r["interface"]) for r in recs] == \
        [(f"{cid} authority (nl, md, preview)", getpass.getuser(), "cli")]


def test_an_awareness_time_before_the_first_evidence_asks_for_confirmation(tmp_path: Path):
    """Issue 13: every clock runs from the awareness time; one before the case's first alert (or a
    year off) is most likely a typo, so the CLI asks, and without a yes nothing is set."""
    from test_prefill import START, mass_read_alert

    from access_audit.store.sqlite import SqliteStore

    d = tmp_path / "data"
    store = SqliteStore(d / "events.db")
    store.write_alerts([mass_read_alert()])
    store.close()
    cid = run(d, "open", "--alert", "a1b2c3").stdout.strip()
    early = (START - timedelta(days=1)).isoformat()
    p = run(d, "aware", cid, "--at", early, "--reason", "logs confirm", ok=False, input="n\n")
    assert p.returncode == 2 and "before the first evidence (2026-11-04T01:55:00+01:00)" in p.stderr
    assert "is it right?" in p.stderr and "awareness not set" in p.stderr
    assert json.loads(run(d, "show", cid, "--format", "json").stdout)["awareness"] is None
    p = run(d, "aware", cid, "--at", early, "--reason", "logs confirm", input="y\n")
    assert json.loads(run(d, "show", cid, "--format", "json").stdout)["awareness"]["at"] == "2026-11-03T00:55:00Z"
    # after the first evidence: no question (nothing on stdin, and it goes through)
    p = run(d, "aware", cid, "--at", (START + timedelta(hours=1)).isoformat(), "--reason", "the first alert")
    assert "is it right?" not in p.stderr
