"""MySQL and MariaDB audit logs: logins and table access.

**No real sample exists in the datasets.** Both shapes are built from the vendors' documented
formats, and every field below is "never seen in a real record":

* MariaDB ``server_audit`` plugin, file output (``server_audit_output_type=file``), one CSV line::

      [timestamp],[serverhost],[username],[host],[connectionid],[queryid],[operation],[database],[object],[retcode]
      20170817 16:04:33,ip-172-30-0-38,root,localhost,29,913,READ,company,employees_salaries,
      20170817 16:04:33,ip-172-30-0-38,root,localhost,29,913,QUERY,company,'SELECT * FROM t WHERE a = 1',0

  The timestamp (``YYYYMMDD HH:MM:SS``) is the server's local time without a zone: read as UTC (run
  the server in UTC, or the times are off by its offset). For QUERY events the object is the
  statement in single quotes (it may contain commas): it is everything between the database and
  the last comma. Table events (READ, WRITE, CREATE, ALTER, RENAME, DROP) have an empty retcode.
  The syslog output (``server_audit_output_type=syslog``) puts a syslog header before the same
  fields; it is read by the syslog parser, not here.
* MySQL Enterprise Audit, JSON format (``audit_log_format=JSON``), one object per record::

      {"timestamp": "2019-10-03 15:02:32", "id": 0, "class": "connection", "event": "connect",
       "connection_id": 10, "account": {"user": "root", "host": "localhost"},
       "login": {"user": "root", "os": "", "ip": "::1", "proxy": ""},
       "connection_data": {"connection_type": "ssl", "status": 0, "db": ""}}

  The audit log file is a JSON array spread over lines; feed one object per line (``jq -c '.[]'``,
  or a shipper that splits it). The ``timestamp`` is UTC (the plugin writes UTC).
  Classes read: ``connection`` (connect, change_user, disconnect), ``general`` (status: a query),
  ``table_access`` (read, insert, update, delete), ``query`` (start/status of MySQL 8.0.30+'s query
  events); ``audit`` (startup/shutdown) records are server events (category host).

Mapping (ECS on the left): ``event.action``: the MariaDB operation verbatim (CONNECT,
FAILED_CONNECT, DISCONNECT, QUERY, READ, WRITE...), or the MySQL event (connect, read, status...);
``event.category`` authentication (plus session) for connections, database for queries and table
access; ``event.type`` start/end for logins and disconnects, access for READ / table reads /
SELECT, creation / change / deletion from the SQL verb; ``event.outcome``: a connect with status /
retcode 0 (and every FAILED_CONNECT is a failure), a query with retcode / status 0 succeeded, else
failure with ``event.reason`` = the MySQL error number; table access: success. ``user.name`` =
username / ``account.user`` (the account the server authenticated), ``source`` = host /
``login.ip``, ``host.name`` = serverhost; ``resource``: a table (type table, name
``database.table``) for table events, else the database (type database); ``message`` and
``labels.mysql_statement`` = the query; labels ``mysql_connection_id``, ``mysql_query_id``,
``db_name``, ``mysql_error_code``, ``mysql_sql_command``.

A line of the documented CSV shape with a bad field (a timestamp that is no date, a connection id
that is no number, an unknown operation) is a dead letter naming the field.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from access_audit.core.errors import ParseError
from access_audit.core.events import (
    EARLIEST_PLAUSIBLE,
    AccessEvent,
    EventInfo,
    Host,
    Outcome,
    Resource,
    Service,
    User,
)
from access_audit.core.records import RawRecord
from access_audit.parse.base import JsonParser, decode_json, register
from access_audit.parse.ecs import Fields, endpoint

MARIADB_OPERATIONS = frozenset({"CONNECT", "FAILED_CONNECT", "DISCONNECT", "CHANGEUSER", "PROXY_CONNECT", "QUERY",
                                "QUERY_DDL", "QUERY_DML", "QUERY_DCL", "QUERY_DML_NO_SELECT", "READ", "WRITE",
                                "CREATE", "ALTER", "RENAME", "DROP"})
_TABLE_OPS = {"READ": "access", "WRITE": "change", "CREATE": "creation", "ALTER": "change", "RENAME": "change",
              "DROP": "deletion"}
_CSV_HEAD = re.compile(r"^(?P<ts>[^,]*),(?P<server>[^,]*),(?P<user>[^,]*),(?P<host>[^,]*),(?P<conn>[^,]*),"
                       r"(?P<query>[^,]*),(?P<op>[A-Z_]+),(?P<db>[^,]*),(?P<rest>.*)$", re.S)
_SNIFF = re.compile(r"^\d{8} \d{2}:\d{2}:\d{2},[^,]*,[^,]*,[^,]*,\d+,\d+,[A-Z_]+,")
MYSQL_CLASSES = frozenset({"audit", "connection", "general", "table_access", "query", "command", "message",
                           "parse", "global_variable"})


def sql_type(statement: str | None) -> str:
    """ECS event.type from the first word of a SQL statement."""
    verb = (statement or "").lstrip(" (\t\n'").split(None, 1)[0].upper() if (statement or "").strip(" ('") else ""
    if verb in ("SELECT", "SHOW", "DESCRIBE", "DESC", "EXPLAIN", "WITH", "READ"):
        return "access"
    if verb in ("INSERT", "CREATE", "GRANT", "REPLACE", "LOAD"):
        return "creation"
    if verb in ("DELETE", "DROP", "TRUNCATE", "REVOKE"):
        return "deletion"
    if verb in ("UPDATE", "ALTER", "RENAME", "SET"):
        return "change"
    return "info"


def _conn_event(action: str, ok: bool, user: str | None, code: str | None, end: bool = False) -> EventInfo:
    return EventInfo(kind="event", category=["authentication", "session"] if not end else ["session"],
                     type=["end"] if end else ["start"], action=action,
                     outcome=Outcome.success if ok else Outcome.failure, reason=None if ok else code,
                     provider="mysql")


@register
class MySqlAuditParser(JsonParser):
    """MariaDB server_audit CSV lines and MySQL Enterprise Audit JSON records (documented formats only)."""

    name = "mysql.audit"
    aliases = ("mariadb.audit", "mysql.server_audit", "mysql.enterprise_audit")
    description = "MariaDB server_audit CSV and MySQL Enterprise Audit JSON records (built from vendor docs)"
    json = False  # both shapes: JSON objects (parse_obj) and CSV lines (parse)

    def sniff(self, data: bytes) -> bool:
        return _SNIFF.match(data[:256].decode("utf-8", errors="replace")) is not None

    def parse(self, record: RawRecord) -> list[AccessEvent]:
        text = record.data.decode("utf-8", errors="replace").rstrip("\r\n")
        if text.lstrip().startswith("{"):
            return self.parse_obj(decode_json(record.data), record)
        m = _CSV_HEAD.match(text)
        if m is None:
            raise ParseError("missing field", "expected 10 comma-separated fields: timestamp,serverhost,username,"
                             "host,connectionid,queryid,operation,database,object,retcode", parser=self.name)
        try:
            ts = datetime.strptime(m["ts"], "%Y%m%d %H:%M:%S").replace(tzinfo=UTC)
        except ValueError:
            raise ParseError("invalid timestamp", f"timestamp={m['ts']!r}: expected YYYYMMDD HH:MM:SS",
                             parser=self.name) from None
        if ts < EARLIEST_PLAUSIBLE:
            raise ParseError("implausible timestamp", f"timestamp={m['ts']!r} is before {EARLIEST_PLAUSIBLE.year}",
                             parser=self.name)
        for key in ("conn", "query"):
            if not m[key].isdigit():
                name = "connectionid" if key == "conn" else "queryid"
                raise ParseError("invalid field", f"{name}={m[key]!r}: expected a number", parser=self.name)
        op = m["op"]
        if op not in MARIADB_OPERATIONS:
            raise ParseError("invalid field", f"operation={op!r}: not a server_audit operation", parser=self.name)
        obj, sep, retcode = m["rest"].rpartition(",")
        if not sep:
            raise ParseError("missing field", "retcode: the line ends before the retcode field", parser=self.name)
        retcode = retcode.strip()
        if retcode and not retcode.lstrip("-").isdigit():
            raise ParseError("invalid field", f"retcode={retcode!r}: expected a number", parser=self.name)
        user, db = m["user"] or None, m["db"] or None
        labels = {"mysql_connection_id": m["conn"], "mysql_query_id": m["query"]}
        if db:
            labels["db_name"] = db
        if retcode:
            labels["mysql_error_code"] = retcode
        ok = retcode in ("", "0")
        ev = AccessEvent(timestamp=ts, user=User(name=user) if user else None, labels=labels,
                         host=Host(name=m["server"]) if m["server"] else None,
                         service=Service(name="mariadb", type="database"))
        if m["host"]:
            ev.source = endpoint(m["host"])
        if op in ("CONNECT", "FAILED_CONNECT", "CHANGEUSER", "PROXY_CONNECT"):
            ev.event = _conn_event(op, ok and op != "FAILED_CONNECT", user, retcode)
            if db:
                ev.resource = Resource(type="database", name=db)
        elif op == "DISCONNECT":
            ev.event = _conn_event(op, True, user, None, end=True)
        elif op in _TABLE_OPS:
            if not obj:
                raise ParseError("missing field", f"object: a {op} table event names no table", parser=self.name)
            ev.event = EventInfo(kind="event", category=["database"], type=[_TABLE_OPS[op]], action=op,
                                 outcome=Outcome.success, provider="mysql")
            ev.resource = Resource(type="table", name=f"{db}.{obj}" if db else obj)
        else:  # QUERY*
            stmt = obj
            if len(stmt) >= 2 and stmt[0] == "'" and stmt[-1] == "'":
                stmt = stmt[1:-1].replace("\\'", "'")
            ev.event = EventInfo(kind="event", category=["database"], type=[sql_type(stmt)], action=op,
                                 outcome=Outcome.success if ok else Outcome.failure, reason=None if ok else retcode,
                                 provider="mysql")
            if stmt:
                labels["mysql_statement"] = stmt
                ev.message = stmt
            if db:
                ev.resource = Resource(type="database", name=db)
        return [ev]

    def sniff_obj(self, obj: dict[str, Any]) -> bool:
        return (isinstance(obj.get("class"), str) and obj["class"] in MYSQL_CLASSES and "connection_id" in obj
                and "timestamp" in obj and "event" in obj)

    def parse_obj(self, obj: dict[str, Any], record: RawRecord) -> list[AccessEvent]:
        f = Fields(obj, self.name)
        cls, event = f.text("class"), f.text("event")
        if cls is None:
            raise ParseError("missing field", "class is absent", parser=self.name)
        if event is None:
            raise ParseError("missing field", "event is absent", parser=self.name)
        ts = f.time("timestamp")
        conn = f.label("connection_id")
        labels = {k: v for k, v in (("mysql_connection_id", conn), ("mysql_class", cls)) if v is not None}
        user = f.text("account.user") or f.text("login.user")
        ev = AccessEvent(timestamp=ts, user=User(name=user) if user else None, labels=labels,
                         service=Service(name="mysql", type="database"))
        ip = f.text("login.ip") or f.text("account.host")
        if ip:
            ev.source = endpoint(ip)
        if cls == "connection":
            data = f.obj_at("connection_data")
            status = data.number("status") if data is not None else None
            code = str(int(status)) if status is not None else None
            if code is not None:
                labels["mysql_error_code"] = code
            db = data.text("db") if data is not None else None
            if db:
                labels["db_name"] = db
                ev.resource = Resource(type="database", name=db)
            end = event == "disconnect"
            if not end and status is None:
                raise ParseError("missing field", "connection_data.status is absent", parser=self.name)
            ev.event = _conn_event(event, end or status == 0, user, code, end=end)
        elif cls == "table_access":
            data = f.obj_at("table_access_data")
            if data is None or data.text("table") is None:
                raise ParseError("missing field", "table_access_data.table is absent", parser=self.name)
            db, table = data.text("db"), data.text("table")
            if db:
                labels["db_name"] = db
            if (q := data.text("query")) is not None:
                labels["mysql_statement"] = q
                ev.message = q
            if (cmd := data.text("sql_command")) is not None:
                labels["mysql_sql_command"] = cmd
            etype = {"read": "access", "insert": "creation", "update": "change", "delete": "deletion"}.get(
                event, "info")
            ev.event = EventInfo(kind="event", category=["database"], type=[etype], action=event,
                                 outcome=Outcome.success, provider="mysql")
            ev.resource = Resource(type="table", name=f"{db}.{table}" if db else table)
        elif cls in ("general", "query"):
            data = f.obj_at(f"{cls}_data")
            q = data.text("query") if data is not None else None
            status = data.number("status") if data is not None else None
            if q is not None:
                labels["mysql_statement"] = q
                ev.message = q
            if data is not None and (cmd := data.text("sql_command")) is not None:
                labels["mysql_sql_command"] = cmd
            ok = status is None or status == 0
            if status is not None and status != 0:
                labels["mysql_error_code"] = str(int(status))
            ev.event = EventInfo(kind="event", category=["database"], type=[sql_type(q)], action=event,
                                 outcome=Outcome.success if ok else Outcome.failure,
                                 reason=None if ok else labels.get("mysql_error_code"), provider="mysql")
        else:
            ev.event = EventInfo(kind="event", category=["host"] if cls == "audit" else ["database"], type=["info"],
                                 action=event, provider="mysql")
        return [ev]
