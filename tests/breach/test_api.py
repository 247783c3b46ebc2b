"""The HTTP routes the DPO console uses, with the workflow injected."""

from __future__ import annotations

from datetime import timedelta

import pytest
from breach_helpers import FULL
from fastapi import FastAPI
from fastapi.testclient import TestClient

from access_audit.breach.api import get_actor, get_event_store, get_workflow, router
from access_audit.breach.workflow import BreachWorkflow


@pytest.fixture
def client(wf: BreachWorkflow):
    app = FastAPI()
    app.include_router(router, prefix="/api")
    app.dependency_overrides[get_workflow] = lambda: wf
    return TestClient(app, headers={"X-Actor": "Fenna de Vries"})


def test_the_path_over_http(client: TestClient, wf: BreachWorkflow, clock):
    r = client.post("/api/breaches", json={"title": "Lost laptop", "summary": "Left on the train"})
    assert r.status_code == 201
    cid = r.json()["id"]
    assert r.json()["state"] == "reported" and r.json()["clocks"][0]["status"] == "waiting"
    r = client.post(f"/api/breaches/{cid}/awareness", json={"at": "2026-03-27T10:00:00+01:00", "reason": "confirmed"})
    assert r.status_code == 200 and r.json()["clocks"][0]["due"] == "2026-03-30T11:00:00+02:00"
    changes = {k: v for k, v in FULL.items() if k not in ("occurred_from", "occurred_to", "detected_at")}
    changes |= {"occurred_from": FULL["occurred_from"], "detected_at": FULL["detected_at"]}
    assert client.patch(f"/api/breaches/{cid}", json={"changes": changes}).status_code == 200
    r = client.post(f"/api/breaches/{cid}/assessment", json={"answers": {"identifiability": "maximum"}})
    assert r.json()["risk"]["proposed"] in ("risk", "high")
    r = client.get(f"/api/breaches/{cid}/drafts/authority", params={"lang": "en", "format": "html"})
    assert r.status_code == 200 and "<h2>4. Consequences (Art. 33(3)(c))</h2>" in r.text
    r = client.post(f"/api/breaches/{cid}/drafts", json={"kind": "authority", "lang": "nl"})
    assert r.json()["complete"] and r.json()["case"]["state"] == "notification_drafted"
    clock.advance(hours=80)
    r = client.post(f"/api/breaches/{cid}/approval", json={})
    assert r.status_code == 409 and "reasons for the delay" in r.json()["detail"]["detail"]
    r = client.post(f"/api/breaches/{cid}/approval", json={"delay_reasons": "Police asked us to wait"})
    assert r.json()["state"] == "approved"
    r = client.post(f"/api/breaches/{cid}/submission", json={"channel": "AP meldloket", "reference": "M-9"})
    assert r.json()["clocks"][0]["status"] == "met_late"
    r = client.get("/api/breaches/register", params={"format": "csv"})
    assert r.status_code == 200 and r.text.startswith("id,state,") and "M-9" in r.text
    assert client.get("/api/breaches/register").json()[0]["authority_reference"] == "M-9"
    assert [c["id"] for c in client.get("/api/breaches", params={"open_only": True}).json()] == [cid]


def test_errors(client: TestClient, wf: BreachWorkflow):
    assert client.get("/api/breaches/BR-1999-0001").status_code == 404
    cid = client.post("/api/breaches", json={"title": "t"}).json()["id"]
    r = client.post(f"/api/breaches/{cid}/closure", json={"reason": "x"})
    assert r.status_code == 409 and "cannot go from reported to closed" in r.json()["detail"]["detail"]
    r = client.get(f"/api/breaches/{cid}/drafts/authority")
    assert r.status_code == 422 and any(m["key"] == "summary" for m in r.json()["detail"]["missing"])
    assert client.patch(f"/api/breaches/{cid}", json={"changes": {"colour": "red"}}).status_code == 422
    anon = TestClient(client.app)
    assert anon.post("/api/breaches", json={}).status_code == 401


def test_open_from_alert_ids(client: TestClient, wf: BreachWorkflow, tmp_path):
    from test_prefill import mass_read_alert

    from access_audit.store.sqlite import SqliteStore

    store = SqliteStore(tmp_path / "events.db")
    store.write_alerts([mass_read_alert(last_seen=mass_read_alert().first_seen + timedelta(minutes=5))])
    client.app.dependency_overrides[get_event_store] = lambda: store
    client.app.dependency_overrides[get_actor] = lambda: "slack:U1"
    assert client.post("/api/breaches/from-alerts", json={"alert_ids": ["nope"]}).status_code == 404
    r = client.post("/api/breaches/from-alerts", json={"alert_ids": ["a1b2c3"]})
    assert r.status_code == 201 and r.json()["alerts"][0]["rule_id"] == "mass_read_personal_data"
    assert r.json()["opened_by"] == "slack:U1"
    store.close()


def test_the_routes_after_the_submission(client: TestClient, wf: BreachWorkflow, clock):
    """A second authority, an amendment, a withdrawal, the subjects told, DORA reports: over HTTP,
    with the workflow's refusals as 409/422 (the same rules as the CLI, no way around them)."""
    from breach_helpers import confirmed_case, submitted_case

    c = submitted_case(wf)
    wf.edit(c.id, "fenna", {"regimes": ["gdpr", "uk_gdpr"]})
    r = client.post(f"/api/breaches/{c.id}/notifications",
                    json={"authority": "ICO", "channel": "ICO portal", "reference": "IC-1", "lang": "en"})
    assert r.status_code == 409 and "no authority draft in 'en'" in r.json()["detail"]["detail"]
    wf.draft(c.id, "fenna", "authority", "en")
    r = client.post(f"/api/breaches/{c.id}/notifications", json={
        "authority": "ICO", "channel": "ICO portal", "reference": "IC-1", "lang": "en", "milestone": "ico_notified"})
    assert r.status_code == 200 and [n["reference"] for n in r.json()["notifications"]] == ["M-2026-001", "IC-1"]
    r = client.post(f"/api/breaches/{c.id}/notifications/1/amendments", json={"text": "2,043 customers"})
    assert r.status_code == 200 and r.json()["notifications"][0]["amendments"][0]["text"] == "2,043 customers"
    r = client.post(f"/api/breaches/{c.id}/notifications/2/withdrawal", json={"reason": "test accounts"})
    assert r.status_code == 200 and r.json()["notifications"][1]["withdrawal_reason"] == "test accounts"
    r = client.post(f"/api/breaches/{c.id}/notifications/2/amendments", json={"text": "x"})
    assert r.status_code == 409 and "was withdrawn" in r.json()["detail"]["detail"]
    r = client.post(f"/api/breaches/{c.id}/notifications/7/withdrawal", json={"reason": "x"})
    assert r.status_code == 422 and r.json()["detail"] == "no notification 7 (notifications: 1, 2)"
    r = client.post(f"/api/breaches/{c.id}/subjects-told", json={"at": clock.now().isoformat(), "channel": "post"})
    assert r.status_code == 409, "told before the decision to communicate"
    r = client.post(f"/api/breaches/{c.id}/subjects-decision", json={"decision": "communicate", "reasoning": "high"})
    assert r.status_code == 200
    r = client.post(f"/api/breaches/{c.id}/subjects-told", json={"at": clock.now().isoformat(), "channel": "post"})
    assert r.status_code == 200 and r.json()["trail"][-1]["action"] == "subjects_told"
    r = client.post(f"/api/breaches/{c.id}/subjects-told", json={"at": "2026-03-27T10:00:00", "channel": "post"})
    assert r.status_code == 422, "a time without its zone is refused"

    d = confirmed_case(wf, title="Outage")
    r = client.post(f"/api/breaches/{d.id}/dora-reports", json={"reference": "DNB-0"})
    assert r.status_code == 409 and "not under DORA" in r.json()["detail"]["detail"]
    wf.edit(d.id, "fenna", {"regimes": ["gdpr", "dora"]})
    wf.record_milestone(d.id, "cro", "dora_classified_major", reason="Critical function down > 2 h")
    wf.record_milestone(d.id, "cro", "dora_initial_sent")
    clock.advance(hours=10)
    r = client.post(f"/api/breaches/{d.id}/dora-reports", json={"reference": "DNB-0", "note": "status"})
    assert r.status_code == 200 and [x["kind"] for x in r.json()["reports"]] == ["intermediate"]


def test_reconsideration_over_http(client: TestClient, wf: BreachWorkflow):
    from breach_helpers import confirmed_case

    from access_audit.breach.model import RiskLevel

    c = confirmed_case(wf)
    wf.assess(c.id, "fenna", overrule_to=RiskLevel.unlikely, overrule_reason="Own auditor")
    wf.skip_notification(c.id, "fenna", "NDA")
    r = client.post(f"/api/breaches/{c.id}/reconsideration", json={"reason": ""})
    assert r.status_code in (409, 422) and "reason" in str(r.json()["detail"])
    r = client.post(f"/api/breaches/{c.id}/reconsideration", json={"reason": "A second copy turned up"})
    assert r.status_code == 200 and r.json()["state"] == "assessed"
    assert [s["status"] for s in r.json()["clocks"]] == ["open"]


def test_an_awareness_time_before_the_evidence_or_a_year_off_needs_confirm(client: TestClient, wf: BreachWorkflow,
                                                                           clock, tmp_path):
    """Issue 13: as the CLI asks, the API answers 422 naming the doubt unless ``confirm`` is true."""
    from test_prefill import mass_read_alert

    from access_audit.store.sqlite import SqliteStore

    first = clock.now() - timedelta(days=2)
    store = SqliteStore(tmp_path / "events.db")
    store.write_alerts([mass_read_alert(first_seen=first, last_seen=first + timedelta(minutes=5))])
    client.app.dependency_overrides[get_event_store] = lambda: store
    cid = client.post("/api/breaches/from-alerts", json={"alert_ids": ["a1b2c3"]}).json()["id"]
    early = (first - timedelta(hours=3)).isoformat()
    r = client.post(f"/api/breaches/{cid}/awareness", json={"at": early, "reason": "logs confirm"})
    assert r.status_code == 422 and "before the first evidence (2026-03-25T10:00:00+01:00)" in r.json()["detail"]
    assert '"confirm": true' in r.json()["detail"] and wf.get(cid).awareness is None
    r = client.post(f"/api/breaches/{cid}/awareness", json={"at": early, "reason": "logs confirm", "confirm": True})
    assert r.status_code == 200 and wf.get(cid).awareness.at == first - timedelta(hours=3)
    # a year off (no evidence needed to doubt it); a plausible time needs no confirmation
    other = client.post("/api/breaches", json={"title": "Lost laptop"}).json()["id"]
    r = client.post(f"/api/breaches/{other}/awareness",
                    json={"at": (clock.now() - timedelta(days=400)).isoformat(), "reason": "a typo in the year"})
    assert r.status_code == 422 and "more than a year from now" in r.json()["detail"]
    r = client.post(f"/api/breaches/{other}/awareness", json={"at": clock.now().isoformat(), "reason": "confirmed"})
    assert r.status_code == 200
    store.close()
