"""Sigma rules on the Windows Security log (product windows, service security -> windows.security):
the rules name the event's own fields (EventID, LogonType, TargetUserName, WorkstationName...),
read from the record as the collector exported it. ../shared holds no SigmaHQ Windows folder, so
the rules here are written in SigmaHQ's format; the events are OTRF's real recordings: two RDP
logons (type 10) in the Empire recording, and PurpleSharp's spray of seven accounts."""

from __future__ import annotations

import textwrap
from pathlib import Path

from access_audit.detect.loader import load_rules
from access_audit.ingest.files import LineReader
from access_audit.parse import ParserRegistry

RDP = """
    title: Remote Desktop Logon
    id: 6a1c2d3e-4f50-4a6b-9c7d-8e9f0a1b2c3d
    status: experimental
    logsource:
        product: windows
        service: security
    detection:
        selection:
            EventID: 4624
            LogonType: 10
        condition: selection
    level: medium
"""

SPRAY = """
    title: Failed Logon
    name: win_failed_logon
    status: experimental
    logsource:
        product: windows
        service: security
    detection:
        selection:
            EventID: 4625
        filter_machine:
            TargetUserName|endswith: '$'
        condition: selection and not filter_machine
    level: low
    ---
    title: Password Spray On One Workstation
    status: experimental
    correlation:
        type: value_count
        rules: win_failed_logon
        group-by:
            - WorkstationName
        timespan: 10m
        condition:
            gte: 5
            field: TargetUserName
    level: high
"""


def _load(tmp_path: Path, name: str, text: str) -> list:
    (tmp_path / name).write_text(textwrap.dedent(text).lstrip())
    rs = load_rules([tmp_path / name], include_default=False)
    assert rs.errors == [], "\n".join(map(str, rs.errors))
    return rs.rules


def _fire(rules: list, files: list[Path]) -> list[tuple[str, int, str | None]]:
    reg = ParserRegistry()
    out = []
    for rec in LineReader(files):
        for ev in reg.parse(rec).events:
            for r in rules:
                out += [(d.rule.id, d.count, ev.user.name if ev.user else None) for d in r.evaluate(ev)]
    return out


def test_a_windows_security_rule_reads_the_events_own_fields(tmp_path: Path, datasets: Path):
    (rule,) = _load(tmp_path, "rdp.yml", RDP)
    assert tuple(rule.log_types) == ("windows.security",)
    otrf = datasets / "otrf_windows_security"
    (empire,) = otrf.glob("empire_persistence_registry_modification_run_keys_standard_user_*.jsonl")
    hits = _fire([rule], [empire])
    assert len(hits) == 2  # the recording's two LogonType 10 logons
    others = sorted(f for f in otrf.glob("*.jsonl") if f != empire)
    assert _fire([rule], others) == []


def test_a_sigma_correlation_finds_the_real_spray(tmp_path: Path, datasets: Path):
    rules = _load(tmp_path, "spray.yml", SPRAY)
    otrf = datasets / "otrf_windows_security"
    spray = otrf / "purplesharp_ad_playbook_I_2020-10-22042947.logon_events.jsonl"
    fired = [(rid, n) for rid, n, _ in _fire(rules, [spray]) if "spray" in rid]
    assert fired == [("sigma_password_spray_on_one_workstation", 5)]  # fires at the fifth account
    others = sorted(f for f in otrf.glob("*.jsonl") if f != spray)
    assert [h for h in _fire(rules, others) if "spray" in h[0]] == []
