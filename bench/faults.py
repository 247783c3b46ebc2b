"""Fault injection at full size (issue 15), on the fault instance of scripts/services (Kafka 29092,
Elasticsearch 29200, its own state dir: started if needed, the shared servers never touched).

    PYTHONPATH=src python bench/faults.py                      # every scenario, full size
    PYTHONPATH=src python bench/faults.py sigkills --events 200000 --kills 20

Prints one JSON line per scenario (events lost/duplicated, alerts lost/doubled by id, 'new' alert
messages repeated on the topic, seconds to recover, whether the chain verifies); the figures go
to docs/reliability.md. The CI-sized run is tests/faults/test_faults_servers.py.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "faults"))

import harness  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("scenarios", nargs="*", default=list(harness.SCENARIOS))
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--bursts", type=int, default=100)
    ap.add_argument("--down-s", type=float, default=60.0)
    ap.add_argument("--reject-s", type=float, default=60.0)
    args = ap.parse_args()
    harness.services("start")
    bad = 0
    for name in args.scenarios:
        kw: dict[str, object] = {"events": args.events, "bursts": args.bursts}
        if name == "sigkills":
            kw["kills"] = args.kills
        elif name in ("es_stopped", "alerts_topic_unavailable"):
            kw["down_s"] = args.down_s
        elif name == "es_rejections":
            kw["reject_s"] = args.reject_s
        t0 = time.monotonic()
        with tempfile.TemporaryDirectory() as tmp:
            t = harness.SCENARIOS[name](Path(tmp), **kw)
        row = {"scenario": name, **kw, **t.to_json(), "seconds": round(time.monotonic() - t0)}
        print(json.dumps(row), flush=True)
        bad += bool(t.lost or t.duplicated or t.alerts_lost or t.alerts_doubled or not t.chain_ok)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
