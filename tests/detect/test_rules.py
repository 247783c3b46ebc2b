from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from access_audit.alert.manager import AlertManager
from access_audit.core.events import AccessEvent
from access_audit.detect.loader import load_rules
from access_audit.detect.testrunner import run_rule_tests

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def login(ip: str, outcome: str, t: timedelta, user: str = "alice", n: int = 0) -> AccessEvent:
    ev = AccessEvent.from_doc({"@timestamp": T0 + t, "event": {"action": "ssh_login", "outcome": outcome,
                                     "dataset": "syslog", "id": f"{ip}-{outcome}-{t}-{n}"},
                                     "user": {"name": user}, "source": {"ip": ip}})
    return ev


def rule(rid: str):
    return load_rules([], include_default=True).by_id()[rid]


def test_threshold_counts_per_key_in_event_time_window():
    r = rule("ssh_brute_force")
    fired = []
    for i in range(9):
        fired += r.evaluate(login("1.1.1.1", "failure", timedelta(seconds=i)))
        fired += r.evaluate(login("2.2.2.2", "failure", timedelta(seconds=i)))
    assert fired == []
    (det,) = r.evaluate(login("1.1.1.1", "failure", timedelta(seconds=30)))
    assert det.group == {"source.ip": "1.1.1.1"} and det.count == 10 and len(det.evidence) == 10
    assert det.timestamp == T0 + timedelta(seconds=30)  # event time, not wall clock


def test_threshold_window_slides_on_event_time():
    r = rule("ssh_brute_force")
    for i in range(9):
        assert not r.evaluate(login("1.1.1.1", "failure", timedelta(minutes=i)))
    # the first events fell out of the 5-minute window: still below 10
    assert not r.evaluate(login("1.1.1.1", "failure", timedelta(minutes=9)))


def test_threshold_state_is_bounded_and_evictions_counted():
    r = rule("ssh_brute_force")
    r.max_keys = 50
    r.__post_init__()
    for i in range(200):
        r.evaluate(login(f"10.0.{i // 250}.{i % 250}", "failure", timedelta(seconds=i)))
    assert (r.state_size(), r.evicted()) == (50, 150)


def test_sequence_needs_order_and_same_key():
    r = rule("ssh_brute_force_then_success")
    for i in range(5):
        assert not r.evaluate(login("3.3.3.3", "failure", timedelta(seconds=i)))
    assert not r.evaluate(login("4.4.4.4", "success", timedelta(seconds=10)))
    (det,) = r.evaluate(login("3.3.3.3", "success", timedelta(seconds=11), user="deploy"))
    assert det.count == 6 and det.event.user.name == "deploy"
    # state was reset after firing
    assert not r.evaluate(login("3.3.3.3", "success", timedelta(seconds=12)))


def test_sequence_window_expires():
    r = rule("ssh_brute_force_then_success")
    for i in range(5):
        r.evaluate(login("3.3.3.3", "failure", timedelta(seconds=i)))
    assert not r.evaluate(login("3.3.3.3", "success", timedelta(minutes=31)))


def test_alert_manager_folds_burst_into_one_alert():
    r = rule("ssh_brute_force")
    am = AlertManager()
    updates = []
    for i in range(100):
        for det in r.evaluate(login("5.5.5.5", "failure", timedelta(seconds=i))):
            updates.append(am.process(det))
    # the 10th event fires; each of the 90 after it adds one to the open alert
    assert len(updates) == 91
    assert sum(u.new for u in updates) == 1
    alert = updates[-1].alert
    assert alert.count == 100 and alert.first_seen == T0 + timedelta(seconds=9)
    assert alert.title == "10 failed SSH logins from 5.5.5.5 within 5 minutes"
    assert alert.query == "source.ip:5.5.5.5 AND event.dataset:syslog"
    # after the suppression window a new alert opens
    for i in range(10):
        for det in r.evaluate(login("5.5.5.5", "failure", timedelta(hours=3, seconds=i))):
            assert am.process(det).new


def test_alert_id_is_deterministic_for_replays():
    def run_once():
        r = rule("ssh_brute_force")
        am = AlertManager()
        ids = []
        for i in range(10):
            for det in r.evaluate(login("6.6.6.6", "failure", timedelta(seconds=i))):
                ids.append(am.process(det).alert.id)
        return ids
    assert run_once() == run_once() != []


def test_lint_reports_every_problem_with_file_and_line(tmp_path: Path):
    (tmp_path / "bad_one.yml").write_text(
        "id: not_the_file_name\n"
        "title: x\n"
        "kind: threshold\n"
        "severity: extreme\n"
        "bogus_key: 1\n"
        "match:\n"
        "  user.nam: alice\n"
        "  source.ip: {cidr: nonsense}\n"
        "threshold: {group_by: [source.ipp], count: 0, window: 5 minutes}\n"
        "tests:\n"
        "  - name: only positive\n"
        "    expect: true\n"
        "    events: [{raw: x}]\n")
    (tmp_path / "broken_yaml.yml").write_text("id: broken_yaml\ntitle: [unclosed\n")
    rs = load_rules([tmp_path], include_default=False)
    msgs = [str(e) for e in rs.errors]
    text = "\n".join(msgs)
    assert rs.rules == []
    for needle, line in [("does not match the file name", 1), ("invalid severity", 4), ("unknown key 'bogus_key'", 5),
                         ("unknown field 'user.nam'", 7), ("invalid cidr", 8), ("unknown field 'source.ipp'", 9),
                         ("count must be a positive integer", 9), ("invalid duration", 9),
                         ("at least one positive", 10)]:
        hits = [m for m in msgs if needle in m]
        assert hits, f"{needle!r} missing from:\n{text}"
        assert any(f"bad_one.yml:{line}:" in m for m in hits), f"{needle!r} not at line {line}: {hits}"
    assert any("broken_yaml.yml:" in m and "invalid YAML" in m for m in msgs)


def test_duplicate_rule_ids_rejected(tmp_path: Path):
    src = (Path(__file__).resolve().parents[2] / "detectors" / "ssh_root_login.yml").read_text()
    sub = tmp_path / "more"
    sub.mkdir()
    (sub / "ssh_root_login.yml").write_text(src)
    rs = load_rules([sub], include_default=True)
    assert any("duplicate rule id" in str(e) for e in rs.errors)


def _pack_cases():
    rs = load_rules([], include_default=True)
    return [pytest.param(r, id=f"{r.rule_id}: {r.name}") for r in run_rule_tests(rs.rules)]


@pytest.mark.parametrize("result", _pack_cases())
def test_rule_pack_inline_tests(result):
    assert result.passed, f"{result.source}: {result.message}"


def test_rule_pack_lints_clean():
    rs = load_rules([], include_default=True)
    assert rs.errors == []
    assert {"ssh_brute_force", "ssh_brute_force_then_success", "ssh_invalid_user", "ssh_root_login",
            "aws_console_login_without_mfa", "okta_mfa_deactivated", "github_repo_made_public"} <= set(rs.by_id())


def test_failing_inline_test_is_reported(tmp_path: Path):
    (tmp_path / "wrong_expectation.yml").write_text(
        "id: wrong_expectation\ntitle: t\nlog_types: [syslog]\nmatch: {event.action: ssh_login}\ntests:\n"
        "  - name: says no alert but there is one\n    expect: false\n    events:\n"
        "      - raw: 'Dec 10 09:32:20 h sshd[1]: Accepted password for a from 1.2.3.4 port 1 ssh2'\n"
        "  - name: positive\n    expect: true\n    events:\n"
        "      - raw: 'Dec 10 09:32:20 h sshd[1]: Accepted password for a from 1.2.3.4 port 1 ssh2'\n")
    rs = load_rules([tmp_path], include_default=False)
    res = run_rule_tests(rs.rules)
    assert [r.passed for r in res] == [False, True]
    assert "expected no alert but got 1" in res[0].message


def test_value_count_evidence_and_records_cover_the_window_only():
    from access_audit.detect.kinds import ValueCountRule

    r = ValueCountRule(id="vc", title="t", match=lambda ev: True, group_by=["source.ip"], value_field="user.name",
                       count=3, window=timedelta(minutes=10))
    old = AccessEvent.from_doc({"@timestamp": T0, "event": {"id": "old"}, "user": {"name": "a"},
                                      "source": {"ip": "1.1.1.1"}})
    assert not r.evaluate(old)
    fired = []
    for i, u in enumerate(("b", "c", "d")):
        ev = AccessEvent.from_doc({"@timestamp": T0 + timedelta(hours=2, seconds=i), "event": {"id": f"n{i}"},
                                         "user": {"name": u}, "source": {"ip": "1.1.1.1"}})
        fired += r.evaluate(ev)
    (det,) = fired
    assert det.evidence == ["n0", "n1", "n2"] and det.context["records"] == 3 and det.count == 3
