"""The dispatch index changes which rules an event meets, never what they find.

Two engines over the same events, one indexed (the default) and one evaluating every rule of the
log type on every event: the detections must be identical, event by event and in order, over the
demo traffic (our pack, with the demo's directory and catalogue) and over the CloudTrail benchmark
workload with the SigmaHQ CloudTrail rules.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from access_audit.app import build_context
from access_audit.core.records import RawRecord
from access_audit.demo.context import write_context
from access_audit.demo.generator import DEFAULT_START, generate
from access_audit.detect.engine import DetectionEngine
from access_audit.detect.loader import load_rules
from access_audit.parse import ParserRegistry
from access_audit.settings import Settings
from access_audit.testing import FrozenClock

# ../shared beside the repo, or ACCESS_AUDIT_DATASETS (a worktree), as tests/conftest.py finds them; not
# imported from it: several conftest modules share that name in a whole-suite run
DATASETS = Path(os.environ.get("ACCESS_AUDIT_DATASETS") or Path(__file__).resolve().parents[3] / "shared" / "datasets")
SHARED = DATASETS.parent  # ../shared beside the repo, or ACCESS_AUDIT_DATASETS (a worktree)
SIGMA_CLOUDTRAIL = SHARED / "datasets" / "sigmahq" / "rules" / "cloud" / "aws" / "cloudtrail"
WORKLOAD = SHARED / "bench" / "make_workload.py"


def _need(path: Path) -> None:
    if not path.exists():
        import os

        if os.environ.get("CI"):
            pytest.fail(f"{path} is missing (../shared beside the repo)")
        pytest.skip(f"{path} is missing")


def _run(engine: DetectionEngine, events: list[Any]) -> list[tuple[Any, ...]]:
    out = []
    for ev in events:
        for d in engine.process(ev):
            out.append((ev.id, d.rule.id, d.dedup_key, d.count, tuple(d.evidence), d.timestamp))
    return out


def _compare(rule_paths: list[Path], events: list[Any], ctx: Any) -> tuple[int, DetectionEngine, DetectionEngine]:
    fast = DetectionEngine(load_rules(rule_paths, include_default=True).rules, ctx)
    full = DetectionEngine(load_rules(rule_paths, include_default=True).rules, ctx, dispatch=False)
    got, want = _run(fast, events), _run(full, events)
    assert got == want
    return len(want), fast, full


def test_dispatch_matches_full_evaluation_on_demo_traffic(tmp_path: Path):
    records, _ = generate(days=2)
    directory, resources = write_context(tmp_path)
    enrichers, ctx = build_context(Settings(data_dir=tmp_path, identity_file=directory, resources_file=resources))
    registry = ParserRegistry(FrozenClock(DEFAULT_START.replace(year=DEFAULT_START.year + 1)))
    events = []
    for i, r in enumerate(records):
        res = registry.parse(RawRecord(data=r.data, origin=f"{r.source}:{i + 1}", source=r.source,
                                       log_type=r.log_type))
        for ev in res.events:
            for e in enrichers:
                e.enrich(ev)
            events.append(ev)
    n, fast, full = _compare([], events, ctx)
    assert n > 50  # the demo's scenarios fire: the comparison compared something
    assert fast.stats.evaluations < full.stats.evaluations * 0.7  # and the index skipped rules


def test_dispatch_matches_full_evaluation_on_the_cloudtrail_workload():
    _need(SIGMA_CLOUDTRAIL)
    _need(WORKLOAD)
    spec = importlib.util.spec_from_file_location("make_workload", WORKLOAD)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules["make_workload"] = mod
    spec.loader.exec_module(mod)
    import orjson

    registry = ParserRegistry(FrozenClock())
    events = []
    for i, obj in enumerate(mod.iter_events(count=6000)):
        res = registry.parse(RawRecord(data=orjson.dumps(obj), origin=f"ct:{i}", source="ct",
                                       log_type="aws.cloudtrail"))
        events.extend(res.events)
    n, fast, full = _compare([SIGMA_CLOUDTRAIL], events, None)
    assert n > 1000
    assert fast.stats.evaluations < full.stats.evaluations / 4


def test_rule_fingerprints_are_the_same_in_every_process():
    """A fingerprint that changed between two worker processes (string hashes are per process) would
    drop every baseline at each restart: compute it in two fresh interpreters and compare."""
    import subprocess

    code = ("from access_audit.detect.loader import load_rules\n"
            "from access_audit.detect.state import fingerprint\n"
            "rs = load_rules([], include_default=True)\n"
            "print(sorted((r.id, fingerprint(r)) for r in rs.rules if r.state_groups() is not None))\n")
    runs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={**__import__("os").environ, "PYTHONHASHSEED": seed}).stdout for seed in ("1", "2")}
    assert len(runs) == 1 and "dormant_account_reused" in runs.pop()
