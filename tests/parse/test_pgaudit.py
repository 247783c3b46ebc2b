"""pgAudit records on the real sample: pgaudit_regress/pgaudit.out (pgAudit's regression-test output).

Counts asserted below (computed from the file's text, independently of the parser, and equal to
PROVENANCE.md's table): 415 records (386 ``NOTICE:  AUDIT:``, 29 ``WARNING:  AUDIT:``), by type and
class SESSION READ 62, WRITE 70, FUNCTION 16, ROLE 50, DDL 97, MISC 78; OBJECT READ 19, WRITE 23.

* Grouped into whole records (a record starts at an ``AUDIT:`` line and goes on while its quoted
  STATEMENT is open): 415 of 415 parse, none truncated; 184 have the ROWS field
  (``pgaudit.log_rows``). PROVENANCE.md says 87 records end ``,<none>,<n>``: a grep of the file
  finds 168 such lines; the parser's 184 also counts rows after a logged parameter.
* Line by line (what the file reader hands over): the 415 record lines parse, 179 of them with
  ``pgaudit_statement_truncated`` (their statement goes on on the next lines).

The file has no log_line_prefix: the server-log tests put a prefix we wrote before the real
payloads (stating the form of ``log_line_prefix`` each imitates).
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from access_audit.core.events import AccessEvent, Outcome
from access_audit.core.records import RawRecord
from access_audit.parse import ParserRegistry
from access_audit.parse.pgaudit import split_csv
from access_audit.testing import FrozenClock

NOW = datetime(2026, 11, 12, 12, 0, tzinfo=UTC)
START = ("NOTICE:  AUDIT: ", "WARNING:  AUDIT: ")


@pytest.fixture
def sample(datasets: Path) -> list[str]:
    return (datasets / "pgaudit_regress" / "pgaudit.out").read_text(encoding="utf-8").split("\n")


def records(lines: list[str]) -> list[str]:
    """Whole records: an AUDIT line and, while its quoted statement is open, the lines after it."""
    out: list[str] = []
    cur: list[str] | None = None
    for line in lines:
        if cur is not None:
            cur.append(line)
            if split_csv("\n".join(cur))[1]:
                out.append("\n".join(cur))
                cur = None
        elif line.startswith(START):
            if split_csv(line)[1]:
                out.append(line)
            else:
                cur = [line]
    assert cur is None
    return out


def parse(registry: ParserRegistry, text: str, log_type: str | None = None) -> AccessEvent:
    res = registry.parse(RawRecord(data=text.encode(), origin="t:1", source="t", log_type=log_type))
    assert res.events, res.dead_letters[0].reason
    return res.events[0]


def dead(registry: ParserRegistry, text: str, log_type: str | None = None) -> str:
    res = registry.parse(RawRecord(data=text.encode(), origin="t:1", source="t", log_type=log_type))
    assert not res.events
    return res.dead_letters[0].reason


@pytest.fixture
def registry() -> ParserRegistry:
    return ParserRegistry(clock=FrozenClock(NOW))


def test_every_record_of_the_regress_output_parses(registry: ParserRegistry, sample: list[str]) -> None:
    recs = records(sample)
    assert len(recs) == 415
    assert sum(r.startswith("NOTICE") for r in recs) == 386
    by_class: Counter[tuple[str, str]] = Counter()
    rows = 0
    for r in recs:
        ev = parse(registry, r)  # auto-detected
        assert ev.event.dataset == "postgresql.pgaudit"
        assert ev.event.outcome is Outcome.success and ev.event.category[0] == "database"
        assert "pgaudit_statement_truncated" not in ev.labels
        assert ev.labels["pgaudit_time_source"] == "received" and ev.timestamp == NOW
        by_class[ev.labels["pgaudit_audit_type"], ev.labels["pgaudit_class"]] += 1
        rows += ev.resource is not None and ev.resource.records is not None
    # the same table, counted from the text without the parser
    want = Counter(tuple(re.match(r"^\w+:  AUDIT: (\w+),\d+,\d+,(\w+),", r).groups()) for r in recs)  # type: ignore[union-attr]
    assert by_class == want == Counter({("SESSION", "READ"): 62, ("SESSION", "WRITE"): 70,
                                        ("SESSION", "FUNCTION"): 16, ("SESSION", "ROLE"): 50,
                                        ("SESSION", "DDL"): 97, ("SESSION", "MISC"): 78,
                                        ("OBJECT", "READ"): 19, ("OBJECT", "WRITE"): 23})
    assert rows == 184


def test_fields_of_real_records(registry: ParserRegistry, sample: list[str]) -> None:
    recs = records(sample)
    create = parse(registry, next(r for r in recs if "CREATE TABLE,TABLE,public.tmp," in r))
    assert (create.event.action, create.event.type, create.resource.type, create.resource.name) == (  # type: ignore[union-attr]
        "CREATE TABLE", ["creation"], "table", "public.tmp")
    assert create.message == "CREATE TABLE tmp (id int, data text)"
    obj = parse(registry, next(r for r in recs if r.startswith("WARNING:  AUDIT: OBJECT,1,1,READ,SELECT,TABLE,"
                                                               "public.test2,")))
    assert obj.event.type == ["access"] and obj.message is None  # <previously logged>
    assert obj.labels["pgaudit_audit_type"] == "OBJECT"
    multi = parse(registry, next(r for r in recs if r.startswith("NOTICE:  AUDIT: SESSION,1,1,DDL,CREATE TABLE,TABLE,"
                                                                 "public.test,")))
    assert multi.message is not None and multi.message.startswith("CREATE TABLE public.test\n")
    role = parse(registry, next(r for r in recs if "CREATE USER regress_user1 password <REDACTED>" in r))
    assert role.event.category == ["database", "iam"] and role.event.action == "CREATE ROLE"
    param = parse(registry, next(r for r in recs if '"1,<long param suppressed>"' in r))
    assert param.labels["pgaudit_parameter"] == "1,<long param suppressed>"
    counted = [parse(registry, r) for r in recs if re.search(r",<none>,\d+$", r)]
    assert counted and all(ev.resource and ev.resource.records is not None for ev in counted)


def test_line_by_line_keeps_every_record(registry: ParserRegistry, sample: list[str]) -> None:
    lines = [line for line in sample if line.startswith(START)]
    assert len(lines) == 415
    evs = [parse(registry, line) for line in lines]
    truncated = [e for e in evs if e.labels.get("pgaudit_statement_truncated") == "true"]
    assert len(truncated) == 179
    # a continuation line is no record of any type: a dead letter, not an event, not lost
    cont = sample[sample.index(next(x for x in sample if x.startswith("NOTICE:  AUDIT: SESSION,1,1,DDL,CREATE TABLE,"
                                                                     "TABLE,public.test,"))) + 1]
    assert "unrecognised format" in dead(registry, cont)


# --- server log: a prefix we wrote before real payloads ------------------------------------------

PAYLOAD = 'SESSION,1,1,READ,SELECT,TABLE,public.account,"select * from account",<not logged>'


def test_server_log_prefix_user_at_db(registry: ParserRegistry) -> None:
    # log_line_prefix = '%m [%p] %q%u@%d '
    ev = parse(registry, f"2026-11-12 10:00:01.123 UTC [4711] alice@crm LOG:  AUDIT: {PAYLOAD}")
    assert ev.timestamp == datetime(2026, 11, 12, 10, 0, 1, 123000, tzinfo=UTC)
    assert ev.user is not None and ev.user.name == "alice" and ev.process is not None and ev.process.pid == 4711
    assert ev.labels["db_name"] == "crm" and ev.labels["pgaudit_time_source"] == "logged"
    assert (ev.event.action, ev.resource.type, ev.resource.name) == ("SELECT", "table", "public.account")  # type: ignore[union-attr]
    assert ev.labels["pgaudit_statement"] == "select * from account"


def test_server_log_prefix_key_values_and_zone(registry: ParserRegistry) -> None:
    # log_line_prefix = '%t [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h ' with log_timezone CET
    ev = parse(registry, f"2026-11-12 10:00:01 CET [4711]: [3-1] user=bob,db=crm,app=psql,client=10.1.2.3 "
                         f"LOG:  AUDIT: {PAYLOAD}")
    assert ev.timestamp == datetime(2026, 11, 12, 9, 0, 1, tzinfo=UTC)
    assert ev.user.name == "bob" and ev.source.ip == "10.1.2.3"  # type: ignore[union-attr]
    assert ev.labels["db_application"] == "psql"
    ev = parse(registry, f"2026-11-12 10:00:01.5 +01:00 [12] LOG:  AUDIT: {PAYLOAD}")  # '%m [%p] ', numeric zone
    assert ev.timestamp == datetime(2026, 11, 12, 9, 0, 1, 500000, tzinfo=UTC) and ev.user is None


def test_connection_lines(registry: ParserRegistry) -> None:
    ok = parse(registry, "2026-11-12 10:00:01 UTC [12] postgres@postgres LOG:  connection authorized: "
                         "user=postgres database=postgres application_name=psql")
    assert (ok.event.action, ok.event.outcome, ok.user.name) == ("connection_authorized", Outcome.success,  # type: ignore[union-attr]
                                                                 "postgres")
    assert "authentication" in ok.event.category
    bad = parse(registry, '2026-11-12 10:00:01 UTC [12] bob@crm FATAL:  password authentication failed for user "bob"')
    assert (bad.event.action, bad.event.outcome, bad.user.name) == ("authentication_failed", Outcome.failure, "bob")  # type: ignore[union-attr]


@pytest.mark.parametrize(("line", "field"), [
    ("2026-11-12 10:00:01 XYZ [12] LOG:  AUDIT: " + PAYLOAD, "time zone 'XYZ'"),
    ("[12] alice@crm LOG:  AUDIT: " + PAYLOAD, "timestamp"),
    ("0026-11-12 10:00:01 UTC [12] alice@crm LOG:  AUDIT: " + PAYLOAD, "implausible timestamp"),
    ("NOTICE:  AUDIT: SESSION,x,1,MISC,SET,,,SET x = 1,<not logged>", "statement_id='x'"),
    ("NOTICE:  AUDIT: SESSION,1,1,MISC", "command"),
    ("NOTICE:  AUDIT: SESSION,1,1,BOGUS,SET,,,SET x = 1,<not logged>", "class='BOGUS'"),
    ("NOTICE:  AUDIT: AUDIT,1,1,MISC,SET,,,SET x = 1,<not logged>", "audit_type='AUDIT'"),
    ("NOTICE:  AUDIT: SESSION,1,1,READ,SELECT,TABLE,t,select 1,<none>,many", "rows='many'"),
])
def test_broken_records_are_dead_letters_naming_the_field(registry: ParserRegistry, line: str, field: str) -> None:
    reason = dead(registry, line)
    assert "postgresql.pgaudit" in reason and field in reason
