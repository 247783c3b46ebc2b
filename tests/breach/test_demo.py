"""The demo's last step: a case from the mass-export scenario, with a draft notification."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

from rich.console import Console
from test_prefill import START, mass_read_alert, store  # noqa: F401 - the store fixture

from access_audit.breach.demo import demo_breach, open_case_from_scenario, scenario_alerts
from access_audit.breach.repo import BreachRepo
from access_audit.testing import FrozenClock

SCENARIO = SimpleNamespace(id="mass_export", expected_rules=("mass_read_personal_data",), start=START,
                           end=START + timedelta(hours=1), actors=("dmulder", "198.51.100.23"))


def test_scenario_alerts_are_picked_by_rule_actor_and_time(store):  # noqa: F811
    store.write_alerts([mass_read_alert(), mass_read_alert(id="other", user="pjansen", source_ip="10.0.0.1"),
                        mass_read_alert(id="old", first_seen=START - timedelta(days=2),
                                        last_seen=START - timedelta(days=2)),
                        mass_read_alert(id="ssh", rule_id="ssh_brute_force")])
    assert [a.id for a in scenario_alerts(SCENARIO, store)] == ["a1b2c3"]
    assert open_case_from_scenario(SimpleNamespace(**{**SCENARIO.__dict__, "expected_rules": ("nope",)}), store,
                                   None, FrozenClock()) is None


def test_demo_breach_walks_to_a_draft(store, tmp_path: Path):  # noqa: F811
    store.write_alerts([mass_read_alert()])
    settings = SimpleNamespace(data_dir=tmp_path, org_timezone="Europe/Amsterdam", breach_regimes=["gdpr"])
    buf = io.StringIO()
    clock = FrozenClock(datetime(2026, 11, 4, 2, 30, tzinfo=UTC))
    case_id = demo_breach(SCENARIO, store, settings, clock, Console(file=buf, width=200))
    assert case_id == "BR-2026-0001"
    text = buf.getvalue()
    assert "data subjects: 2001" in text and "2,001 distinct data-subject ids" in text
    assert "due 2026-11-07T03:30:00+01:00" in text and "risk: high" in text
    md = (tmp_path / "breach" / f"{case_id}-melding.md").read_text()
    assert "ongeveer 2.001" in md and "Volgt in een aanvullende melding" in md
    assert (tmp_path / "breach" / f"{case_id}-melding.html").read_text().startswith("<!DOCTYPE html>")
    repo = BreachRepo(tmp_path / "breach.db")
    case = repo.get(case_id)
    assert case.state.value == "notification_drafted" and case.source == "demo"
    repo.close()


def test_a_second_demo_run_opens_no_duplicate_case(store, tmp_path: Path):  # noqa: F811
    store.write_alerts([mass_read_alert()])
    settings = SimpleNamespace(data_dir=tmp_path, org_timezone="Europe/Amsterdam", breach_regimes=["gdpr"])
    clock = FrozenClock(datetime(2026, 11, 4, 2, 30, tzinfo=UTC))
    first = demo_breach(SCENARIO, store, settings, clock, Console(file=io.StringIO(), width=200))
    buf = io.StringIO()
    assert demo_breach(SCENARIO, store, settings, clock, Console(file=buf, width=200)) == first
    assert "no duplicate opened" in buf.getvalue()
    repo = BreachRepo(tmp_path / "breach.db")
    assert repo.ids() == [first]
    repo.close()
