"""windows_password_spray on the real Windows Security exports of ../shared: OTRF's PurpleSharp
playbook sprays seven accounts on WORKSTATION5 through the LogonUser API (no source address, so
the per-address password_spraying rule cannot see it): one alert of seven; the other OTRF
recordings and msticpy's failed logons raise nothing."""

from __future__ import annotations

from pathlib import Path

from access_audit.alert.manager import AlertManager
from access_audit.detect.engine import DetectionEngine
from access_audit.detect.loader import load_rules
from access_audit.ingest.files import LineReader
from access_audit.parse import ParserRegistry


def _alerts(paths: list[Path]) -> dict[str, tuple[str, int]]:
    rules = [r for r in load_rules([], include_default=True).rules if r.id in ("windows_password_spray",
                                                                             "password_spraying")]
    engine, manager, reg = DetectionEngine(rules), AlertManager(), ParserRegistry()
    out: dict[str, tuple[str, int]] = {}
    for rec in LineReader(paths):
        for ev in reg.parse(rec).events:
            for det in engine.process(ev):
                a = manager.process(det).alert
                out[a.id] = (f"{a.rule_id} {a.host}", a.count)
    return out


def test_the_purplesharp_spray_is_one_alert_of_seven_accounts(datasets: Path):
    f = datasets / "otrf_windows_security" / "purplesharp_ad_playbook_I_2020-10-22042947.logon_events.jsonl"
    assert list(_alerts([f]).values()) == [("windows_password_spray WORKSTATION5.theshire.local", 7)]


def test_the_other_real_windows_logons_raise_nothing(datasets: Path):
    files = sorted((datasets / "otrf_windows_security").glob("*.jsonl"))
    others = [f for f in files if "purplesharp" not in f.name]
    assert len(others) >= 6
    assert _alerts([*others, datasets / "msticpy_testdata" / "failed_logons.from_pkl.jsonl"]) == {}
