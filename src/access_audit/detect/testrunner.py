"""Runs the tests written inside each rule: positive and negative cases, in isolation.

A test case lists events, either raw log lines (``raw:`` with ``log_type:``, which also exercises
the parser) or ECS documents. ``repeat: N`` with ``every: 30s`` repeats an event with shifted
timestamps. ``expect`` is true (at least one alert), false (none) or the exact number of alerts.
Context-aware rules get their world from the case: ``directory:`` (users, as in the identity
directory file) and ``catalogue:`` (resources, as in the catalogue file); the events are enriched
with them (and with GeoIP when ``geoip: true``) as the pipeline would.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from access_audit.alert.manager import AlertManager
from access_audit.core.events import AccessEvent, event_id
from access_audit.core.records import RawRecord
from access_audit.detect.rules import Rule, parse_duration
from access_audit.parse.base import ParserRegistry

TEST_CLOCK_NOW = datetime(2026, 12, 31, 23, 0, tzinfo=UTC)


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
                # One source per case: the syslog year guess must not carry over between cases.
                rec = RawRecord(data=str(item["raw"]).encode(), origin=f"test:{case.get('name')}:{i}:{r}",
                                source=f"test:{rule.id}:{case.get('name')}", log_type=lt)
                res = registry.parse(rec)
                if res.dead_letters:
                    raise ValueError(f"event {i} does not parse: {res.dead_letters[0].reason}")
                for ev in res.events:
                    ev.timestamp = ev.timestamp + every * r
                out.extend(res.events)
        else:
            for r in range(repeat):
                doc = copy.deepcopy(item)
                ev = AccessEvent.from_doc(doc)
                ev.timestamp = ev.timestamp + every * r
                if ev.event.dataset is None:
                    ev.event.dataset = default_type
                ev.event.id = event_id(f"test:{case.get('name')}:{i}:{r}", ev.event.dataset or "", b"")
                out.append(ev.fill_related())
    return out


def _case_context(case: dict[str, Any]) -> tuple[Any, list[Any]]:
    from access_audit.detect.kinds import DetectContext

    ctx = DetectContext()
    enrichers: list[Any] = []
    if case.get("geoip"):
        enrichers.append(_geoip())
    if "directory" in case:
        from access_audit.enrich.directory import DirectoryEnricher, IdentityDirectory, Person

        ctx.directory = IdentityDirectory([Person.model_validate(p) for p in case["directory"]])
        enrichers.append(DirectoryEnricher(ctx.directory))
    if "catalogue" in case:
        from access_audit.enrich.catalogue import CatalogueEnricher, CatalogueEntry, ResourceCatalogue

        ctx.catalogue = ResourceCatalogue([CatalogueEntry.model_validate(e) for e in case["catalogue"]])
        enrichers.append(CatalogueEnricher(ctx.catalogue))
    return ctx, enrichers


_GEOIP: list[Any] = []


def _geoip() -> Any:
    if not _GEOIP:
        from access_audit.enrich.geoip import GeoIpEnricher

        _GEOIP.append(GeoIpEnricher())
    return _GEOIP[0]


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
                ctx, enrichers = _case_context(case)
                rule.bind(ctx)
                for enricher in enrichers:
                    for ev in events:
                        enricher.enrich(ev)
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
            wanted = "an alert" if expect is True else "no alert" if expect is False else expect
            msg = "" if ok else f"expected {wanted} but got {alerts}"
            results.append(RuleTestResult(rule.id, name, ok, expect, alerts, msg, rule.source))
    return results
