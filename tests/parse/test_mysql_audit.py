"""MySQL / MariaDB audit records. No real sample exists in the datasets: every line here is written
after the vendors' documented formats (MariaDB server_audit plugin "Log Format" page: the CSV
fields and its examples; MySQL Enterprise Audit "JSON audit log file format": the record shapes),
with our own values."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from access_audit.core.events import AccessEvent, Outcome
from access_audit.core.records import RawRecord
from access_audit.parse import ParserRegistry
from access_audit.testing import FrozenClock

NOW = datetime(2026, 11, 12, 12, 0, tzinfo=UTC)


@pytest.fixture
def registry() -> ParserRegistry:
    return ParserRegistry(clock=FrozenClock(NOW))


def parse(registry: ParserRegistry, text: str, log_type: str | None = None) -> AccessEvent:
    res = registry.parse(RawRecord(data=text.encode(), origin="t:1", source="t", log_type=log_type))
    assert res.events, res.dead_letters[0].reason
    (ev,) = res.events
    assert ev.event.dataset == "mysql.audit"
    return ev


def dead(registry: ParserRegistry, text: str, log_type: str | None = None) -> str:
    res = registry.parse(RawRecord(data=text.encode(), origin="t:1", source="t", log_type=log_type))
    assert not res.events
    return res.dead_letters[0].reason


# MariaDB server_audit: timestamp,serverhost,username,host,connectionid,queryid,operation,database,object,retcode
def test_mariadb_connect_and_failed_connect(registry: ParserRegistry) -> None:
    ok = parse(registry, "20261112 09:15:02,db1,root,10.0.0.5,29,0,CONNECT,crm,,0")
    assert ok.timestamp == datetime(2026, 11, 12, 9, 15, 2, tzinfo=UTC)
    assert (ok.event.action, ok.event.outcome, ok.event.category, ok.event.type) == (
        "CONNECT", Outcome.success, ["authentication", "session"], ["start"])
    assert ok.user.name == "root" and ok.source.ip == "10.0.0.5" and ok.host.name == "db1"  # type: ignore[union-attr]
    assert ok.resource.type == "database" and ok.resource.name == "crm"  # type: ignore[union-attr]
    bad = parse(registry, "20261112 09:15:03,db1,root,203.0.113.9,30,0,FAILED_CONNECT,,,1045")
    assert (bad.event.outcome, bad.event.reason) == (Outcome.failure, "1045")
    bye = parse(registry, "20261112 09:20:00,db1,root,10.0.0.5,29,0,DISCONNECT,crm,,0")
    assert bye.event.type == ["end"] and "authentication" not in bye.event.category


def test_mariadb_table_and_query_events(registry: ParserRegistry) -> None:
    read = parse(registry, "20261112 09:16:00,db1,app,10.0.0.7,31,913,READ,crm,customers,")
    assert (read.event.action, read.event.type, read.event.outcome) == ("READ", ["access"], Outcome.success)
    assert (read.resource.type, read.resource.name) == ("table", "crm.customers")  # type: ignore[union-attr]
    write = parse(registry, "20261112 09:16:00,db1,app,10.0.0.7,31,914,WRITE,crm,orders,")
    assert write.event.type == ["change"]
    q = parse(registry, "20261112 09:16:00,db1,app,10.0.0.7,31,913,QUERY,crm,"
                        "'SELECT name, iban FROM customers WHERE id = \\'7\\'',0")
    assert q.message == "SELECT name, iban FROM customers WHERE id = '7'" and q.event.type == ["access"]
    assert q.labels["mysql_query_id"] == "913" and q.event.outcome is Outcome.success
    failed = parse(registry, "20261112 09:16:01,db1,app,10.0.0.7,31,915,QUERY,crm,'DROP TABLE customers',1142")
    assert (failed.event.type, failed.event.outcome, failed.event.reason) == (["deletion"], Outcome.failure, "1142")


# MySQL Enterprise Audit, JSON format (one object per line)
CONNECT = ('{"timestamp":"2026-11-12 09:15:02","id":0,"class":"connection","event":"connect","connection_id":10,'
           '"account":{"user":"root","host":"localhost"},"login":{"user":"root","os":"","ip":"198.51.100.4",'
           '"proxy":""},"connection_data":{"connection_type":"ssl","status":%d,"db":"crm"}}')


def test_mysql_json_connection(registry: ParserRegistry) -> None:
    ok = parse(registry, CONNECT % 0)
    assert (ok.event.action, ok.event.outcome, ok.user.name, ok.source.ip) == (  # type: ignore[union-attr]
        "connect", Outcome.success, "root", "198.51.100.4")
    assert "authentication" in ok.event.category and ok.labels["db_name"] == "crm"
    bad = parse(registry, CONNECT % 1045)
    assert (bad.event.outcome, bad.event.reason) == (Outcome.failure, "1045")


def test_mysql_json_table_access_and_query(registry: ParserRegistry) -> None:
    ev = parse(registry, '{"timestamp":"2026-11-12 09:16:00","id":2,"class":"table_access","event":"read",'
                         '"connection_id":10,"account":{"user":"app","host":"10.0.0.9"},"login":{"user":"app",'
                         '"os":"","ip":"10.0.0.9","proxy":""},"table_access_data":{"db":"crm","table":"customers",'
                         '"query":"SELECT * FROM customers","sql_command":"select"}}')
    assert (ev.event.type, ev.resource.type, ev.resource.name) == (["access"], "table", "crm.customers")  # type: ignore[union-attr]
    assert ev.message == "SELECT * FROM customers"
    q = parse(registry, '{"timestamp":"2026-11-12 09:16:01","id":3,"class":"general","event":"status",'
                        '"connection_id":10,"account":{"user":"app","host":"10.0.0.9"},"login":{"user":"app",'
                        '"os":"","ip":"10.0.0.9","proxy":""},"general_data":{"command":"Query",'
                        '"sql_command":"delete","query":"DELETE FROM customers","status":1142}}')
    assert (q.event.type, q.event.outcome, q.labels["mysql_error_code"]) == (["deletion"], Outcome.failure, "1142")
    # named explicitly, the JSON shape is read too
    assert parse(registry, CONNECT % 0, log_type="mysql.audit").event.action == "connect"
    assert parse(registry, CONNECT % 0, log_type="mariadb.audit").event.action == "connect"


@pytest.mark.parametrize(("line", "field"), [
    ("20261399 09:15:02,db1,root,10.0.0.5,29,0,CONNECT,crm,,0", "timestamp"),
    ("20261112 09:15:02,db1,root,10.0.0.5,x9,0,CONNECT,crm,,0", "connectionid"),
    ("01261112 09:15:02,db1,root,10.0.0.5,29,0,CONNECT,crm,,0", "implausible timestamp"),
    ("20261112 09:15:02,db1,root,10.0.0.5,29,0,LOGIN,crm,,0", "operation='LOGIN'"),
    ("20261112 09:15:02,db1,root,10.0.0.5,29,0,CONNECT,crm,,ok", "retcode='ok'"),
    ("20261112 09:15:02,db1,root,10.0.0.5,29,0,READ,crm,,", "object"),
    ("20261112 09:15:02,db1,root,10.0.0.5,29,0", "retcode"),
    ('{"timestamp":"2026-11-12 09:15:02","id":0,"class":"connection","event":"connect","connection_id":10,'
     '"account":{"user":"root","host":"localhost"},"connection_data":{"db":"crm"}}', "connection_data.status"),
    ('{"timestamp":"2026-13-12 09:15:02","id":0,"class":"connection","event":"connect","connection_id":10,'
     '"connection_data":{"status":0}}', "timestamp"),
    ('{"timestamp":"2026-11-12 09:15:02","id":2,"class":"table_access","event":"read","connection_id":10,'
     '"table_access_data":{"db":"crm"}}', "table_access_data.table"),
])
def test_broken_records_are_dead_letters_naming_the_field(registry: ParserRegistry, line: str, field: str) -> None:
    reason = dead(registry, line, log_type="mysql.audit")
    assert field in reason


def test_auto_detect_needs_the_documented_shape(registry: ParserRegistry) -> None:
    assert "mysql.audit" not in dead(registry, "20261112 09:15:02,db1,root,10.0.0.5,29,0")  # too short to be one
    assert parse(registry, "20261112 09:15:02,db1,root,10.0.0.5,29,0,CONNECT,crm,,0").user.name == "root"  # type: ignore[union-attr]
