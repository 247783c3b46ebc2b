"""Panther's test rows ({"event": {...}} wrappers, ../shared/datasets/panther_tests) for the first
three vendor parsers: CloudTrail, GitHub and Okta read the wrapper as the later parsers do, and are
recognised inside it without being told the log type. The rows Panther wrote without a usable time
(or with 'redacted' in it) are dead letters naming the field; none is claimed by another parser."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from access_audit.ingest.files import LineReader
from access_audit.parse import ParserRegistry


@pytest.mark.parametrize(("name", "log_type", "rows", "parsed"), [
    ("AWS.CloudTrail.jsonl", "aws.cloudtrail", 475, 456),
    ("GitHub.Audit.jsonl", "github.audit", 107, 73),
    ("Okta.SystemLog.jsonl", "okta.system", 88, 73),
])
def test_wrapped_rows_parse_by_content(datasets: Path, name: str, log_type: str, rows: int, parsed: int):
    reg = ParserRegistry()
    types: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    n = 0
    for rec in LineReader([datasets / "panther_tests" / name]):
        n += 1
        res = reg.parse(rec)
        types.update(ev.event.dataset for ev in res.events)
        reasons.update(d.reason.split(":")[0] for d in res.dead_letters)
    assert n == rows
    assert types == {log_type: parsed}
    # what is left: rows with no or a 'redacted' time, or with too little of the record to recognise
    assert set(reasons) <= {f"[{log_type}] missing timestamp", f"[{log_type}] invalid timestamp",
                            "unrecognised JSON record"}, reasons
    assert sum(reasons.values()) == rows - parsed


def test_the_sigma_rules_read_the_record_inside_the_wrapper(datasets: Path):
    from access_audit.detect.loader import load_rules

    rules = load_rules([datasets / "sigmahq" / "rules" / "cloud" / "aws" / "cloudtrail"], include_default=False).rules
    reg = ParserRegistry()
    fired: Counter[str] = Counter()
    for rec in LineReader([datasets / "panther_tests" / "AWS.CloudTrail.jsonl"]):
        for ev in reg.parse(rec).events:
            for r in rules:
                if r.evaluate(ev):
                    fired[r.id] += 1
    # the rows are Panther's detection tests: many are the very API calls SigmaHQ's rules look for
    assert (len(fired), sum(fired.values())) == (28, 327), fired  # 28 of the 57 rules, on 327 rows
    assert fired["aws_root_account_usage"] == 12
