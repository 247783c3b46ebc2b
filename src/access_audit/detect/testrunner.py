"""Runs the tests written inside each rule: positive and negative cases, in isolation.

A test case lists events, either raw log lines (``raw:`` with ``log_type:``, which also exercises
the parser) or ECS documents. ``repeat: N`` with ``every: 30s`` repeats an event with shifted
timestamps. ``expect`` is true (at least one alert), false (none) or the exact number of alerts.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from access_audit.alert.manager import AlertManager
from access_audit.core.events import AccessEvent, event_id
from access_audit.core.records import RawRecord
from access_audit.detect.rules import Rule, parse_duration
from access_audit.parse.base import ParserRegistry

TEST_CLOCK_NOW = datetime(2026, 12, 31, 23, 0, tzinfo=timezone.utc)


class _Frozen:
    def now(self) -> datetime:
        return TEST_CLOCK_NOW


@dataclass
class RuleTestResult:
    rule_id: str
    name: str
    passed: bool
    expected: Any
    alerts: int
    message: str = ""
    source: str | None = None


def build_events(rule: Rule, case: dict[str, Any], registry: ParserRegistry) -> list[AccessEvent]:
    out: list[AccessEvent] = []
    default_type = case.get("log_type") or (rule.log_types[0] if rule.log_types else None)
    for i, item in enumerate(case["events"]):
        if not isinstance(item, dict):
            raise ValueError(f"event {i} must be a mapping")
        item = dict(item)
        repeat = int(item.pop("repeat", 1))
        every = parse_duration(item.pop("every", "1s"))
        if "raw" in item:
            lt = item.get("log_type", default_type)
            for r in range(repeat):
                rec = RawRecord(data=str(item["raw"]).encode(), origin=f"test:{case.get('name')}:{i}:{r}",
                                source=f"test:{rule.id}", log_type=lt)
                res = registry.parse(rec)
                if res.dead_letters:
                    raise ValueError(f"event {i} does not parse: {res.dead_letters[0].reason}")
                for ev in res.events:
                    ev.timestamp = ev.timestamp + every * r
                out.extend(res.events)
        else:
            for r in range(repeat):
                doc = copy.deepcopy(item)
                ev = AccessEvent.model_validate(doc)
                ev.timestamp = ev.timestamp + every * r
                if ev.event.dataset is None:
                    ev.event.dataset = default_type
                ev.event.id = event_id(f"test:{case.get('name')}:{i}:{r}", ev.event.dataset or "", b"")
                out.append(ev.fill_related())
    return out


def run_rule_tests(rules: list[Rule]) -> list[RuleTestResult]:
    """Every inline test of every rule, each in a fresh state. Never raises for a broken case."""
    registry = ParserRegistry(clock=_Frozen())
    results: list[RuleTestResult] = []
    for rule in rules:
        for case in rule.tests:
            name = str(case.get("name", "?"))
            expect = case.get("expect")
            rule.reset()
            try:
                events = build_events(rule, case, registry)
                manager = AlertManager(clock=_Frozen())
                alerts = 0
                for ev in events:
                    for det in rule.evaluate(ev):
                        alerts += manager.process(det).new
            except Exception as e:
                results.append(RuleTestResult(rule.id, name, False, expect, 0,
                                              f"test case is broken: {type(e).__name__}: {e}", rule.source))
                continue
            finally:
                rule.reset()
            ok = (alerts > 0) if expect is True else (alerts == 0) if expect is False else alerts == expect
            msg = "" if ok else f"expected {'an alert' if expect is True else 'no alert' if expect is False else expect} but got {alerts}"
            results.append(RuleTestResult(rule.id, name, ok, expect, alerts, msg, rule.source))
    return results
