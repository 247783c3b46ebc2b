"""The demo's Entra ID sign-in log: the shape the parser reads, and its file through the embedded pipeline."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import orjson
import pytest

from access_audit.demo import COMPANY, generate, write_files
from access_audit.demo.generator import AITM_VICTIM, ENTRA, SRC_ENTRA, TRAVELLER

SID = "entra_aitm_phishing"
PROXY = "162.243.10.20"


@pytest.fixture(scope="module")
def week():
    return generate(seed=7, days=7)


def test_records_have_the_diagnostic_settings_shape(week) -> None:
    recs, _ = week
    mine = [orjson.loads(r.data) for r in recs if r.log_type == ENTRA]
    assert mine and all(r.source == SRC_ENTRA for r in recs if r.log_type == ENTRA)
    staff = {u.email for u in COMPANY.users}
    codes: Counter[int] = Counter()
    for o in mine:
        p = o["properties"]
        assert (o["operationName"], o["category"]) == ("Sign-in activity", "SignInLogs")
        assert o["resourceId"] == f"/tenants/{COMPANY.entra_tenant_id}/providers/Microsoft.aadiam"
        assert o["resultType"] == str(p["status"]["errorCode"]) and o["correlationId"] == p["correlationId"]
        assert p["userPrincipalName"] in staff and p["ipAddress"] == o["callerIpAddress"]
        assert p["location"]["countryOrRegion"] == o["location"] and "geoCoordinates" in p["location"]
        assert p["appDisplayName"] and p["clientAppUsed"] in ("Browser", "Mobile Apps and Desktop clients")
        assert p["conditionalAccessStatus"] == ("success" if p["status"]["errorCode"] == 0 else "notApplied")
        codes[p["status"]["errorCode"]] += 1
    assert set(codes) == {0, 50126, 50074} and codes[0] > 5 * (codes[50126] + codes[50074])
    # benign sign-ins come from home countries only (the traveller is away: no benign sign-in of his abroad)
    benign = [orjson.loads(r.data)["properties"] for r in recs if r.log_type == ENTRA and r.scenario is None]
    homes = {u.email: {p.country_iso for p in u.homes} | {"NL"} for u in COMPANY.users}
    assert all(p["location"]["countryOrRegion"] in homes[p["userPrincipalName"]] for p in benign)
    assert TRAVELLER + "@zorgwijk.nl" in {p["userPrincipalName"] for p in benign}


@pytest.mark.parametrize(("days", "rules"), [(3, {"impossible_travel"}),
                                              (7, {"impossible_travel", "login_from_new_country"})])
def test_the_entra_file_parses_and_only_the_phishing_alerts(tmp_path: Path, days: int, rules: set[str],
                                                           through_pipeline) -> None:
    recs, scs = generate(seed=7, days=days)
    (sc,) = [s for s in scs if s.id == SID]
    assert set(sc.expected_rules) == rules
    paths = write_files(recs, tmp_path / "logs")
    path = paths[SRC_ENTRA]
    assert path.name == "entra-signins.jsonl"
    run = through_pipeline([path], days)  # no log type given: the file is recognised as Entra sign-ins
    n = sum(1 for r in recs if r.log_type == ENTRA)
    assert (run.stats.records, run.stats.events, run.stats.dead_letters, run.stored) == (n, n, 0, n)
    # the benign sign-ins raise nothing: every alert is the phishing, and each expected rule fires
    assert {a.rule_id for a in run.alerts} == rules
    victim = COMPANY.user(AITM_VICTIM).email
    assert all(a.user == victim and a.log_types == [ENTRA] for a in run.alerts)
    assert all(a.source_ip == PROXY for a in run.alerts if a.rule_id == "login_from_new_country")
    travel = [a for a in run.alerts if a.rule_id == "impossible_travel"]
    assert len(travel) == 1 and travel[0].first_seen == sc.start
