"""Prefill from alerts and the event store: distinct data subjects counted from the events, with
where each figure came from."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from breach_helpers import CONFIG

from access_audit.breach.model import BreachState
from access_audit.breach.prefill import open_case_from_alerts, prefill_from_alerts
from access_audit.breach.service import escalate_handler
from access_audit.breach.workflow import BreachWorkflow
from access_audit.core.alerts import Alert, Severity
from access_audit.core.events import AccessEvent
from access_audit.store.sqlite import SqliteStore

START = datetime(2026, 11, 4, 0, 55, tzinfo=UTC)


def http_event(n: int, ts: datetime, user: str, path: str, *, status: int = 200, method: str = "GET",
               subject_ids: list[str] | None = None, cats: tuple[str, ...] = ("identity", "contact", "bsn")):
    return AccessEvent.from_doc({
        "@timestamp": ts,
        "event": {"id": f"ev{n:06d}", "dataset": "http", "action": "http_request",
                  "outcome": "success" if status < 400 else "failure"},
        "user": {"name": user}, "source": {"ip": "198.51.100.23"},
        "url": {"path": path, "domain": "crm.zorgwijk.example"},
        "http": {"request": {"method": method}, "response": {"status_code": status}},
        "resource": {"type": "url", "name": path, "data_categories": list(cats), "subject_ids": subject_ids or []},
    })


@pytest.fixture
def store(tmp_path: Path):
    s = SqliteStore(tmp_path / "events.db")
    evs = []
    n = 0
    for i in range(2050):  # 2,000 distinct customers, 50 read twice: more than two pages of 1,000
        cid = 100000 + (i % 2000)
        evs.append(http_event(n, START + timedelta(seconds=1.5 * i), "dmulder", f"/api/customers/{cid}"))
        n += 1
    for i in range(10):  # refused: not a disclosure
        evs.append(http_event(n, START + timedelta(seconds=7 * i + 0.5), "dmulder",
                              f"/api/customers/{200000 + i}/medical", status=403, cats=("health",)))
        n += 1
    # a record the resource catalogue already resolved (the id is not in the path)
    evs.append(http_event(n, START + timedelta(minutes=20), "dmulder", "/crm/v2/lookup", subject_ids=["c-77"]))
    n += 1
    evs.append(http_event(n, START + timedelta(minutes=21), "dmulder", "/api/customers/search"))  # no subject
    n += 1
    # another user in the same window, and the same user outside it: neither counts
    evs.append(http_event(n, START + timedelta(minutes=5), "pjansen", "/api/customers/999999"))
    n += 1
    evs.append(http_event(n, START - timedelta(hours=3), "dmulder", "/api/customers/888888"))
    assert s.write_events(evs) == len(evs)
    yield s
    s.close()


def mass_read_alert(**kw) -> Alert:
    base = dict(id="a1b2c3", rule_id="mass_read_personal_data", title="dmulder read 2,000 customers in an hour",
                severity=Severity.high, risk_score=80, dedup_key="dmulder", first_seen=START,
                last_seen=START + timedelta(seconds=1.5 * 2049), created_at=START + timedelta(hours=1),
                count=2050, event_ids=["ev000000"], user="dmulder", source_ip="198.51.100.23",
                resource="/api/customers/{id}", data_categories=["identity", "contact", "bsn"], personal_data=True)
    base.update(kw)
    return Alert(**base)


def test_figures_and_their_provenance(store):
    pre = prefill_from_alerts([mass_read_alert()], store)
    d = pre.details
    assert d["subjects_min"] == d["subjects_max"] == 2001
    assert d["records_min"] == d["records_max"] == 2051
    assert d["data_categories"] == ["contact", "identity", "national_id"]
    assert d["breach_types"] == ["confidentiality"] and d["data_effects"] == ["read"]
    assert d["subject_categories"] == ["customers"] and d["systems"] == ["crm.zorgwijk.example"]
    p = pre.provenance["subjects_max"]
    assert p.startswith("2,001 distinct data-subject ids in 2,051 successful requests (GET /api/customers/<id>")
    assert "by user dmulder between 2026-11-04T00:55:00Z and 2026-11-04T01:46:13Z (the alert window); " \
           "2,001 in 2,051 from 2026-11-03T23:55:00Z" in p
    assert "ids from resource.subject_ids and url.path; 10 failed requests not counted" in p
    assert 'access-audit query "user.name:dmulder" --since 2026-11-03T23:55:00Z' in p
    assert "bsn" in pre.provenance["data_categories"]
    assert pre.occurred_from == START and pre.occurred_to == START + timedelta(seconds=1.5 * 2049)


def test_open_case_from_alerts(store, repo, clock):
    case = open_case_from_alerts([mass_read_alert()], store, repo, clock, "dpo-bot", config=CONFIG)
    assert case.id == "BR-2026-0001" and case.state is BreachState.reported and case.source == "alerts"
    assert case.details.subjects_max == 2001 and case.provenance["subjects_max"].startswith("2,001 distinct")
    assert case.details.organisation == CONFIG.organisation and case.details.contact.name == CONFIG.dpo_name
    assert case.detected_at == START + timedelta(hours=1)
    assert case.alerts[0].rule_id == "mass_read_personal_data" and case.alerts[0].event_ids == ["ev000000"]
    assert "dmulder" in case.details.summary and "2,001 data subjects" in case.details.summary
    assert case.trail[0].changes == {"alerts": ["a1b2c3"]}
    # a figure changed by hand loses its provenance
    wf = BreachWorkflow(repo, clock, CONFIG)
    case = wf.edit(case.id, "fenna", {"subjects_max": 2500}, reason="forensics: more in the script's cache")
    assert "subjects_max" not in case.provenance and "subjects_min" in case.provenance


def test_alerts_without_an_actor_still_open_a_case(store, repo, clock):
    case = open_case_from_alerts([mass_read_alert(user=None, source_ip=None, data_categories=[])], store, repo,
                                 clock, "dpo-bot")
    assert case.details.subjects_max is None and "number unknown" in case.details.summary


def test_escalate_button_hook(store, repo, clock):
    on_escalate = escalate_handler(BreachWorkflow(repo, clock, CONFIG), store)
    case_id = on_escalate([mass_read_alert()], "U123 (fenna)")
    case = repo.get(case_id)
    assert case.source == "slack" and case.opened_by == "U123 (fenna)"
    assert case.trail[0].reason == "escalated by U123 (fenna)"


def test_a_threshold_alert_raised_late_gives_a_range(store):
    # the rule tripped 20 minutes into the export: the alert window alone undercounts
    pre = prefill_from_alerts([mass_read_alert(first_seen=START + timedelta(minutes=20))], store)
    d = pre.details
    assert d["subjects_min"] < d["subjects_max"] == 2001
    assert d["subjects_min"] == len({100000 + (i % 2000) for i in range(2050) if 1.5 * i >= 20 * 60} | {"c-77"})
    assert pre.occurred_from == START
