"""The demo's auditd source: db-01's audit.log, the same SSH sessions as its auth.log, and no alert."""

from __future__ import annotations

import re
from collections import Counter
from datetime import timedelta
from pathlib import Path

from access_audit.app import build_embedded
from access_audit.demo import generate, write_files
from access_audit.demo.context import write_context
from access_audit.demo.generator import AUDITD, DEFAULT_START, SRC_DB, SRC_DB_AUDIT
from access_audit.ingest.files import LineReader
from access_audit.ingest.memory import InMemoryBus
from access_audit.settings import Settings
from access_audit.testing import FrozenClock, ListSink


def test_audit_records_name_the_sessions_of_auth_log() -> None:
    recs, _ = generate(seed=7, days=3)
    audit = [r for r in recs if r.log_type == AUDITD]
    assert audit and {r.source for r in audit} == {SRC_DB_AUDIT}
    types = Counter(re.search(rb" type=(\w+) ", r.data)[1].decode() for r in audit)
    assert {"USER_AUTH", "USER_LOGIN", "USER_CMD", "USER_LOGOUT"} <= set(types)
    assert types["USER_LOGIN"] == types["USER_AUTH"] == types["USER_LOGOUT"]
    serials = [int(re.search(rb"msg=audit\(\d+\.\d+:(\d+)\)", r.data)[1]) for r in audit]
    assert serials == sorted(set(serials))  # one serial a record, increasing with time
    # every login's sshd process and session are the ones db-01's auth.log names
    auth = [r.data.decode() for r in recs if r.source == SRC_DB]
    accepted = {m[1] for ln in auth if (m := re.search(r"sshd\[(\d+)\]: Accepted", ln))}
    sessions = {m[1] for ln in auth if (m := re.search(r"New session (\d+) of user", ln))}
    logins = [r.data.decode() for r in audit if b" type=USER_LOGIN " in r.data]
    assert {re.search(r" pid=(\d+) ", ln)[1] for ln in logins} == accepted
    assert {re.search(r" ses=(\d+) ", ln)[1] for ln in logins} == sessions


def test_the_audit_log_parses_and_raises_nothing(tmp_path: Path) -> None:
    days = 7
    recs, _ = generate(seed=7, days=days)
    path = write_files(recs, tmp_path / "logs")[SRC_DB_AUDIT]
    assert path.name == "db-01-audit.log"
    directory, resources = write_context(tmp_path / "data")
    emb = build_embedded(Settings(data_dir=tmp_path / "data", identity_file=directory, resources_file=resources,
                                  rules=[]), sinks=[ListSink()], clock=FrozenClock(DEFAULT_START + timedelta(days=8)))
    try:
        bus = InMemoryBus()
        for rec in LineReader([path]):  # auto-detected; the reader joins records by serial (one each here)
            bus.produce_record("raw", rec)
        stats = emb.pipeline.run(bus.source("raw"), batch_size=500)
        n = sum(1 for r in recs if r.log_type == AUDITD)
        assert (stats.records, stats.events, stats.dead_letters) == (n, n, 0)
        assert emb.store.stats()["events"]["total"] == n
        assert emb.store.alerts(limit=100) == []  # active staff's sessions: no rule covers auditd but the status one
    finally:
        emb.store.close()
