"""GitHub audit log parser: real Panther fixtures and malformed records."""

from __future__ import annotations

import orjson
import pytest

from access_audit.core.events import AccessEvent, Outcome, get_field
from access_audit.core.records import DeadLetter

TIME_KEYS = ("@timestamp", "at_sign_timestamp", "created_at", "p_event_time")
LOG_TYPE = "github.audit"

# The shape of a streamed "repo.access" entry (repository visibility changed), as GitHub documents it.
REPO_MADE_PUBLIC = {"@timestamp": 1706745600123, "_document_id": "Xy1", "action": "repo.access",
                    "actor": "mallory", "actor_id": 4242, "actor_ip": "2001:db8:1::7",
                    "actor_location": {"country_code": "NL"}, "org": "clinic", "repo": "clinic/patient-exports",
                    "repo_id": 99, "visibility": "public", "previous_visibility": "private",
                    "created_at": 1706745600123, "operation_type": "modify"}


@pytest.fixture(scope="module")
def rows(panther):
    return panther("GitHub.Audit")


def test_panther_dataset_parses_and_autodetects(rows, run_dataset):
    rep = run_dataset(rows, LOG_TYPE, TIME_KEYS)
    rep.assert_ok()
    assert rep.parsed >= 70  # 73 of 107; 30 have no time at all, 4 a malformed "00:00:00000000"


def test_repo_access_real_fixture(rows, find, parse_one):
    ev = parse_one(find(rows, "GitHub - Repo Visibility Change"), LOG_TYPE)
    assert ev.event.action == "repo.access"
    assert ev.event.category == ["configuration"] and ev.event.outcome is Outcome.success
    assert ev.user.name == "cat"
    assert ev.resource.type == "repository" and ev.resource.name == "my-org/my-repo"
    assert ev.timestamp.isoformat() == "2021-05-18T02:31:58.553000+00:00"  # epoch milliseconds
    assert "visibility" not in ev.labels  # the fixture does not say which way


def test_repo_made_public_is_matchable_by_label(parse_one):
    ev = parse_one(REPO_MADE_PUBLIC)
    assert isinstance(ev, AccessEvent) and ev.event.dataset == LOG_TYPE
    assert get_field(ev, ("labels", "visibility")) == "public"
    assert ev.labels["previous_visibility"] == "private"
    assert ev.user.name == "mallory" and ev.user.id == "4242"
    assert ev.source.ip == "2001:db8:1::7" and ev.source.geo.country_iso_code == "NL"
    assert ev.resource.id == "99" and ev.resource.owner == "clinic"
    assert ev.related.ip == ["2001:db8:1::7"] and ev.related.user == ["mallory"]


def test_public_repo_created(rows, find, parse_one):
    ev = parse_one(find(rows, "Public Repo Created", "Github.Public.Repository.Created"), LOG_TYPE)
    assert ev.event.action == "repo.create" and ev.event.type == ["creation"]
    assert ev.labels["visibility"] == "public" and ev.labels["github_document_id"] == "abCD"
    assert ev.source.geo.country_iso_code == "US" and ev.source.ip is None
    assert ev.timestamp.isoformat() == "2022-12-11T22:40:20.268000+00:00"  # Panther's at_sign_timestamp


def test_org_add_member_targets_the_user(rows, find, parse_one):
    ev = parse_one(find(rows, "GitHub - Org - User Added"), LOG_TYPE)
    assert ev.event.category == ["iam"] and ev.event.type == ["creation", "user"]
    assert ev.user.target.name == "cat"
    assert ev.resource.type == "organization" and ev.resource.name == "my-org"


def test_git_clone_with_ip(rows, find, parse_one):
    ev = parse_one(find(rows, "git.clone-false"), LOG_TYPE)
    assert ev.event.category == ["file"] and ev.event.type == ["access"]
    assert ev.source.ip == "5.6.7.8" and ev.user.id == "123456789"
    assert ev.user.target is None  # user_id "0" means no affected user
    assert ev.labels["public_repo"] == "false"
    assert ev.labels["programmatic_access_type"] == "OAuth access token"


def test_empty_actor_means_no_user(rows, find, parse_one):
    ev = parse_one(find(rows, "GitHub - Clone without Actor"), LOG_TYPE)
    assert ev.user is None and ev.related.user == []
    assert "business" not in ev.labels  # "" is no value


@pytest.mark.parametrize(("data", "reason"), [
    (b'{"action": "repo.access", "actor": "mall', "invalid JSON"),
    (b"\x00\xff\xfe\x00garbage\x01", "invalid JSON"),
    (b"[]", "expected an object"),
    (orjson.dumps({**REPO_MADE_PUBLIC, "actor": {"weird": 1}}), "actor is dict, expected string"),
    (orjson.dumps({**REPO_MADE_PUBLIC, "actor_ip": 123}), "actor_ip is int, expected string"),
    (orjson.dumps({**REPO_MADE_PUBLIC, "actor_location": "NL"}), "actor_location is str, expected object"),
    (orjson.dumps({**REPO_MADE_PUBLIC, "repo": ["a", "b"]}), "repo is list, expected string"),
    (orjson.dumps({**REPO_MADE_PUBLIC, "action": None}), "missing field"),
    (orjson.dumps({k: v for k, v in REPO_MADE_PUBLIC.items() if k not in ("@timestamp", "created_at")}),
     "missing timestamp"),
    (orjson.dumps({**REPO_MADE_PUBLIC, "@timestamp": "2024-12-17 00:00:00000000"}), "invalid timestamp"),
    (orjson.dumps({**REPO_MADE_PUBLIC, "@timestamp": 500_000_000}), "implausible timestamp"),  # 1985
    (orjson.dumps({**REPO_MADE_PUBLIC, "@timestamp": -5_000_000_000_000}), "out of range"),
    (orjson.dumps({**REPO_MADE_PUBLIC, "@timestamp": 253402300799000}), "timestamp in the future"),
    (orjson.dumps({**REPO_MADE_PUBLIC, "@timestamp": True}), "invalid timestamp"),
    (orjson.dumps({**REPO_MADE_PUBLIC, "user_agent": "x" * 5_000_000}), "record too large"),
])
def test_malformed_records_become_dead_letters(parse_one, data, reason):
    dl = parse_one(data, LOG_TYPE)
    assert isinstance(dl, DeadLetter), "expected a dead letter, got an event"
    assert reason in dl.reason
    assert dl.raw == data
    auto = parse_one(data)
    assert isinstance(auto, DeadLetter) and auto.reason


def test_same_record_twice_gives_the_same_id(parse_one):
    a = parse_one(REPO_MADE_PUBLIC, LOG_TYPE, origin="gh:1")
    b = parse_one(REPO_MADE_PUBLIC, None, origin="gh:1")
    assert a.id == b.id and a.to_doc() == b.to_doc()
