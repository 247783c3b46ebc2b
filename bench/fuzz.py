"""The long fuzz run: N generated inputs (default 1M) through every parser, by the property of
tests/fuzz/test_fuzz_parsers.py (events that read back, or one dead letter with a reason that is not
a crash). Prints one JSON line of figures; every failing input is written to --out as a
regression case (base64 + log type), to be added to tests/fuzz/test_fuzz_rule_regressions.py.

    ACCESS_AUDIT_DATASETS=/work/shared/datasets PYTHONPATH=src python bench/fuzz.py --n 1000000 --seed 1
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import sys
import time
import traceback
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "fuzz"))

from gen import load_seeds, record_input  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("fuzz-failures.jsonl"))
    ap.add_argument("--slow-ms", type=float, default=250.0, help="an input slower than this counts as a hang")
    args = ap.parse_args()

    os.environ.setdefault("HYPOTHESIS_PROFILE", "ci")
    from test_parsers import check  # the same property as the suite

    datasets = Path(os.environ.get("ACCESS_AUDIT_DATASETS") or REPO.parent / "shared" / "datasets")
    lines, objs = load_seeds(datasets, per_file=2000)
    rng = random.Random(args.seed)
    failures: list[dict[str, str]] = []
    kinds: Counter[str] = Counter()
    slow = 0
    worst = (0.0, b"")
    t0 = time.perf_counter()
    for i in range(args.n):
        data, log_type = record_input(rng, lines, objs)
        t = time.perf_counter()
        try:
            check(data, log_type)
            kinds["ok"] += 1
        except AssertionError as e:
            kinds["property"] += 1
            failures.append({"b64": base64.b64encode(data).decode(), "log_type": log_type or "",
                             "error": str(e)[:300]})
        except Exception as e:  # a crash that escaped the registry
            kinds["crash"] += 1
            failures.append({"b64": base64.b64encode(data).decode(), "log_type": log_type or "",
                             "error": "".join(traceback.format_exception_only(e))[:300]})
        dt = time.perf_counter() - t
        if dt * 1000 > args.slow_ms:
            slow += 1
        if dt > worst[0]:
            worst = (dt, data)
        if (i + 1) % 100_000 == 0:
            print(f"[fuzz] {i + 1} inputs, {len(failures)} failures, {time.perf_counter() - t0:.0f}s",
                  file=sys.stderr)
    elapsed = time.perf_counter() - t0
    if failures:
        with args.out.open("w") as fh:
            for f in failures:
                fh.write(json.dumps(f) + "\n")
    print(json.dumps({"inputs": args.n, "seed": args.seed, "seconds": round(elapsed, 1),
                      "inputs_per_s": round(args.n / elapsed), "failures": len(failures), "by_kind": kinds,
                      "slow_inputs": slow, "slowest_ms": round(worst[0] * 1000, 1),
                      "seeds": {"lines": len(lines), "objects": len(objs)}}))
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
