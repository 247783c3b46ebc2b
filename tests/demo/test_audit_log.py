"""The demo's auditd source: db-01's audit.log, the same SSH sessions as its auth.log, and no alert."""

from __future__ import annotations

import re
from collections import Counter

from access_audit.demo import generate
from access_audit.demo.generator import AUDITD, SRC_DB, SRC_DB_AUDIT


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


def test_the_audit_log_parses_and_raises_nothing(demo_source) -> None:
    path, run, n = demo_source(SRC_DB_AUDIT, AUDITD)  # the reader joins auditd records by serial (one each here)
    assert path.name == "db-01-audit.log"
    assert (run.stats.records, run.stats.events, run.stats.dead_letters, run.stored) == (n, n, 0, n)
    assert run.alerts == []  # active staff's sessions: no rule covers auditd but the status one
