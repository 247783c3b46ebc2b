"""Cisco Duo authentication and administrator logs, on Panther's fixtures (the only samples).

Counts are computed from the vendor JSON:

* ``Duo.Administrator.jsonl``: 28 of 28 have a time and parse, by log type and auto-detected.
* ``Duo.Authentication.jsonl``: none of the 14 has a time (no ``isotimestamp``/``timestamp``):
  each is a dead letter ``missing timestamp`` naming the fields; with the documented
  ``isotimestamp`` added by the test all 14 parse.
"""

from __future__ import annotations

import orjson
import pytest

from access_audit.core.events import AccessEvent, Outcome
from access_audit.core.records import DeadLetter, RawRecord

TIME_KEYS = ("isotimestamp", "timestamp", "p_event_time")
RESULTS = {"success": Outcome.success, "denied": Outcome.failure, "fraud": Outcome.failure}


def test_administrator_log_parses_and_autodetects(panther, run_dataset):
    rows = panther("Duo.Administrator")
    rep = run_dataset(rows, "duo.administrator", TIME_KEYS)
    rep.assert_ok(min_rate=1.0)
    assert rep.parsed == rep.with_time == len(rows) == 28
    for i, ev in rep.events.items():
        src = rows[i]["event"]
        assert ev.event.action == src["action"] and ev.user.name == src["username"]
        assert (ev.resource.name if ev.resource else None) == src.get("object")


def test_admin_login_reads_the_json_description(panther, parse_one):
    rec = next(r["event"] for r in panther("Duo.Administrator") if r["event"]["action"] == "admin_login")
    desc = orjson.loads(rec["description"])
    ev = parse_one(rec)
    assert isinstance(ev, AccessEvent) and ev.event.dataset == "duo.administrator"
    assert ev.event.category == ["authentication"] and ev.event.outcome is Outcome.success
    assert ev.source.ip == desc["ip_address"] and ev.authentication.method == desc["factor"]
    lockouts = [r["event"] for r in panther("Duo.Administrator") if r["event"]["action"] == "admin_lockout"]
    for rec in lockouts:  # one description is not JSON: it stays the message, the record parses
        ev = parse_one(rec)
        assert isinstance(ev, AccessEvent) and ev.event.outcome is Outcome.failure and "locked out" in ev.message


def test_authentication_fixtures_have_no_time_and_say_so(panther, parse_one):
    rows = [r["event"] for r in panther("Duo.Authentication")]
    timeless = [r for r in rows if not any(k in r for k in TIME_KEYS)]
    assert len(timeless) == len(rows) == 14
    for rec in rows:
        for log_type in (None, "duo.authentication"):
            dl = parse_one(rec, log_type)
            assert isinstance(dl, DeadLetter) and dl.log_type == "duo.authentication"
            assert "missing timestamp" in dl.reason and "isotimestamp" in dl.reason


def test_authentication_records_with_their_time(panther, registry):
    rows = [r["event"] for r in panther("Duo.Authentication")]
    for i, rec in enumerate(rows):
        rec = {**rec, "isotimestamp": "2026-11-20T10:00:00+00:00"}
        data = orjson.dumps(rec)
        typed = registry.parse(RawRecord(data=data, origin=f"d:{i}", source="t", log_type="duo.authentication"))
        auto = registry.parse(RawRecord(data=data, origin=f"d:{i}", source="t"))
        ev = typed.events[0]
        assert auto.events and auto.events[0].id == ev.id
        assert ev.event.outcome is RESULTS[rec["result"]] and ev.event.reason == rec["reason"]
        assert ev.user.name == rec["user"]["name"] and ev.source.ip == rec["access_device"]["ip"]
        app = rec["application"]
        if app:
            assert (ev.resource.type, ev.resource.id, ev.resource.name) == ("application", app["key"], app["name"])
        else:  # one fixture has an empty application
            assert ev.resource is None
        assert ev.authentication.method == "duo_push" and ev.authentication.mfa is True
        assert ev.labels["duo_auth_device_ip"] == rec["auth_device"]["ip"]


def test_epoch_time_geo_and_a_bypass_code(parse_one):
    ev = parse_one({"event_type": "authentication", "timestamp": 1763632800, "factor": "bypass_code",
                    "result": "success", "reason": "bypass_user", "user": {"name": "ann", "key": "DU1"},
                    "access_device": {"ip": "2001:db8::7", "hostname": "ann-laptop",
                                      "location": {"city": "Ghent", "country": "Belgium"}},
                    "application": {"key": "DI9", "name": "VPN"}, "txid": "t-1"})
    assert isinstance(ev, AccessEvent) and ev.timestamp.year == 2025
    assert ev.authentication.mfa is False and ev.source.geo.city_name == "Ghent" and ev.host.name == "ann-laptop"
    assert ev.user.id == "DU1" and ev.labels["duo_txid"] == "t-1"


@pytest.mark.parametrize(("rec", "log_type", "names"), [
    ({"event_type": "authentication", "factor": "sms", "access_device": {}, "isotimestamp": "soon"}, None,
     "isotimestamp='soon'"),
    ({"event_type": "authentication", "factor": "sms", "access_device": {"ip": 7}, "timestamp": 1763632800},
     None, "access_device.ip is int"),
    ({"factor": "sms", "timestamp": 1763632800}, "duo.authentication", "event_type is absent"),
    ({"action": None, "username": "a", "isotimestamp": "2026-01-01T00:00:00Z"}, "duo.administrator",
     "action is absent"),
    ({"action": "user_update", "username": ["a"], "isotimestamp": "2026-01-01T00:00:00Z"}, None,
     "username is list"),
])
def test_broken_records_are_dead_letters_naming_the_field(parse_one, rec, log_type, names):
    dl = parse_one(rec, log_type)
    assert isinstance(dl, DeadLetter) and names in dl.reason and (dl.log_type or "").startswith("duo."), dl
