"""Measured detection quality: alerts scored against labelled traffic (the demo's ground truth).

The demo generator labels every record of an injected attack with its scenario id, and each
scenario lists the rules that should fire (``Scenario.expected_rules``). Scoring, per rule:

* an alert is a **true positive** when any of its evidence events (``Alert.event_ids``) belongs
  to a scenario that lists the alert's rule; otherwise it is a **false positive** (it fired on
  benign traffic, or on a scenario that should not have fired it);
* a **false negative** is a (scenario, expected rule) pair that no true-positive alert covers;
* precision = TP / (TP + FP) over alerts; recall = covered pairs / expected pairs.

Plus, over all rules, the number of benign events and the false alerts per 100,000 of them.

``score`` is pure (alerts, labels and scenarios in; a report out). ``evaluate_demo`` runs the
demo traffic through the real embedded pipeline (parsers, enrichment with the demo's directory
and catalogue, rules, dedup) and scores the alerts it raised.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol


class AlertLike(Protocol):
    @property
    def rule_id(self) -> str: ...

    @property
    def event_ids(self) -> list[str]: ...


class ScenarioLike(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def expected_rules(self) -> tuple[str, ...]: ...


@dataclass
class RuleScore:
    rule_id: str
    alerts: int = 0
    tp: int = 0  # alerts whose evidence belongs to a scenario that expects this rule
    fp: int = 0  # all other alerts
    fn: int = 0  # expected (scenario, rule) pairs with no true-positive alert
    expected: int = 0  # (scenario, rule) pairs that expect this rule
    missed: list[str] = field(default_factory=list)  # scenario ids of the false negatives
    false_on: list[str] = field(default_factory=list)  # where the false positives fired: "benign" or a scenario id

    @property
    def precision(self) -> float | None:
        """None when the rule raised no alert (nothing to be wrong about)."""
        return self.tp / self.alerts if self.alerts else None

    @property
    def recall(self) -> float | None:
        """None when no scenario expects the rule (nothing to find)."""
        return (self.expected - self.fn) / self.expected if self.expected else None

    def meets(self, precision: float, recall: float) -> bool:
        """Both targets met; an undefined precision (no alerts) or recall (nothing expected) counts as met."""
        p, r = self.precision, self.recall
        return (p is None or p >= precision) and (r is None or r >= recall)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["precision"] = self.precision
        d["recall"] = self.recall
        return d


@dataclass
class EvalReport:
    rules: list[RuleScore]
    events: int  # events scored (benign + scenario)
    benign_events: int
    scenarios: int
    meta: dict[str, Any] = field(default_factory=dict)  # days, seed, timing...

    @property
    def false_alerts(self) -> int:
        return sum(r.fp for r in self.rules)

    @property
    def false_per_100k(self) -> float:
        return self.false_alerts * 100_000 / self.benign_events if self.benign_events else 0.0

    def by_id(self) -> dict[str, RuleScore]:
        return {r.rule_id: r for r in self.rules}

    def failing(self, precision: float = 0.95, recall: float = 0.95) -> list[RuleScore]:
        return [r for r in self.rules if not r.meets(precision, recall)]

    def to_dict(self) -> dict[str, Any]:
        return {"rules": [r.to_dict() for r in self.rules], "events": self.events,
                "benign_events": self.benign_events, "scenarios": self.scenarios,
                "false_alerts": self.false_alerts, "false_per_100k": self.false_per_100k, **self.meta}


def score(alerts: Iterable[AlertLike], event_scenario: Mapping[str, str | None],
          scenarios: Iterable[ScenarioLike], *, rule_ids: Iterable[str] = (), benign_events: int = 0,
          events: int | None = None) -> EvalReport:
    """Score alerts against labels.

    ``event_scenario`` maps event id -> scenario id (None or absent: benign). ``rule_ids`` are the
    rules evaluated (rules without alerts or expectations still get a row). ``benign_events`` is
    the denominator of the false-alert rate.
    """
    expected: dict[str, set[str]] = {}  # rule -> scenario ids expecting it
    n_scenarios = 0
    for sc in scenarios:
        n_scenarios += 1
        for rid in sc.expected_rules:
            expected.setdefault(rid, set()).add(sc.id)
    rows: dict[str, RuleScore] = {rid: RuleScore(rid) for rid in rule_ids}
    for rid in expected:
        rows.setdefault(rid, RuleScore(rid))
    covered: dict[str, set[str]] = {}
    for a in alerts:
        row = rows.setdefault(a.rule_id, RuleScore(a.rule_id))
        row.alerts += 1
        mine = {s for eid in a.event_ids if (s := event_scenario.get(eid)) is not None}
        hits = mine & expected.get(a.rule_id, set())
        if hits:
            row.tp += 1
            covered.setdefault(a.rule_id, set()).update(hits)
        else:
            row.fp += 1
            where = ",".join(sorted(mine)) or "benign"
            if where not in row.false_on:
                row.false_on.append(where)
    for rid, row in rows.items():
        want = expected.get(rid, set())
        row.expected = len(want)
        row.missed = sorted(want - covered.get(rid, set()))
        row.fn = len(row.missed)
    return EvalReport(rules=sorted(rows.values(), key=lambda r: r.rule_id),
                      events=events if events is not None else len(event_scenario),
                      benign_events=benign_events, scenarios=n_scenarios)


def evaluate_demo(*, days: int = 30, seed: int = 7, rules: list[Path] | None = None,
                  start: datetime | None = None, batch_size: int = 5000) -> EvalReport:
    """Generate the demo traffic, run it through the embedded pipeline, score the alerts.

    The pipeline is the real one (``app.build_embedded``): parsers, GeoIP, the demo's identity
    directory and resource catalogue (written to a temporary data directory, as ``access-audit
    demo`` does), the default rule pack plus ``rules``, and the alert dedup. Its clock is frozen a
    day after the traffic ends, so no event is "in the future". Takes a few seconds per day of
    traffic.
    """
    import time

    from access_audit.app import build_embedded
    from access_audit.core.events import event_id
    from access_audit.core.records import OccurrenceCounter, RawRecord
    from access_audit.demo.context import write_context
    from access_audit.demo.generator import DEFAULT_START, generate
    from access_audit.ingest.memory import InMemoryBus
    from access_audit.settings import Settings
    from access_audit.testing import FrozenClock

    t0 = time.perf_counter()
    records, scenarios = generate(seed=seed, days=days, start=start)
    t_gen = time.perf_counter() - t0
    begin = start or DEFAULT_START
    clock = FrozenClock(begin + timedelta(days=days + 1))
    labels: dict[str, str | None] = {}
    with tempfile.TemporaryDirectory(prefix="access-audit-eval-") as tmp:
        data_dir = Path(tmp)
        directory_file, resources_file = write_context(data_dir)
        settings = Settings(data_dir=data_dir, identity_file=directory_file, resources_file=resources_file,
                            rules=[], batch_size=batch_size)
        emb = build_embedded(settings, sinks=[], rules=rules, clock=clock)
        try:
            bus = InMemoryBus()
            source = bus.source("raw-logs")
            occurrences = OccurrenceCounter()
            for i, r in enumerate(records):
                origin = f"{r.source}:{i + 1}"
                occ = occurrences.next(r.log_type, "", r.data)
                labels[event_id("", r.log_type, r.data, occ)] = r.scenario  # the pipeline's id (scheme 2)
                bus.produce_record("raw-logs", RawRecord(data=r.data, origin=origin, source=r.source,
                                                         log_type=r.log_type, occurrence=occ))
            emb.pipeline.run(source, batch_size=batch_size)
            stats = emb.pipeline.stats
            alerts = emb.store.alerts(limit=1_000_000)
            rule_ids = [r.id for r in emb.rules.rules]
        finally:
            emb.store.close()
    benign = sum(1 for s in labels.values() if s is None)
    report = score(alerts, labels, scenarios, rule_ids=rule_ids, benign_events=benign, events=len(labels))
    report.meta = {"days": days, "seed": seed, "start": begin.isoformat(), "records": len(records),
                   "dead_letters": stats.dead_letters, "generate_s": round(t_gen, 1),
                   "seconds": round(time.perf_counter() - t0, 1)}
    return report


# --- real samples -------------------------------------------------------------------------------

#: What the default pack raises on the real third-party logs of ``../shared/datasets`` (see each
#: PROVENANCE.md), file by file: alerts per rule, and for the attacks whose ground truth is known,
#: the events those alerts count. A file listed with no rules must raise nothing. Reviewed by hand:
#: ``why`` says what each alert is.
REAL_SAMPLES: list[dict[str, Any]] = [
    {"file": "loghub/OpenSSH_2k.log", "alerts": {"ssh_brute_force": 8, "ssh_invalid_user": 26},
     "why": "a real internet-facing sshd: six addresses guess passwords in bursts (183.62.140.253 and "
            "103.99.0.122 across two 6-hour alert windows each), 26 addresses try invalid user names"},
    {"file": "loghub/Linux_2k.log", "alerts": {"ssh_brute_force": 14, "ssh_root_login": 1},
     "why": "pam_unix authentication failures in bursts from scanning hosts, and one root login"},
    {"file": "otrf_aws_cloudtrail/ec2_proxy_s3_exfiltration_2020-09-14011940.json",
     "alerts": {"aws_instance_credentials_outside_aws": 1}, "events": {"aws_instance_credentials_outside_aws": 11},
     "why": "the instance role's credentials used from outside AWS: the recording's 11 calls, one alert"},
    {"file": "otrf_windows_security/purplesharp_ad_playbook_I_2020-10-22042947.logon_events.jsonl",
     "alerts": {"windows_password_spray": 1}, "events": {"windows_password_spray": 7},
     "why": "PurpleSharp sprays seven accounts through the LogonUser API on WORKSTATION5"},
    {"file": "panther_tests/Microsoft365.Audit.Exchange.jsonl", "alerts": {"mailbox_forwarding_external": 6},
     "why": "Panther's test rows for forwarding rules: the six that forward outside the tenant"},
    {"file": "msticpy_testdata/aad_logons.from_pkl.jsonl", "alerts": {"impossible_travel": 1},
     "why": "one account signs in from two countries too far apart for the time between"},
    {"file": "panther_tests/Okta.SystemLog.jsonl", "alerts": {"okta_mfa_deactivated": 2, "impossible_travel": 1},
     "why": "Panther's test rows of MFA factors deactivated, suspended or all reset (two users: two alerts); "
            "two sign-ins of one account at the same millisecond from addresses 5,392 km apart (the rows are "
            "not in time order: compared with its neighbour in time, not the newest row, a year later)"},
    {"file": "panther_tests/GitHub.Audit.jsonl", "alerts": {"mfa_disabled": 2, "privilege_granted_then_used": 1},
     "why": "Panther's rows of org.disable_two_factor_requirement (two actors), and an org.update_member "
            "grant its holder uses at once"},
    *({"file": f, "alerts": {}, "why": "benign or out of the pack's scope: nothing"} for f in (
        "audit2rbac_k8s_audit/demo.log", "msticpy_testdata/host_logons.from_pkl.jsonl",
        "msticpy_testdata/failed_logons.from_pkl.jsonl", "otrf_linux_auditd/sh_arp_cache_2020-11-10074812.log",
        "otrf_windows_security/rdp_interactive_taskmanager_lsass_dump_2020-09-22043748.logon_events.jsonl",
        "otrf_windows_security/covenant_psremoting_grunt_2019-12-05014931.logon_events.jsonl",
        "pgaudit_regress/pgaudit.out",
        "plaso_test_data/gcp_logging.jsonl", "panther_tests/Salesforce.Login.jsonl",
        "panther_tests/Slack.AuditLogs.jsonl")),
]


@dataclass
class SampleResult:
    file: str
    events: int
    dead_letters: int
    alerts: dict[str, int]  # rule -> alerts raised
    counted: dict[str, int]  # rule -> events its alerts count
    expected: dict[str, int]
    expected_events: dict[str, int]
    why: str
    missing: bool = False  # the file is not in the datasets folder

    @property
    def ok(self) -> bool:
        return (not self.missing and self.alerts == self.expected
                and all(self.counted.get(r) == n for r, n in self.expected_events.items()))

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def evaluate_samples(datasets: Path, *, rules: list[Path] | None = None,
                     samples: list[dict[str, Any]] | None = None) -> list[SampleResult]:
    """Run each real sample through parse (the type recognised by content, as ``run --input``
    does), enrichment (GeoIP) and the default pack plus ``rules``, with the alert dedup; compare
    what it raised with ``REAL_SAMPLES``."""
    from access_audit.alert.manager import AlertManager
    from access_audit.app import build_context, load_ruleset
    from access_audit.detect.engine import DetectionEngine
    from access_audit.ingest.files import LineReader
    from access_audit.parse import ParserRegistry
    from access_audit.settings import Settings

    out = []
    for s in REAL_SAMPLES if samples is None else samples:
        path = datasets / s["file"]
        res = SampleResult(s["file"], 0, 0, {}, {}, dict(s.get("alerts", {})), dict(s.get("events", {})),
                           s.get("why", ""))
        if not path.is_file():
            res.missing = True
            out.append(res)
            continue
        enrichers, ctx = build_context(Settings(data_dir=datasets / ".no-data-dir"))
        engine = DetectionEngine(load_ruleset(rules or []).rules, ctx)
        manager, reg = AlertManager(), ParserRegistry()
        alerts: dict[str, tuple[str, int]] = {}
        for rec in LineReader([path]):
            parsed = reg.parse(rec)
            res.dead_letters += len(parsed.dead_letters)
            for ev in parsed.events:
                res.events += 1
                for e in enrichers:
                    e.enrich(ev)
                for det in engine.process(ev):
                    a = manager.process(det).alert
                    alerts[a.id] = (a.rule_id, a.count)
        for rule_id, count in alerts.values():
            res.alerts[rule_id] = res.alerts.get(rule_id, 0) + 1
            res.counted[rule_id] = res.counted.get(rule_id, 0) + count
        out.append(res)
    return out
