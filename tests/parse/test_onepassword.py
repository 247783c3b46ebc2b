"""1Password item usage and sign-in attempts on Panther's fixtures (the only samples).

Counts are computed from the vendor JSON: every row of ``OnePassword.ItemUsage.jsonl`` (4) and
``OnePassword.SignInAttempt.jsonl`` (7) has a ``timestamp`` and parses, by log type and
auto-detected.
"""

from __future__ import annotations

import pytest

from access_audit.core.events import AccessEvent, Outcome
from access_audit.core.records import DeadLetter

TIME_KEYS = ("timestamp", "p_event_time")


def test_item_usage(panther, run_dataset):
    rows = panther("OnePassword.ItemUsage")
    rep = run_dataset(rows, "onepassword.itemusage", TIME_KEYS)
    rep.assert_ok(min_rate=1.0)
    assert rep.parsed == len(rows) == sum("timestamp" in r["event"] for r in rows) == 4
    for i, ev in rep.events.items():
        src = rows[i]["event"]
        assert (ev.resource.type, ev.resource.id, ev.resource.owner) == ("vault_item", src["item_uuid"],
                                                                        src["vault_uuid"])
        # verbatim: one fixture's "1.1.1.1.1" is no IP, so it stays source.address only
        assert ev.user.email == src["user"]["email"] and ev.source.address == src["client"]["ip_address"]
        assert ev.event.category == ["file"] and ev.event.type == ["access"]


def test_sign_in_attempts(panther, run_dataset):
    rows = panther("OnePassword.SignInAttempt")
    rep = run_dataset(rows, "onepassword.signinattempt", TIME_KEYS)
    rep.assert_ok(min_rate=1.0)
    assert rep.parsed == len(rows) == 7
    for i, ev in rep.events.items():
        src = rows[i]["event"]
        ok = src["category"] == "success"
        assert ev.event.outcome is (Outcome.success if ok else Outcome.failure)
        assert ev.event.action == src["type"] and ev.event.reason == (None if ok else src["category"])
        assert ev.user.id == src["target_user"]["uuid"]
        assert ev.source.geo.country_iso_code == (src.get("location") or src)["country"]
    moscow = [ev for i, ev in rep.events.items() if rows[i]["event"].get("location")]
    assert len(moscow) == 1 and moscow[0].source.geo.city_name == "Moscow" and moscow[0].source.geo.location


@pytest.mark.parametrize(("rec", "log_type", "names"), [
    ({"item_uuid": "i", "vault_uuid": "v", "user": {}, "timestamp": "later"}, None, "timestamp='later'"),
    ({"vault_uuid": "v", "user": {}, "timestamp": "2026-01-01T00:00:00Z"}, "onepassword.itemusage",
     "item_uuid is absent"),
    ({"session_uuid": "s", "target_user": {}, "category": None, "timestamp": "2026-01-01T00:00:00Z"},
     "onepassword.signinattempt", "category is absent"),
    ({"session_uuid": "s", "target_user": {"uuid": 5}, "category": "success", "timestamp": "2026-01-01T00:00:00Z"},
     None, "target_user.uuid is int"),
])
def test_broken_records_are_dead_letters_naming_the_field(parse_one, rec, log_type, names):
    dl = parse_one(rec, log_type)
    assert isinstance(dl, DeadLetter) and names in dl.reason and dl.log_type.startswith("onepassword."), dl


def test_mfa_sign_in(parse_one):
    ev = parse_one({"uuid": "u1", "session_uuid": "s1", "timestamp": "2026-11-20T10:00:00Z", "category": "success",
                    "type": "mfa_ok", "country": "NL", "target_user": {"uuid": "U", "email": "a@b.nl"},
                    "client": {"ip_address": "192.0.2.1", "app_name": "1Password for Linux", "app_version": 81}})
    assert isinstance(ev, AccessEvent) and ev.authentication.mfa is True
    assert ev.user_agent.original == "1Password for Linux 81" and ev.labels["onepassword_uuid"] == "u1"
