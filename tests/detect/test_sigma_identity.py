"""SigmaHQ's identity/cisco_duo and identity/onelogin folders on duo.* and onelogin.events.

Every rule loads: cisco_duo 1 of 1, onelogin 2 of 2. The samples are Panther's fixtures, which
have no time (Duo authentication: none; OneLogin: 30 of 36), so each is given the time field its
vendor documents (``isotimestamp``, ``created_at``) before it is parsed. Which records must fire is
computed from the vendor JSON with the rule's own condition, and every other record is a benign
twin that must not fire.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from access_audit.core.records import RawRecord
from access_audit.detect.loader import load_rules
from access_audit.parse import ParserRegistry
from access_audit.testing import FrozenClock

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
WHEN = "2026-11-20T10:00:00+00:00"
LOCKED_IDS = {532, 553, 551}  # onelogin_user_account_locked: 1 of selection1..3


@pytest.fixture
def registry() -> ParserRegistry:
    return ParserRegistry(clock=FrozenClock(NOW))


def folder(datasets: Path, name: str) -> Path:
    return datasets / "sigmahq" / "rules" / "identity" / name


def rows(datasets: Path, log_type: str, time_key: str) -> list[dict[str, Any]]:
    path = datasets / "panther_tests" / f"{log_type}.jsonl"
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            ev = json.loads(line)["event"]
            out.append({**ev, time_key: ev.get(time_key) or WHEN})
    return out


def fired(rule, registry, records) -> list[bool]:
    out = []
    for i, rec in enumerate(records):
        res = registry.parse(RawRecord(data=orjson.dumps(rec), origin=f"s:{i}", source="s"))
        assert res.events, res.dead_letters
        out.append(any(bool(rule.evaluate(ev)) for ev in res.events))
    return out


@pytest.mark.parametrize(("name", "files", "log_types"), [
    ("cisco_duo", 1, {"duo.authentication", "duo.administrator"}),
    ("onelogin", 2, {"onelogin.events"}),
])
def test_every_rule_of_the_folder_loads(datasets, name, files, log_types):
    path = folder(datasets, name)
    rs = load_rules([path], include_default=False)
    assert len(sorted(path.rglob("*.yml"))) == files
    assert rs.errors == []
    assert len(rs.rules) == files
    assert set().union(*(r.log_types for r in rs.rules)) == log_types


def test_duo_bypass_code_rule(datasets, registry):
    rule = load_rules([folder(datasets, "cisco_duo")], include_default=False).by_id()[
        "cisco_duo_mfa_bypass_via_bypass_code"]
    auth = rows(datasets, "Duo.Authentication", "isotimestamp")
    want = [r["event_type"] == "authentication" and r["reason"] == "bypass_user" for r in auth]
    assert sum(want) == 1 and len(want) - sum(want) == 13
    assert fired(rule, registry, auth) == want
    # the administrator log (bypass codes created/viewed) is the same log source but no authentication
    admin = rows(datasets, "Duo.Administrator", "isotimestamp")
    assert not any(fired(rule, registry, admin))
    # twins: the same record with another reason, and an enrollment with the bypass reason
    hit = auth[want.index(True)]
    assert fired(rule, registry, [hit, {**hit, "reason": "user_approved"},
                                  {**hit, "event_type": "enrollment"}]) == [True, False, False]


def test_onelogin_rules(datasets, registry):
    rules = load_rules([folder(datasets, "onelogin")], include_default=False).by_id()
    events = rows(datasets, "OneLogin.Events", "created_at")
    ids = [int(r["event_type_id"]) for r in events]
    assumed = fired(rules["onelogin_assumed_another_user"], registry, events)
    assert assumed == [i == 3 for i in ids] and sum(assumed) == 1
    locked = fired(rules["onelogin_user_account_locked"], registry, events)
    assert locked == [i in LOCKED_IDS for i in ids] and sum(locked) == 2  # 553, 551; Panther's 531 is not in the rule
    # the id as a number and as a string (both occur), and a benign twin
    base = {"user_name": "Bob Cat", "actor_user_name": "Mountain Lion", "created_at": WHEN}
    assert fired(rules["onelogin_user_account_locked"], registry, [
        {**base, "event_type_id": 532}, {**base, "event_type_id": "532"}, {**base, "event_type_id": 533},
        {**base, "event_type_id": "5"}]) == [True, True, False, False]
