"""The facts the authority and the register need (issue 13): one test per bullet where feasible."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from breach_helpers import CONFIG, submitted_case

from access_audit.breach.model import TransitionRefusedError
from access_audit.breach.register import register_rows
from access_audit.breach.workflow import BreachWorkflow


def test_several_notifications_per_case_with_amendment_and_withdrawal(wf: BreachWorkflow, clock):
    c = submitted_case(wf)
    c = wf.edit(c.id, "fenna", {"regimes": ["gdpr", "uk_gdpr"]})
    assert c.notifications[0].authority == "Autoriteit Persoonsgegevens" and c.notifications[0].lead
    assert (c.notifications[0].lang, c.notifications[0].reference) == ("nl", "M-2026-001")
    with pytest.raises(TransitionRefusedError, match="no authority draft in 'en'"):
        wf.notify_authority(c.id, "fenna", authority="ICO", channel="ICO portal", reference="IC-1", lang="en")
    c, _ = wf.draft(c.id, "fenna", "authority", "en")
    clock.advance(hours=2)
    c = wf.notify_authority(c.id, "fenna", authority="ICO", channel="ICO portal", reference="IC-1", lang="en",
                            milestone="ico_notified")
    assert {s.id: s.status for s in wf.clocks(c)} == {"gdpr.authority": "met", "gdpr.subjects": "open",
                                                      "uk_gdpr.authority": "met"}
    with pytest.raises(TransitionRefusedError, match="notified already"):
        wf.notify_authority(c.id, "fenna", authority="ico", channel="x", reference="y", lang="en")
    c = wf.amend_notification(c.id, "fenna", 1, "Number of customers is 2,043", reference="M-2026-001-A")
    c = wf.withdraw_notification(c.id, "fenna", 2, "The UK customers turned out to be test accounts")
    with pytest.raises(TransitionRefusedError, match="was withdrawn"):
        wf.amend_notification(c.id, "fenna", 2, "x")
    n1, n2 = c.notifications
    assert n1.amendments[0].text == "Number of customers is 2,043" and n1.withdrawn_at is None
    assert (n2.authority, n2.lang, n2.reference, n2.at) == ("ICO", "en", "IC-1", clock.now())
    assert n2.withdrawal_reason.startswith("The UK customers") and n2.withdrawn_by == "fenna"
    row = register_rows([c], CONFIG.tz)[0]
    assert row["notifications"][0].startswith("1. Autoriteit Persoonsgegevens (lead) 2026-03-27T10:00:00+01:00 via "
                                              "AP meldloket ref M-2026-001 (nl, draft v1)")
    assert "amended" in row["notifications"][0] and "withdrawn" in row["notifications"][1]
    assert clock.now() - n1.at == timedelta(hours=2)


def _statuses(wf, c):
    return {s.id: s for s in wf.clocks(c)}


def test_regime_clock_origins_are_entered_with_who_and_why(wf: BreachWorkflow, clock):
    from breach_helpers import confirmed_case

    c = confirmed_case(wf)  # GDPR awareness: 2026-03-27 10:00 Amsterdam
    c = wf.edit(c.id, "fenna", {"regimes": ["gdpr", "nis2", "hipaa"]})
    st = _statuses(wf, c)
    assert st["nis2.early_warning"].to_json(CONFIG.tz)["origin"] == "awareness (no nis2_aware entered)"
    with pytest.raises(TransitionRefusedError, match=r"entering nis2_aware .*needs a reason"):
        wf.record_milestone(c.id, "ciso", "nis2_aware", at=clock.now() - timedelta(hours=3))
    clock.advance(hours=1)
    c = wf.record_milestone(c.id, "ciso", "nis2_aware", at=clock.now(), reason="Classified significant by the CSIRT")
    c = wf.record_milestone(c.id, "fenna", "hipaa_discovered", at=clock.now() - timedelta(days=3),
                            reason="Should have known: the alert was in the SIEM three days earlier")
    st = _statuses(wf, c)
    assert st["nis2.early_warning"].due == clock.now() + timedelta(hours=24)  # from nis2_aware, not GDPR awareness
    assert st["gdpr.authority"].due == c.awareness.at + timedelta(hours=72)
    assert st["hipaa.individuals"].started == clock.now() - timedelta(days=3)
    assert st["nis2.notification"].origin == "nis2_aware"
    note = c.milestone_notes["hipaa_discovered"]
    assert (note.by, note.reason) == ("fenna", "Should have known: the alert was in the SIEM three days earlier")


def test_hipaa_hhs_and_media_follow_the_500_thresholds(wf: BreachWorkflow, clock):
    from breach_helpers import confirmed_case

    c = confirmed_case(wf)  # 1,900-2,100 individuals
    c = wf.edit(c.id, "fenna", {"regimes": ["hipaa"]})
    st = _statuses(wf, c)
    assert {k: v.status for k, v in st.items()} == {"hipaa.individuals": "open", "hipaa.media": "open",
                                                    "hipaa.hhs": "open", "hipaa.hhs_annual": "not_required"}
    assert st["hipaa.hhs"].due == st["hipaa.individuals"].due  # 164.408(b): contemporaneously, within 60 days
    c = wf.edit(c.id, "fenna", {"subjects_min": 120, "subjects_max": 120})
    st = _statuses(wf, c)
    assert {k: v.status for k, v in st.items()} == {"hipaa.individuals": "open", "hipaa.media": "not_required",
                                                    "hipaa.hhs": "not_required", "hipaa.hhs_annual": "open"}
    # 164.408(c): 60 days after the end of the calendar year of discovery (2026-12-31 -> 2027-03-01)
    assert st["hipaa.hhs_annual"].to_json(CONFIG.tz)["due"] == "2027-03-02T00:00:00+01:00"
    c = wf.edit(c.id, "fenna", {"subjects_min": 500, "subjects_max": 500})
    st = _statuses(wf, c)  # 500 exactly: HHS now (164.408(b) "500 or more"), no media ("more than 500")
    assert (st["hipaa.hhs"].status, st["hipaa.media"].status) == ("open", "not_required")


def test_dora_updates_are_kept_as_a_list(wf: BreachWorkflow, clock):
    from breach_helpers import confirmed_case

    c = confirmed_case(wf)
    c = wf.edit(c.id, "fenna", {"regimes": ["gdpr", "dora"]})
    c = wf.record_milestone(c.id, "cro", "dora_classified_major", reason="Critical function down > 2 h")
    c = wf.record_milestone(c.id, "cro", "dora_initial_sent")
    for i in range(3):
        clock.advance(hours=10)
        c = wf.dora_report(c.id, "cro", reference=f"DNB-{i}", note=f"status {i}")
    assert [(r.kind, r.reference) for r in c.reports] == [("intermediate", "DNB-0"), ("update", "DNB-1"),
                                                          ("update", "DNB-2")]
    assert c.milestones["dora_intermediate_sent"] == c.reports[0].at
    assert _statuses(wf, c)["dora.intermediate"].status == "met"


def test_risk_worksheet_has_no_silent_defaults():
    from access_audit.breach.model import BreachType, DataCategory, RiskLevel
    from access_audit.breach.risk import Consequences, Identifiability, RiskWorksheet, assess

    bare = RiskWorksheet(breach_types=[BreachType.confidentiality], data_categories=[DataCategory.contact])
    p = assess(bare)
    assert set(bare.defaults()) == {
        "identifiability (assumed significant)", "malicious (assumed False)", "unknown_recipients (assumed True)",
        "trusted_recipient (assumed False)", "vulnerable_individuals (assumed False)",
        "unintelligible (assumed False)", "consequences (not assessed: no minimum level applied)"}
    assert sum(1 for line in p.reasoning if line.startswith("Not answered:")) == 7
    # consequences do not default to 'significant': a minor contact-data slip is not lifted to 'risk'
    assert p.level is RiskLevel.unlikely and not any("at least" in line for line in p.reasoning)

    # an encrypted laptop stolen without a backup: availability and confidentiality lost, nobody can read it
    laptop = RiskWorksheet(breach_types=[BreachType.confidentiality, BreachType.availability],
                           data_categories=[DataCategory.special], identifiability=Identifiability.maximum,
                           unintelligible=True, malicious=True, unknown_recipients=True,
                           consequences=Consequences.significant)
    p = assess(laptop)
    assert p.level is RiskLevel.risk and p.score < 3, p.reasoning  # availability still counts; not "high"
    assert any("unintelligible" in line and "not counted" in line for line in p.reasoning)

    # EDPB 01/2021: data sent by mistake to a trusted recipient -> document only
    trusted = RiskWorksheet(breach_types=[BreachType.confidentiality], data_categories=[DataCategory.financial],
                            identifiability=Identifiability.maximum, malicious=False, unknown_recipients=False,
                            trusted_recipient=True, consequences=Consequences.minimal, vulnerable_individuals=False,
                            unintelligible=False)
    p = assess(trusted)
    assert p.level is RiskLevel.unlikely and trusted.defaults() == []
    assert "document only" in p.reasoning[-1] or any("trusted recipient" in line for line in p.reasoning)


def test_the_stored_assessment_lists_its_defaults(wf: BreachWorkflow):
    from breach_helpers import confirmed_case

    c = confirmed_case(wf)
    c = wf.assess(c.id, "fenna", {"identifiability": "maximum"})
    assert "consequences (not assessed: no minimum level applied)" in c.risk.defaults
    assert "malicious (assumed False)" not in c.risk.defaults  # the case says malicious=True


def test_no_duplicate_case_for_an_alert_already_in_one(wf: BreachWorkflow, tmp_path, clock):
    from test_prefill import mass_read_alert

    from access_audit.breach.model import BreachError
    from access_audit.breach.prefill import open_case_from_alerts
    from access_audit.store.sqlite import SqliteStore

    store = SqliteStore(tmp_path / "events.db")
    a = mass_read_alert()
    c = open_case_from_alerts([a], store, wf.repo, clock, "fenna", config=CONFIG, existing="refuse")
    with pytest.raises(BreachError, match=f"already in a breach case \\({a.id} is in {c.id}\\)"):
        open_case_from_alerts([a, mass_read_alert(id="new-one")], store, wf.repo, clock, "fenna", config=CONFIG,
                              existing="refuse")
    assert open_case_from_alerts([a], store, wf.repo, clock, "x", config=CONFIG, existing="return").id == c.id
    assert wf.repo.ids() == [c.id]
    store.close()


def test_api_refuses_naive_times_with_422(wf: BreachWorkflow):
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from access_audit.breach.api import get_workflow, router

    app = FastAPI()
    app.include_router(router, prefix="/api")
    app.dependency_overrides[get_workflow] = lambda: wf
    client = TestClient(app, headers={"X-Actor": "Fenna de Vries"})
    cid = client.post("/api/breaches", json={"title": "t"}).json()["id"]
    r = client.post(f"/api/breaches/{cid}/milestones", json={"name": "nis2_early_warning_sent",
                                                             "at": "2026-03-27T10:00:00"})
    assert r.status_code == 422 and "timezone" in r.text
    r = client.post(f"/api/breaches/{cid}/awareness", json={"at": "2026-03-27T10:00:00", "reason": "r"})
    assert r.status_code == 422
    r = client.post(f"/api/breaches/{cid}/awareness", json={"at": "2026-03-27T10:00:00+01:00", "reason": "r"})
    assert r.status_code == 200


def test_cli_reads_naive_times_in_the_org_zone_and_refuses_gaps_and_folds(tmp_path):
    from test_cli import run

    d = tmp_path / "data"
    cid = run(d, "open", "--title", "t").stdout.strip()
    p = run(d, "aware", cid, "--at", "2026-03-29T02:30", "--reason", "r", ok=False)
    assert p.returncode == 2 and "does not exist in Europe/Amsterdam" in p.stderr
    p = run(d, "aware", cid, "--at", "2026-10-25T02:30", "--reason", "r", ok=False)
    assert p.returncode == 2 and "happens twice" in p.stderr and "+02:00" in p.stderr and "+01:00" in p.stderr
    p = run(d, "aware", cid, "--at", "2024-01-01T10:00", "--reason", "r", ok=False)  # asked, no answer
    assert p.returncode != 0 and "more than a year from now" in p.stderr
    run(d, "aware", cid, "--at", "2026-10-25T02:30+01:00", "--reason", "r")
    show = json.loads(run(d, "show", cid, "--format", "json").stdout)
    assert show["awareness"]["at"] == "2026-10-25T01:30:00Z"


def _full(wf, clock):
    from access_audit.breach.model import SubjectsDecisionKind

    c = submitted_case(wf)
    c = wf.edit(c.id, "fenna", {"regimes": ["gdpr", "uk_gdpr"], "ongoing": True, "processor_involved": True,
                                "processor": "Hostio B.V. (hosting)", "cross_border": True, "countries": ["BE"],
                                "lead_authority": "Autoriteit Persoonsgegevens"})
    c, _ = wf.draft(c.id, "fenna", "authority", "en")
    c = wf.notify_authority(c.id, "fenna", authority="ICO", channel="portal", reference="IC-9", lang="en",
                            milestone="ico_notified")
    c, _ = wf.draft(c.id, "fenna", "data_subjects", "nl")
    return wf.decide_subjects(c.id, "fenna", SubjectsDecisionKind.communicate, "high risk",
                              communicated_at=clock.now(), channel="brief per post")


@pytest.mark.parametrize(("lang", "expected"), [
    ("nl", ["**Duurt het datalek nog voort?:** Ja",
            "**Was een andere organisatie (een verwerker) bij het datalek betrokken?:** Ja: Hostio B.V. (hosting)",
            "**Inschatting van de ernst:** een hoog risico (ernstscore",
            "**Wanneer, hoe en met welke tekst de betrokkenen zijn geïnformeerd:** Op 27 maart 2026, 10:00 "
            "(UTC+01:00, Europe/Amsterdam), via brief per post; de tekst: de brief aan de betrokkenen, versie 1 (nl).",
            "**Andere toezichthouders die zijn ingelicht:** ICO (27 maart 2026, 10:00",
            "**De wet waarop deze melding berust:** AVG art. 33; UK GDPR art. 33 (aan de ICO)"]),
    ("en", ["**Is the breach still going on?:** Yes",
            "**Was another organisation (a processor) involved?:** Yes: Hostio B.V. (hosting)",
            "**Estimate of the seriousness:** a high risk (severity score",
            "**When, how and with what text the data subjects were told:** On 27 March 2026, 10:00",
            "**Other supervisory authorities notified:** ICO (27 March 2026",
            "**The law under which this notification is made:** GDPR Art. 33; UK GDPR Art. 33 (to the ICO)"]),
])
def test_the_drafts_answer_every_question_of_the_ap_form(wf: BreachWorkflow, clock, lang, expected):
    from access_audit.breach.drafts import render

    c = _full(wf, clock)
    md = render(c, "authority", lang, tz=CONFIG.tz, now=clock.now()).markdown
    for line in expected:
        assert line in md, (line, md)


def test_the_dutch_authority_draft_has_no_english_terms(wf: BreachWorkflow, clock):
    from access_audit.breach.drafts import render

    c = _full(wf, clock)
    md = render(c, "authority", "nl", tz=CONFIG.tz, now=clock.now()).markdown
    assert "functionaris voor gegevensbescherming" in md
    assert "leidende toezichthoudende autoriteit (art. 56 AVG): Autoriteit Persoonsgegevens" in md
    for english in ("Data Protection Officer", "lead authority", "GDPR Art", "Yes", "No:", "Not stated", "supplement",
                    "breach", "Art. "):
        assert english not in md, english


@pytest.mark.parametrize("lang", ["nl", "en"])
def test_the_nis2_early_warning_has_its_own_facts_and_no_gdpr_labels(wf: BreachWorkflow, clock, lang):
    from breach_helpers import confirmed_case

    from access_audit.breach.drafts import render

    c = confirmed_case(wf)
    c = wf.edit(c.id, "fenna", {"regimes": ["gdpr", "nis2"], "cross_border": False,
                                "nis2_cross_border_impact": True,
                                "nis2_cross_border_note": "payment service used in BE and DE"})
    c = wf.record_milestone(c.id, "ciso", "nis2_aware", at=clock.now(), reason="CSIRT: significant")
    res = render(c, "nis2", lang, tz=CONFIG.tz, now=clock.now())
    md = res.markdown
    assert res.complete and md
    for gdpr in ("Art. 33", "art. 33", "AVG", "GDPR", "DPO", "(FG)", "Data Protection", "gegevensbescherming"):
        assert gdpr not in md, (gdpr, md)
    cross = {"nl": "**Kan grensoverschrijdende gevolgen hebben:** Ja: payment service used in BE and DE",
             "en": "**Could have a cross-border impact:** Yes: payment service used in BE and DE"}[lang]
    assert cross in md  # NIS2's own cross-border fact, not the GDPR's (which says no)
    aware = {"nl": "**Wanneer de entiteit kennis kreeg van het significante incident:** 27 maart 2026, 10:00",
             "en": "**When the entity became aware of the significant incident:** 27 March 2026, 10:00"}[lang]
    assert aware in md


def test_the_art_34_letter(wf: BreachWorkflow, clock):
    from access_audit.breach.drafts import render
    from access_audit.breach.model import SubjectsDecisionKind

    c = submitted_case(wf)
    md = render(c, "data_subjects", "nl", tz=CONFIG.tz, now=clock.now()).markdown
    # measures taken apart from measures proposed; times in plain language; the defaults
    assert "## Wat wij hebben gedaan\n\nAccount blocked, session revoked, laptop seized" in md
    assert "## Wat wij nog gaan doen\n\nRate limits on the CRM API" in md
    assert "26 maart 2026 om 01:10" in md and "UTC" not in md and "Europe/Amsterdam" not in md
    assert "\n\nBeste klant,\n\n" in md and "klacht in te dienen bij Autoriteit Persoonsgegevens" in md
    c = wf.edit(c.id, "fenna", {"letter_salutation": "Beste verzekerde,", "complaint_authority":
                                "de Autoriteit Persoonsgegevens (autoriteitpersoonsgegevens.nl)",
                                "letter_contact": "onze klantenservice, 020 123 4567"})
    md = render(c, "data_subjects", "en", tz=CONFIG.tz, now=clock.now()).markdown
    assert "\n\nBeste verzekerde,\n\n" in md and "(autoriteitpersoonsgegevens.nl)" in md
    assert "questions: onze klantenservice, 020 123 4567" in md and "26 March 2026 at 01:10" in md
    # its own clock (Art. 34(1)); 34(3)(a) needs unintelligible data; 'communicate' needs its date to close
    assert {s.id: s.status for s in wf.clocks(c)}["gdpr.subjects"] == "open"
    with pytest.raises(TransitionRefusedError, match=r"34\(3\)\(a\) needs data made unintelligible.*protection=none"):
        wf.decide_subjects(c.id, "fenna", SubjectsDecisionKind.exception_34_3_a, "it was encrypted")
    c = wf.decide_subjects(c.id, "fenna", SubjectsDecisionKind.communicate, "high risk")
    with pytest.raises(TransitionRefusedError, match="when and how is not recorded"):
        wf.close(c.id, "fenna", "done")
    clock.advance(hours=5)
    c = wf.subjects_told(c.id, "fenna", clock.now(), "brief per post")
    assert {s.id: s.status for s in wf.clocks(c)}["gdpr.subjects"] == "met"
    assert wf.close(c.id, "fenna", "done").state.value == "closed"


@pytest.mark.parametrize(("lang", "head", "aware"), [
    ("nl", "(verwerker) aan Zorgwijk Zorgverzekeringen N.V. (verwerkingsverantwoordelijke)",
     "**Wanneer wij (de verwerker) op de hoogte raakten:** 27 maart 2026, 10:00"),
    ("en", "(processor) to Zorgwijk Zorgverzekeringen N.V. (controller)",
     "**When we (the processor) became aware:** 27 March 2026, 10:00"),
])
def test_a_processor_to_controller_notice(wf: BreachWorkflow, clock, lang, head, aware):
    from breach_helpers import confirmed_case

    c = confirmed_case(wf)
    c = wf.edit(c.id, "fenna", {"regimes": ["processor"]})
    c, res = wf.draft(c.id, "fenna", "processor", lang)
    assert res.complete and head in res.markdown and aware in res.markdown
    assert c.drafts[-1].kind == "processor" and c.state.value == "confirmed"  # a draft, not a state change
    assert {s.id: s.status for s in wf.clocks(c)} == {"processor.controller": "open"}


def test_api_refuses_a_duplicate_case_with_409(wf: BreachWorkflow, tmp_path):
    from fastapi import FastAPI
    from fastapi.testclient import TestClient
    from test_prefill import mass_read_alert

    from access_audit.breach.api import get_event_store, get_workflow, router
    from access_audit.store.sqlite import SqliteStore

    store = SqliteStore(tmp_path / "events.db")
    store.write_alerts([mass_read_alert()])
    app = FastAPI()
    app.include_router(router, prefix="/api")
    app.dependency_overrides[get_workflow] = lambda: wf
    app.dependency_overrides[get_event_store] = lambda: store
    client = TestClient(app, headers={"X-Actor": "Fenna de Vries"})
    first = client.post("/api/breaches/from-alerts", json={"alert_ids": ["a1b2c3"]})
    assert first.status_code == 201
    r = client.post("/api/breaches/from-alerts", json={"alert_ids": ["a1b2c3"]})
    assert r.status_code == 409 and first.json()["id"] in r.text
    store.close()
