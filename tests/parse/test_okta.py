"""Okta System Log parser: real Panther fixtures and malformed records."""

from __future__ import annotations

import orjson
import pytest

from access_audit.core.events import AccessEvent, Outcome
from access_audit.core.records import DeadLetter

TIME_KEYS = ("published", "p_event_time")
LOG_TYPE = "okta.system"

MINIMAL = {"uuid": "e1", "published": "2024-04-02T19:17:37.621Z", "eventType": "user.session.start",
           "actor": {"id": "00u1", "type": "User", "alternateId": "ann@example.org", "displayName": "Ann"},
           "client": {"ipAddress": "2001:db8::5", "geographicalContext": {"country": "Netherlands",
                                                                          "geolocation": {"lat": 52.1, "lon": 4.3}}},
           "outcome": {"result": "SUCCESS"}}


@pytest.fixture(scope="module")
def rows(panther):
    return panther("Okta.SystemLog")


def test_panther_dataset_parses_and_autodetects(rows, run_dataset):
    rep = run_dataset(rows, LOG_TYPE, TIME_KEYS)
    rep.assert_ok()
    assert rep.parsed >= 70  # 73 of 88; 15 have no published time or "redacted"


def test_user_mfa_factor_deactivate(rows, find, parse_one):
    event = find(rows, "User reset own MFA factor")
    # The fixture has no published time: as it stands it is a dead letter, not an event of "now".
    dl = parse_one(event, LOG_TYPE)
    assert isinstance(dl, DeadLetter) and "missing timestamp" in dl.reason
    # With the time a real System Log entry always carries, every other field maps.
    ev = parse_one({**event, "published": "2022-03-22T14:21:53.225Z"}, LOG_TYPE)
    assert isinstance(ev, AccessEvent)
    assert ev.event.action == "user.mfa.factor.deactivate"  # from the lower-cased "eventtype" key
    assert ev.event.category == ["iam"] and ev.event.type == ["deletion"]
    assert ev.event.outcome is Outcome.success
    assert ev.event.reason == "User reset FIDO_WEBAUTHN factor"
    assert ev.user.name == "homer@springfield.gov" and ev.user.email == "homer@springfield.gov"
    assert ev.user.target.name == "homer@springfield.gov"
    assert ev.source.ip == "1.1.1.1"
    assert ev.message == "Reset factor for user"
    assert ev.timestamp.isoformat() == "2022-03-22T14:21:53.225000+00:00"


def test_system_mfa_factor_deactivate_space_separated_utc_time(rows, find, parse_one):
    ev = parse_one(find(rows, "MFA Disabled", "Okta.Global.MFA.Disabled"), LOG_TYPE)
    assert ev.event.action == "system.mfa.factor.deactivate"
    assert ev.timestamp.isoformat() == "2022-03-22T14:21:53.225000+00:00"  # "2022-03-22 14:21:53.225", UTC
    assert ev.labels["okta_severity"] == "HIGH"
    assert ev.event.outcome is Outcome.unknown  # the fixture has no outcome


def test_failed_login_with_geo_and_application(rows, find, parse_one):
    ev = parse_one(find(rows, "Failed Login", "Okta.Login.Success"), LOG_TYPE)
    assert ev.event.action == "user.session.start"
    assert ev.event.category == ["authentication", "session"] and ev.event.type == ["start"]
    assert ev.event.outcome is Outcome.failure
    assert ev.user.name == "casey.hill@hey.com" and ev.user.id == "00ubewfku1EX0WCFk697"
    assert ev.source.ip == "99.108.5.25"
    assert ev.source.geo.country_name == "United States" and ev.source.geo.city_name == "Atlanta"
    assert (ev.source.geo.location.lat, ev.source.geo.location.lon) == (33.9794, -84.3459)
    assert ev.resource.type == "application" and ev.resource.name == "Okta Dashboard"
    assert ev.authentication.method == "password"
    assert ev.user_agent.original.startswith("Mozilla/5.0 (Macintosh")
    assert ev.labels["is_proxy"] == "false" and ev.labels["threat_suspected"] == "false"
    assert ev.timestamp.isoformat() == "2024-04-02T19:17:37.621000+00:00"  # nanosecond digits


def test_admin_privilege_grant_targets_another_user(rows, find, parse_one):
    ev = parse_one(find(rows, "Admin Access Assigned"), LOG_TYPE)
    assert ev.event.category == ["iam"]
    assert ev.user.name == "jack@acme.io" and ev.user.target.name == "alice@acme.io"
    assert ev.related.user == ["jack@acme.io", "alice@acme.io"]


def test_auth_via_mfa_sets_mfa(rows, find, parse_one):
    ev = parse_one(find(rows, "Other Event", "Okta.Identity.Provider.Created.Modified"), LOG_TYPE)
    assert ev.event.action == "user.authentication.auth_via_mfa"
    assert ev.authentication.mfa is True


def test_minimal_event_ipv6_and_factor(parse_one):
    ev = parse_one({**MINIMAL, "debugContext": {"debugData": {"factor": "OKTA_VERIFY_PUSH"}}})
    assert ev.event.dataset == LOG_TYPE
    assert ev.source.ip == "2001:db8::5" and ev.related.ip == ["2001:db8::5"]
    assert ev.authentication.mfa is True and ev.labels["mfa_factor"] == "OKTA_VERIFY_PUSH"


@pytest.mark.parametrize(("data", "reason"), [
    (b'{"eventType": "user.session.start", "actor": {"alternateId": "a', "invalid JSON"),
    (b"\x00\xff\xfe\x00garbage\x01", "invalid JSON"),
    (b'"just a string"', "expected an object"),
    (orjson.dumps({**MINIMAL, "actor": ["ann"]}), "actor is list, expected object"),
    (orjson.dumps({**MINIMAL, "actor": {"alternateId": {"weird": 1}}}), "actor.alternateId is dict, expected string"),
    (orjson.dumps({**MINIMAL, "client": {"ipAddress": 123}}), "client.ipAddress is int, expected string"),
    (orjson.dumps({**MINIMAL, "target": {"type": "User"}}), "target is dict, expected list"),
    (orjson.dumps({**MINIMAL, "target": ["bob"]}), "target[0] is str, expected object"),
    (orjson.dumps({**MINIMAL, "client": {"geographicalContext": {"geolocation": {"lat": "north", "lon": 1}}}}),
     "geolocation.lat is str, expected number"),
    (orjson.dumps({**MINIMAL, "client": {"geographicalContext": {"geolocation": {"lat": 500, "lon": 1}}}}),
     "invalid field values"),
    (orjson.dumps({**MINIMAL, "eventType": None}), "missing field"),
    (orjson.dumps({k: v for k, v in MINIMAL.items() if k != "published"}), "missing timestamp"),
    (orjson.dumps({**MINIMAL, "published": "1800-01-01 00:00:00.000"}), "implausible timestamp"),
    (orjson.dumps({**MINIMAL, "published": "9999-01-01 00:00:00.000"}), "timestamp in the future"),
    (orjson.dumps({**MINIMAL, "published": "redacted"}), "invalid timestamp"),
    (orjson.dumps({**MINIMAL, "displayMessage": "x" * 5_000_000}), "record too large"),
])
def test_malformed_records_become_dead_letters(parse_one, data, reason):
    dl = parse_one(data, LOG_TYPE)
    assert isinstance(dl, DeadLetter), "expected a dead letter, got an event"
    assert reason in dl.reason
    assert dl.raw == data
    auto = parse_one(data)
    assert isinstance(auto, DeadLetter) and auto.reason


def test_same_record_twice_gives_the_same_id(parse_one):
    a = parse_one(MINIMAL, LOG_TYPE, origin="okta:1")
    b = parse_one(MINIMAL, LOG_TYPE, origin="okta:1")
    assert a.id == b.id and a.to_doc() == b.to_doc()
    assert parse_one(MINIMAL, LOG_TYPE, origin="okta:2", occurrence=1).id != a.id
    assert parse_one(MINIMAL, LOG_TYPE, origin="okta:1", stream="okta-eu").id != a.id
