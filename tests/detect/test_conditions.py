from __future__ import annotations

from datetime import UTC, datetime

import pytest

from access_audit.core.events import AccessEvent
from access_audit.detect.conditions import ConditionError, compile_block


def ev(**doc) -> AccessEvent:
    base = {"@timestamp": datetime(2026, 11, 2, tzinfo=UTC), "event": {"action": "ssh_login",
            "outcome": "failure", "category": ["authentication"]}, "user": {"name": "Alice", "roles": ["hr"]},
            "source": {"ip": "10.1.2.3"}, "http": {"response": {"status_code": 404}}, "labels": {"v": "public"}}
    base.update(doc)
    return AccessEvent.from_doc(base).fill_related()


@pytest.mark.parametrize("block, expected", [
    ({"event.action": "ssh_login"}, True),
    ({"event.action": "su"}, False),
    ({"event.outcome": ["success", "failure"]}, True),
    ({"event.category": "authentication"}, True),  # list field: any element
    ({"user.roles": {"in": ["dpo", "hr"]}}, True),
    ({"user.name": {"startswith": "al"}}, False),
    ({"user.name": {"startswith": "al", "nocase": True}}, True),
    ({"user.name": {"endswith": "ice"}}, True),
    ({"user.name": {"contains": ["xx", "lic"]}}, True),
    ({"user.name": {"regex": "^A.i"}}, True),
    ({"source.ip": {"cidr": "10.0.0.0/8"}}, True),
    ({"source.ip": {"cidr": ["192.168.0.0/16", "2001:db8::/32"]}}, False),
    ({"source.ip": {"not": {"cidr": "10.0.0.0/8"}}}, False),
    ({"host.name": {"exists": False}}, True),
    ({"user.name": {"exists": True}}, True),
    ({"http.response.status_code": {"gte": 400, "lt": 500}}, True),
    ({"http.response.status_code": 404}, True),
    ({"labels.v": "public"}, True),
    ({"not": {"event.action": "ssh_login"}}, False),
    ({"any": [{"event.action": "su"}, {"labels.v": "public"}]}, True),
    ({"all": [{"event.action": "ssh_login"}, {"labels.v": "private"}]}, False),
    ({"event.action": "ssh_login", "user.name": "Bob"}, False),
    ({"related.ip": "10.1.2.3"}, True),
])
def test_operators(block, expected):
    assert compile_block(block)(ev()) is expected


def test_missing_field_never_matches_positive_tests():
    assert compile_block({"url.path": {"startswith": "/"}})(ev()) is False
    assert compile_block({"url.path": "x"})(ev()) is False


def test_every_problem_is_collected():
    errors: list[ConditionError] = []
    compile_block({"source.ip": {"cidr": "999.1.1.1/8"}, "user.name": {"regex": "("}, "x.y": 1,
                   "any": [], "user.id": {"bogus": 1}}, lambda f: f != "x.y", errors)
    msgs = " | ".join(str(e) for e in errors)
    assert len(errors) == 5, msgs
    for part in ("invalid cidr", "invalid regex", "unknown field 'x.y'", "'any' needs", "unknown operator"):
        assert part in msgs


def test_first_problem_raises_without_collector():
    with pytest.raises(ConditionError, match="needs a number"):
        compile_block({"http.response.status_code": {"gt": "x"}})
