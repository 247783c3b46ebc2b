"""Measured detection quality: the scoring arithmetic, and the default pack on a week of demo traffic."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from access_audit.detect.evaluate import EvalReport, evaluate_demo, score
from access_audit.detect.loader import load_rules


@dataclass
class A:  # an alert: rule and evidence
    rule_id: str
    event_ids: list[str] = field(default_factory=list)


@dataclass
class S:  # a scenario: id and the rules it expects
    id: str
    expected_rules: tuple[str, ...]


LABELS = {"b1": None, "b2": None, "b3": None, "x1": "brute", "x2": "brute", "y1": "spray", "z1": "quiet"}
SCENARIOS = [S("brute", ("r_brute", "r_invalid")), S("spray", ("r_spray", "r_brute")), S("quiet", ())]


def test_tp_fp_fn_arithmetic() -> None:
    alerts = [
        A("r_brute", ["b1", "x1"]),  # TP: one evidence event belongs to a scenario that expects the rule
        A("r_brute", ["x2"]),  # TP again for the same pair: two alerts, one pair covered
        A("r_brute", ["b2"]),  # FP on benign traffic
        A("r_invalid", ["y1"]),  # FP: scenario "spray" does not expect r_invalid
        A("r_spray", ["z1", "b3"]),  # FP: "quiet" expects nothing
        A("r_other", []),  # FP: no evidence at all
    ]
    rep = score(alerts, LABELS, SCENARIOS, rule_ids=["r_brute", "r_invalid", "r_spray", "r_unused"],
                benign_events=200_000)
    rows = rep.by_id()
    b = rows["r_brute"]
    assert (b.alerts, b.tp, b.fp, b.expected, b.fn, b.missed) == (3, 2, 1, 2, 1, ["spray"])
    assert b.precision == pytest.approx(2 / 3) and b.recall == pytest.approx(0.5)
    assert b.false_on == ["benign"]
    i = rows["r_invalid"]
    assert (i.tp, i.fp, i.fn, i.missed, i.precision, i.recall, i.false_on) == \
        (0, 1, 1, ["brute"], 0.0, 0.0, ["spray"])  # fired, but on the wrong scenario: FP and FN
    s = rows["r_spray"]
    assert (s.tp, s.fp, s.fn, s.missed, s.recall, s.false_on) == (0, 1, 1, ["spray"], 0.0, ["quiet"])
    u = rows["r_unused"]  # no alerts, nothing expected: undefined, and not failing
    assert (u.alerts, u.precision, u.recall) == (0, None, None) and u.meets(0.95, 0.95)
    assert rows["r_other"].fp == 1
    assert rep.false_alerts == 4
    assert rep.false_per_100k == pytest.approx(2.0)
    assert rep.events == len(LABELS) and rep.benign_events == 200_000 and rep.scenarios == 3
    assert [r.rule_id for r in rep.failing()] == ["r_brute", "r_invalid", "r_other", "r_spray"]
    d = rep.to_dict()
    assert d["false_alerts"] == 4 and d["rules"][0]["rule_id"] == "r_brute" and d["rules"][0]["precision"] == 2 / 3


def test_an_alert_covers_every_scenario_in_its_evidence() -> None:
    both = [S("one", ("r",)), S("two", ("r",))]
    rep = score([A("r", ["e1", "e2"])], {"e1": "one", "e2": "two"}, both, benign_events=0)
    r = rep.by_id()["r"]
    assert (r.tp, r.fp, r.fn, r.recall) == (1, 0, 0, 1.0)
    assert rep.false_per_100k == 0.0


def test_nothing_fired() -> None:
    rep = score([], {"e1": "one"}, [S("one", ("r",))], rule_ids=["r"], benign_events=10)
    r = rep.by_id()["r"]
    assert (r.alerts, r.tp, r.fp, r.fn, r.precision, r.recall) == (0, 0, 0, 1, None, 0.0)
    assert not r.meets(0.95, 0.95)


def test_every_rule_has_positive_and_negative_inline_tests() -> None:
    rs = load_rules([], include_default=True)
    assert not rs.errors, [str(e) for e in rs.errors]
    for rule in rs.rules:
        expects = [t["expect"] for t in rule.tests]
        assert any(e is True or (type(e) is int and e > 0) for e in expects), rule.id
        assert any(e is False or (type(e) is int and e == 0) for e in expects), rule.id


# ---- the default pack on a week of demo traffic ------------------------------------------------

@pytest.fixture(scope="module")
def week() -> EvalReport:
    return evaluate_demo(days=7, seed=7)


def test_week_of_demo_traffic_runs_clean(week: EvalReport) -> None:
    assert week.meta["dead_letters"] == 0
    assert week.benign_events > 50_000
    assert week.scenarios >= 22


def test_fewer_than_one_false_alert_per_100k_benign_events(week: EvalReport) -> None:
    assert week.false_per_100k < 1.0, [(r.rule_id, r.false_on) for r in week.rules if r.fp]


def _pack_ids() -> list[str]:
    return sorted(r.id for r in load_rules([], include_default=True).rules)


@pytest.mark.parametrize("rule_id", _pack_ids())
def test_every_rule_meets_the_targets(week: EvalReport, rule_id: str) -> None:
    row = week.by_id()[rule_id]
    assert row.expected >= 1, f"no demo scenario expects {rule_id}"
    assert row.recall is not None and row.recall >= 0.95, (row.missed, row.false_on)
    assert row.precision is not None and row.precision >= 0.95, (row.missed, row.false_on)
