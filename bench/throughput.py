"""Parse + detect throughput on one core, on generated traffic and on the real OpenSSH sample.

    python bench/throughput.py [--repeat 20] [--days 7] [--store]

Prints events per second for each corpus and the machine's details. Speed is measured here,
never asserted in unit tests. ``--store`` adds the SQLite store to the measured path.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

from access_audit.alert.manager import AlertManager
from access_audit.core.records import RawRecord
from access_audit.detect.engine import DetectionEngine
from access_audit.detect.loader import load_rules
from access_audit.parse import ParserRegistry

REPO = Path(__file__).resolve().parents[1]
OPENSSH = REPO.parent / "shared" / "datasets" / "loghub" / "OpenSSH_2k.log"


def machine() -> str:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{platform.platform()} | {cpu} | {os.cpu_count()} cores | Python {platform.python_version()} | "
            f"single process, single thread")


def measure(name: str, records: list[RawRecord], with_store: bool) -> None:
    rules = load_rules([], include_default=True).rules
    registry = ParserRegistry()
    engine = DetectionEngine(rules)
    alerts = AlertManager()
    store = None
    if with_store:
        from access_audit.store.sqlite import SqliteStore

        store = SqliteStore(Path(tempfile.mkdtemp()) / "bench.db")
    n_ev = n_alerts = 0
    batch: list = []
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    for rec in records:
        res = registry.parse(rec)
        for ev in res.events:
            n_ev += 1
            for det in engine.process(ev):
                n_alerts += alerts.process(det).new
        if store is not None:
            batch.extend(res.events)
            if len(batch) >= 1000:
                store.write_events(batch)
                batch = []
    if store is not None and batch:
        store.write_events(batch)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{name:<34} {len(records):>8} records {n_ev:>8} events {n_alerts:>5} alerts "
          f"{n_ev / wall:>10,.0f} events/s (wall) {n_ev / cpu:>10,.0f} events/s (cpu)  max RSS {rss:,.0f} MiB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=20, help="times to replay the OpenSSH sample (distinct origins)")
    ap.add_argument("--days", type=int, default=7, help="days of generated demo traffic")
    ap.add_argument("--store", action="store_true", help="include SQLite writes")
    args = ap.parse_args()
    print(machine())
    print(f"rules: {len(load_rules([], include_default=True).rules)}; store: {'sqlite' if args.store else 'none'}")

    from access_audit.demo.generator import generate

    demo, _ = generate(seed=7, days=args.days)
    measure(f"demo traffic ({args.days} days)", [
        RawRecord(r.data, f"{r.source}:{i}", r.source, r.log_type) for i, r in enumerate(demo)], args.store)
    if OPENSSH.exists():
        lines = [x.rstrip(b"\r") for x in OPENSSH.read_bytes().split(b"\n") if x.strip()]
        recs = [RawRecord(line, f"rep{k}:{i}", f"rep{k}", None) for k in range(args.repeat)
                for i, line in enumerate(lines)]
        measure(f"loghub OpenSSH_2k x{args.repeat} (auto-detect)", recs, args.store)
    else:
        print(f"(skipped the OpenSSH sample: {OPENSSH} not found)", file=sys.stderr)


if __name__ == "__main__":
    main()
