"""The demo's Google sources: the analytics project's Cloud Audit Logs and the data team's Workspace
activities, in the wire formats the parsers read, through the embedded pipeline with the default pack."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
import pytest

from access_audit.core.records import RawRecord
from access_audit.demo import COMPANY, generate, write_files
from access_audit.demo.generator import DATA_TEAM, DEFAULT_START, GCP, GWORKSPACE, SRC_GCP, SRC_GWORKSPACE
from access_audit.parse import ParserRegistry
from access_audit.testing import FrozenClock

LOADER = "crm-export-loader@zorgwijk-analytics.iam.gserviceaccount.com"


@pytest.fixture(scope="module")
def week():
    return generate(seed=7, days=7)


def _objs(recs, log_type):
    return [orjson.loads(r.data) for r in recs if r.log_type == log_type]


def test_gcp_entries_are_cloud_logging_audit_entries(week) -> None:
    recs, _ = week
    mine = _objs(recs, GCP)
    assert mine and all(r.source == SRC_GCP and r.scenario is None for r in recs if r.log_type == GCP)
    team = {f"{u}@zorgwijk.nl" for u, bq in DATA_TEAM.items() if bq}
    calls: Counter[tuple[str, str]] = Counter()
    for o in mine:
        pp = o["protoPayload"]
        assert pp["@type"] == "type.googleapis.com/google.cloud.audit.AuditLog"
        assert o["logName"].startswith("projects/zorgwijk-analytics/logs/cloudaudit.googleapis.com%2F")
        assert o["resource"]["labels"]["project_id"] == COMPANY.gcp_project
        assert pp["authorizationInfo"][0]["granted"] is True
        who = pp["authenticationInfo"]["principalEmail"]
        assert who == LOADER or who in team
        if who == LOADER:  # the nightly load from the export instance, with the service account's key
            assert "serviceAccountKeyName" in pp["authenticationInfo"]
        if pp["methodName"].endswith("InsertJob"):  # the audit metadata names the job of the entry
            assert pp["resourceName"] == pp["metadata"]["jobInsertion"]["job"]["jobName"]
        calls[("loader" if who == LOADER else "person", pp["methodName"])] += 1
    assert calls[("loader", "storage.objects.create")] == calls[("loader", "google.cloud.bigquery.v2.JobService"
                                                                           ".InsertJob")] == 3 * 7
    assert calls[("person", "google.cloud.bigquery.v2.JobService.InsertJob")] > 10
    assert calls[("person", "google.cloud.bigquery.v2.TableService.GetTable")] > 3


def test_workspace_activities_are_reports_api_activities(week) -> None:
    recs, _ = week
    mine = _objs(recs, GWORKSPACE)
    assert mine and all(r.source == SRC_GWORKSPACE for r in recs if r.log_type == GWORKSPACE)
    names: Counter[str] = Counter()
    for o in mine:
        assert o["kind"] == "admin#reports#activity" and o["id"]["customerId"] == COMPANY.gworkspace_customer_id
        assert o["actor"]["email"].split("@")[0] in DATA_TEAM and len(o["events"]) == 1
        names[o["events"][0]["name"]] += 1
    assert {"login_success", "view", "edit"} <= set(names) and names["view"] > names["edit"]


def test_parsed_fields(week) -> None:
    recs, _ = week
    reg = ParserRegistry(clock=FrozenClock(DEFAULT_START + timedelta(days=10)))
    seen: dict[str, set[str]] = {GCP: set(), GWORKSPACE: set()}
    for i, r in enumerate(x for x in recs if x.log_type in seen):
        parser, _ = reg.detect(r.data)  # recognised without being told
        assert parser.name == r.log_type
        res = reg.parse(RawRecord(r.data, f"{r.source}:{i}", r.source, r.log_type))
        assert not res.dead_letters and len(res.events) == 1
        ev = res.events[0]
        assert ev.timestamp == r.timestamp and ev.event.outcome.value == "success"
        assert ev.user.name and ev.source.ip
        seen[r.log_type].add(ev.event.action)
        if r.log_type == GCP:
            assert (ev.cloud.provider, ev.cloud.account["id"], ev.cloud.region) == \
                ("gcp", "zorgwijk-analytics", "europe-west4")
            assert ev.event.provider in ("bigquery.googleapis.com", "storage.googleapis.com")
        else:
            assert ev.user.name == ev.user.email and ev.labels["gworkspace_service"] == f"{ev.event.provider}" \
                ".googleapis.com"
            if ev.event.action == "login_success":
                assert ev.authentication.mfa is True and ev.event.category == ["authentication"]
            else:
                assert ev.event.category == ["file"] and ev.resource.name
    assert {"storage.objects.create", "google.cloud.bigquery.v2.JobService.InsertJob",
            "google.cloud.bigquery.v2.TableService.GetTable"} <= seen[GCP]
    assert {"login_success", "view", "edit"} <= seen[GWORKSPACE]


def test_benign_google_traffic_follows_the_calendar(week) -> None:
    recs, _ = week
    leaver = next(u for u in COMPANY.users if u.left)
    assert leaver.username not in DATA_TEAM  # nobody of the team leaves: no terminated account here
    people = [r for r in recs if r.log_type in (GCP, GWORKSPACE) and LOADER.encode() not in r.data]
    local = [r.timestamp.astimezone(ZoneInfo(COMPANY.timezone)) for r in people]
    assert sum(COMPANY.is_office_hours(r.timestamp) for r in people) / len(people) > 0.8
    assert all(6 <= t.hour < 23 for t in local)


def test_the_google_files_parse_and_raise_nothing(tmp_path: Path, through_pipeline) -> None:
    days = 7
    recs, _ = generate(seed=7, days=days)
    paths = write_files(recs, tmp_path / "logs")
    files = [paths[SRC_GCP], paths[SRC_GWORKSPACE]]
    assert [p.name for p in files] == ["gcp-audit.jsonl", "gworkspace-activity.jsonl"]
    run = through_pipeline(files, days)
    n = sum(1 for r in recs if r.log_type in (GCP, GWORKSPACE))
    assert (run.stats.records, run.stats.events, run.stats.dead_letters, run.stored) == (n, n, 0, n)
    assert run.alerts == []  # the default pack (status rule included) finds nothing
