"""Deadlines: elapsed hours across daylight-saving changes, calendar months and days in the
organisation's zone, every regime, and how each clock's status follows the case."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from access_audit.breach.clocks import case_clocks, org_zone
from access_audit.breach.model import Awareness, BreachCase, BreachState
from access_audit.core.errors import ConfigError

AMS = org_zone("Europe/Amsterdam")


def t(s: str) -> datetime:
    return datetime.fromisoformat(s)


def case(aware: str | None, regimes: list[str], milestones: dict[str, str] | None = None,
         state: BreachState = BreachState.confirmed) -> BreachCase:
    return BreachCase(id="BR-T", state=state, opened_at=t("2026-01-01T00:00:00+00:00"), opened_by="t",
                      awareness=Awareness(at=t(aware), by="DPO", reason="r", recorded_at=t(aware)) if aware else None,
                      regimes=regimes, milestones={k: t(v) for k, v in (milestones or {}).items()})


def clocks(c: BreachCase, tz: str = "Europe/Amsterdam", now: str = "2026-01-01T00:00:00+00:00",
           pnh: float = 24) -> dict[str, dict]:
    z = org_zone(tz)
    return {s.id: s.to_json(z) for s in case_clocks(c, t(now), z, pnh)}


def test_72_hours_across_the_spring_change_is_elapsed_time():
    # Friday 10:00 CET; summer time starts Sunday 29 March 02:00 -> 03:00. 72 h later is Monday
    # 09:00 UTC = 11:00 CEST: the wall clock shows 73 hours, the law counts 72.
    c = clocks(case("2026-03-27T10:00:00+01:00", ["gdpr"]))["gdpr.authority"]
    assert c["due"] == "2026-03-30T11:00:00+02:00"
    assert c["due_utc"] == "2026-03-30T09:00:00Z"
    assert c["started"] == "2026-03-27T10:00:00+01:00"


def test_72_hours_across_the_autumn_change():
    # Friday 10:00 CEST; winter time returns Sunday 25 October 03:00 -> 02:00.
    c = clocks(case("2026-10-23T10:00:00+02:00", ["gdpr"]))["gdpr.authority"]
    assert c["due"] == "2026-10-26T09:00:00+01:00"
    assert c["due_utc"] == "2026-10-26T08:00:00Z"


def test_awareness_in_the_repeated_autumn_hour():
    # 02:30 happens twice on 25 October; +02:00 says it is the first one (00:30 UTC).
    c = clocks(case("2026-10-25T02:30:00+02:00", ["nis2"]))
    assert c["nis2.early_warning"]["due"] == "2026-10-26T01:30:00+01:00"
    assert c["nis2.early_warning"]["due_utc"] == "2026-10-26T00:30:00Z"


@pytest.mark.parametrize(("tz", "due"), [
    ("Europe/Amsterdam", "2026-03-30T11:00:00+02:00"),
    ("Europe/London", "2026-03-30T10:00:00+01:00"),
    ("America/New_York", "2026-03-30T05:00:00-04:00"),
    ("Asia/Tokyo", "2026-03-30T18:00:00+09:00"),
    ("UTC", "2026-03-30T09:00:00+00:00"),
])
def test_the_same_instant_shown_in_each_zone(tz, due):
    c = clocks(case("2026-03-27T09:00:00+00:00", ["gdpr"]), tz=tz)["gdpr.authority"]
    assert c["due"] == due
    assert c["due_utc"] == "2026-03-30T09:00:00Z"


def test_us_spring_change_in_an_american_organisation():
    # DST in the US starts 8 March 2026; 72 h from Friday noon EST is Monday 13:00 EDT.
    c = clocks(case("2026-03-06T12:00:00-05:00", ["gdpr"]), tz="America/New_York")["gdpr.authority"]
    assert c["due"] == "2026-03-09T13:00:00-04:00"


def test_uk_gdpr_and_processor_hours():
    c = clocks(case("2026-03-27T09:00:00+00:00", ["uk_gdpr", "processor"]), pnh=36)
    assert c["uk_gdpr.authority"]["due_utc"] == "2026-03-30T09:00:00Z"
    assert c["processor.controller"]["due_utc"] == "2026-03-28T21:00:00Z"
    assert c["processor.controller"]["rule"] == "36 hours after awareness"


def test_nis2_early_warning_notification_and_final_report_a_calendar_month_later():
    c = clocks(case("2026-03-19T10:00:00+01:00", ["nis2"]))
    assert c["nis2.early_warning"]["due"] == "2026-03-20T10:00:00+01:00"
    assert c["nis2.notification"]["due"] == "2026-03-22T10:00:00+01:00"
    assert c["nis2.final_report"]["status"] == "waiting" and c["nis2.final_report"]["due"] is None
    # the notification was sent before the spring change: the final report keeps the wall time
    c = clocks(case("2026-03-19T10:00:00+01:00", ["nis2"], {"nis2_notification_sent": "2026-03-20T10:00:00+01:00"}))
    assert c["nis2.notification"]["status"] == "met"
    assert c["nis2.final_report"]["due"] == "2026-04-20T10:00:00+02:00"
    c = clocks(case("2026-10-09T10:00:00+02:00", ["nis2"], {"nis2_notification_sent": "2026-10-10T10:00:00+02:00"}))
    assert c["nis2.final_report"]["due"] == "2026-11-10T10:00:00+01:00"


def test_one_month_is_clamped_to_the_end_of_a_shorter_month():
    c = clocks(case("2026-01-30T10:00:00+01:00", ["nis2"], {"nis2_notification_sent": "2026-01-31T10:00:00+01:00"}))
    assert c["nis2.final_report"]["due"] == "2026-02-28T10:00:00+01:00"


def test_one_month_landing_in_the_spring_gap_moves_forward():
    # 28 March 2027 02:30 does not exist in Amsterdam (02:00 -> 03:00): it becomes 03:30 CEST.
    c = clocks(case("2027-02-27T10:00:00+01:00", ["nis2"], {"nis2_notification_sent": "2027-02-28T02:30:00+01:00"}))
    assert c["nis2.final_report"]["due"] == "2027-03-28T03:30:00+02:00"


def test_dora_initial_is_four_hours_after_classification_at_most_24_after_awareness():
    aware = "2026-03-27T09:00:00+00:00"
    assert clocks(case(aware, ["dora"]))["dora.initial"]["status"] == "waiting"
    c = clocks(case(aware, ["dora"], {"dora_classified_major": "2026-03-27T12:00:00+00:00"}))
    assert c["dora.initial"]["due_utc"] == "2026-03-27T16:00:00Z"
    assert "whichever is earlier" in c["dora.initial"]["rule"]
    c = clocks(case(aware, ["dora"], {"dora_classified_major": "2026-03-28T07:00:00+00:00"}))
    assert c["dora.initial"]["due_utc"] == "2026-03-28T09:00:00Z"  # the 24-hour cap
    c = clocks(case(aware, ["dora"], {"dora_classified_major": "2026-03-27T12:00:00+00:00",
                                      "dora_initial_sent": "2026-03-27T15:00:00+00:00",
                                      "dora_intermediate_sent": "2026-03-30T15:00:00+00:00"}))
    assert c["dora.initial"]["status"] == "met"
    assert c["dora.intermediate"]["due"] == "2026-03-30T17:00:00+02:00"
    assert c["dora.intermediate"]["status"] == "met"
    assert c["dora.final"]["due"] == "2026-04-30T17:00:00+02:00"


def test_hipaa_sixty_calendar_days():
    c = clocks(case("2026-03-01T10:00:00+01:00", ["hipaa"]))
    assert c["hipaa.individuals"]["due"] == "2026-04-30T10:00:00+02:00"
    c = clocks(case("2026-03-01T10:00:00-05:00", ["hipaa"]), tz="America/New_York")
    assert c["hipaa.individuals"]["due"] == "2026-04-30T10:00:00-04:00"


def test_statuses_follow_the_case():
    aware = "2026-03-27T09:00:00+00:00"
    assert clocks(case(None, ["gdpr"]))["gdpr.authority"]["status"] == "waiting"
    c = clocks(case(aware, ["gdpr"]), now="2026-03-28T09:00:00+00:00")["gdpr.authority"]
    assert (c["status"], c["remaining_seconds"], c["remaining"]) == ("open", 48 * 3600, "2d 0h 0m left")
    c = clocks(case(aware, ["gdpr"]), now="2026-03-30T10:30:00+00:00")["gdpr.authority"]
    assert (c["status"], c["remaining"]) == ("overdue", "overdue by 1h 30m")
    c = clocks(case(aware, ["gdpr"], {"authority_notified": "2026-03-29T09:00:00+00:00"}))["gdpr.authority"]
    assert c["status"] == "met" and c["done_at"] == "2026-03-29T11:00:00+02:00"
    c = clocks(case(aware, ["gdpr"], {"authority_notified": "2026-03-31T09:00:00+00:00"}))["gdpr.authority"]
    assert c["status"] == "met_late"
    c = clocks(case(aware, ["gdpr", "nis2"], state=BreachState.no_notification_needed))
    assert c["gdpr.authority"]["status"] == "not_required"
    assert c["nis2.early_warning"]["status"] == "open"  # NIS2 is about the incident, not the risk to people
    c = clocks(case(aware, ["nis2"], {"nis2_not_significant": aware}))
    assert {v["status"] for v in c.values()} == {"not_required"}


def test_unknown_zone_is_a_config_error():
    with pytest.raises(ConfigError, match="Europe/Amsterdam"):
        org_zone("Mars/Olympus")


def test_times_without_offset_are_refused():
    with pytest.raises(ValueError, match="no UTC offset"):
        case("2026-03-27T10:00:00", ["gdpr"])
    assert case("2026-03-27T10:00:00+01:00", ["gdpr"]).awareness.at == datetime(2026, 3, 27, 9, tzinfo=UTC)
