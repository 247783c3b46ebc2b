"""PostgreSQL pgAudit records: who ran which statement on which database object.

pgAudit writes one record per audited statement (``SESSION``) or per object a statement touched
under ``pgaudit.role`` (``OBJECT``):

    AUDIT: <AUDIT_TYPE>,<STATEMENT_ID>,<SUBSTATEMENT_ID>,<CLASS>,<COMMAND>,<OBJECT_TYPE>,<OBJECT_NAME>,
           <STATEMENT>,<PARAMETER>[,<ROWS>]          (one line; wrapped here)

Two shapes of the same record are read (auto-detected by content, or ``--log-type postgresql.pgaudit``):

* **server log** lines: ``<log_line_prefix>LOG:  AUDIT: ...``. The prefix is read by pattern, not
  by a configured ``log_line_prefix``: a leading timestamp (``%m`` / ``%t`` / ``%n``, with a numeric
  offset or one of the common zone names UTC, GMT, CET, CEST, EST, EDT...), ``[pid]`` (``%p``),
  ``user@db`` (``%u@%d``, also with ``%q`` before it) or ``user=,db=,app=,client=`` (the form the
  PostgreSQL docs suggest), and ``host=``/``client=`` (``%h``/``%r``). A prefix without a timestamp,
  or with a zone that is not an offset nor a known name, is a dead letter naming ``timestamp``.
* **client (psql) output**, where ``pgaudit.log_client = on`` sends the record to the session as a
  notice: ``NOTICE:  AUDIT: ...`` / ``WARNING:  AUDIT: ...`` (what pgAudit's regression test shows,
  ../shared/datasets/pgaudit_regress). These carry no time, user or database. They get the
  registry clock's time at parsing (``labels.pgaudit_time_source = received``; a server-log record
  has ``logged``), like a syslog line gets the year of the clock: the order of the records is kept
  by their origin (file:line), their time is only when we read them.

The same server log's ``connection authorized: user=U database=D`` (``log_connections``) and
``FATAL:  password authentication failed for user "U"`` lines are read too (``event.action``
``connection_authorized`` / ``authentication_failed``, category authentication), so a superuser's
login is seen even when pgAudit logs nothing for it. Other server-log lines are not this type.

Mapping: ``event.action`` = COMMAND (``SELECT``, ``INSERT``, ``CREATE TABLE``...); ``event.category``
database (plus iam for class ROLE); ``event.type`` access for READ, else from the command's verb
(INSERT creation, DELETE/DROP deletion, UPDATE/ALTER change, MISC/FUNCTION info); ``event.outcome``
success (pgAudit logs statements that ran); ``user.name`` = ``%u``; ``resource.type`` = OBJECT_TYPE
in lower case (table, view, function...), ``resource.name`` = OBJECT_NAME (``public.account``);
a SESSION record with no object names the database as the resource (type database) when the
prefix gives one; ``resource.records`` = ROWS (``pgaudit.log_rows``); ``message`` and
``labels.pgaudit_statement`` = STATEMENT unless it is ``<not logged>`` / ``<previously logged>``;
labels ``pgaudit_audit_type``, ``pgaudit_class``, ``pgaudit_statement_id``, ``pgaudit_substatement_id``,
``pgaudit_parameter`` (when logged), ``db_name``, ``db_application``; ``process.pid`` = ``%p``;
``service`` = postgresql / database; ``source`` = ``%h`` / ``%r``.

Multi-line statements: STATEMENT is CSV-quoted and may span lines. A record whose data holds the
whole statement (newlines included; a shipper that joins PostgreSQL's tab-indented continuation
lines, or the test) parses whole. A single line whose quote is not closed (a line reader split the
record) still becomes its event, with the statement up to the line end and
``labels.pgaudit_statement_truncated = true``; the continuation lines that follow are not records of
any type and become dead letters (``unrecognised format``), never silently dropped.

Real samples: ``pgaudit_regress/pgaudit.out`` holds 415 records (386 NOTICE, 29 WARNING). Grouped
into whole records, 415 of 415 parse, 184 with a ROWS field; read line by line, the 415 record
lines parse, 179 of them marked truncated (tests/parse/test_pgaudit.py asserts these counts).
Never seen in a real record: the server-log prefix (no
real server log under a permissive licence exists in the datasets: the tests build the prefix on
the real payloads and say so), the ``connection authorized`` and ``password authentication failed``
lines (built from the PostgreSQL documentation's wording), ``client=``/``host=`` prefixes.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

from access_audit.core.errors import ParseError
from access_audit.core.events import (
    EARLIEST_PLAUSIBLE,
    AccessEvent,
    EventInfo,
    Outcome,
    Process,
    Resource,
    Service,
    User,
)
from access_audit.core.records import RawRecord
from access_audit.parse.base import Parser, register
from access_audit.parse.ecs import endpoint

AUDIT_TYPES = frozenset({"SESSION", "OBJECT"})
CLASSES = frozenset({"READ", "WRITE", "FUNCTION", "ROLE", "DDL", "MISC", "MISC_SET"})
PLACEHOLDERS = frozenset({"<not logged>", "<previously logged>", "<none>"})

# Severity as the server log or psql writes it, then the pgAudit marker. Two spaces after the colon.
_AUDIT = re.compile(r"(?:^|(?<=\s))(?P<sev>LOG|NOTICE|WARNING|INFO|DEBUG[1-5]?):  AUDIT: ")
_CONN = re.compile(r"(?:^|(?<=\s))LOG:  connection authorized: user=(?P<user>\S+)(?: database=(?P<db>\S+))?")
_AUTH_FAIL = re.compile(r"(?:^|(?<=\s))FATAL:  password authentication failed for user \"(?P<user>[^\"]*)\"")
_TS = re.compile(r"^(?P<ts>\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:\.\d+)?)"
                 r"(?: ?(?P<tz>[A-Za-z]{1,5}|[+-]\d{2}(?::?\d{2})?))?(?=\s|$|\]|:)")
_EPOCH = re.compile(r"^(?P<epoch>\d{9,10}\.\d{3})(?=\s)")  # %n
_PID = re.compile(r"\[(?P<pid>\d+)\]")
_USER_AT_DB = re.compile(r"(?:^|\s)(?P<user>[^\s@\[\]=,]+)@(?P<db>[^\s@\[\]=,:]+)(?=[\s:]|$)")
_KV = re.compile(r"(?:^|[\s,])(?P<k>user|db|app|client|host)=(?P<v>[^\s,]*)")
# Common zone names a %t/%m prefix prints (log_timezone); anything else is not guessed.
_ZONES = {"UTC": 0, "GMT": 0, "Z": 0, "WET": 0, "WEST": 1, "BST": 1, "CET": 1, "CEST": 2, "MET": 1, "MEST": 2,
          "EET": 2, "EEST": 3, "MSK": 3, "EST": -5, "EDT": -4, "CST": -6, "CDT": -5, "MST": -7, "MDT": -6,
          "PST": -8, "PDT": -7, "AKST": -9, "AKDT": -8, "HST": -10, "JST": 9, "KST": 9, "AEST": 10, "AEDT": 11,
          "NZST": 12, "NZDT": 13}


def split_csv(text: str) -> tuple[list[str], bool]:
    """Split pgAudit's CSV (``"`` quoting, ``""`` for a quote inside). Returns the fields and
    whether every quote was closed (False: the record was cut inside a quoted field)."""
    fields: list[str] = []
    buf: list[str] = []
    i, n = 0, len(text)
    quoted = False
    while i < n:
        c = text[i]
        if quoted:
            if c == '"':
                if i + 1 < n and text[i + 1] == '"':
                    buf.append('"')
                    i += 2
                    continue
                quoted = False
            else:
                buf.append(c)
        elif c == '"' and not buf:
            quoted = True
        elif c == ",":
            fields.append("".join(buf))
            buf = []
        else:
            buf.append(c)
        i += 1
    fields.append("".join(buf))
    return fields, not quoted


def _event_type(cls: str, command: str) -> str:
    verb = command.split(" ", 1)[0].upper()
    if cls == "READ" or verb in ("SELECT", "COPY", "FETCH"):
        return "access"
    if verb in ("INSERT", "CREATE", "GRANT"):
        return "creation"
    if verb in ("DELETE", "DROP", "TRUNCATE", "REVOKE"):
        return "deletion"
    if cls in ("MISC", "MISC_SET", "FUNCTION"):
        return "info"
    return "change"


@register
class PgAuditParser(Parser):
    """pgAudit records in the PostgreSQL server log or in psql output (NOTICE/WARNING)."""

    name = "postgresql.pgaudit"
    aliases = ("pgaudit", "postgresql")
    description = "PostgreSQL pgAudit records (server log LOG:  AUDIT: lines, or psql NOTICE output)"

    def sniff(self, data: bytes) -> bool:
        if b"AUDIT: " in data:
            return _AUDIT.search(data[:4096].decode("utf-8", errors="replace")) is not None
        if b"connection authorized: " in data or b"password authentication failed" in data:
            head = data[:4096].decode("utf-8", errors="replace")
            return bool(_CONN.search(head) or _AUTH_FAIL.search(head))
        return False

    def parse(self, record: RawRecord) -> list[AccessEvent]:
        text = record.data.decode("utf-8", errors="replace").rstrip("\r\n")
        m = _AUDIT.search(text)
        if m is None:
            return [self._login(text)]
        prefix = text[:m.start()]
        ev = self._prefixed(prefix)
        payload = text[m.end():]
        fields, closed = split_csv(payload)
        if len(fields) < 8:
            names = ("audit_type", "statement_id", "substatement_id", "class", "command", "object_type",
                     "object_name", "statement")
            raise ParseError("missing field", f"{names[len(fields)]}: the AUDIT record has {len(fields)} of the "
                             "at least 8 comma-separated fields", parser=self.name)
        audit_type, sid, subid, cls, command, otype, oname, statement = (f.strip() if i < 7 else f
                                                                        for i, f in enumerate(fields[:8]))
        if audit_type not in AUDIT_TYPES:
            raise ParseError("invalid field", f"audit_type={audit_type!r}: expected SESSION or OBJECT",
                             parser=self.name)
        for key, v in (("statement_id", sid), ("substatement_id", subid)):
            if not v.isdigit():
                raise ParseError("invalid field", f"{key}={v!r}: expected a number", parser=self.name)
        if cls not in CLASSES:
            raise ParseError("invalid field", f"class={cls!r}: expected one of {', '.join(sorted(CLASSES))}",
                             parser=self.name)
        if not command:
            raise ParseError("missing field", "command is empty", parser=self.name)
        labels = ev.labels
        labels.update(pgaudit_audit_type=audit_type, pgaudit_class=cls, pgaudit_statement_id=sid,
                      pgaudit_substatement_id=subid)
        if not closed:
            labels["pgaudit_statement_truncated"] = "true"
        rest = fields[8:]
        if rest and (param := rest[0]) and param not in PLACEHOLDERS:
            labels["pgaudit_parameter"] = param
        rows: int | None = None
        if len(rest) >= 2 and rest[1].strip():
            r = rest[1].strip()
            if not r.isdigit():
                raise ParseError("invalid field", f"rows={r!r}: expected a number", parser=self.name)
            rows = int(r)
        ev.event = EventInfo(kind="event", category=["database", "iam"] if cls == "ROLE" else ["database"],
                             type=[_event_type(cls, command)], action=command, outcome=Outcome.success,
                             provider="pgaudit")
        if statement and statement not in PLACEHOLDERS:
            labels["pgaudit_statement"] = statement
            ev.message = statement
        db = labels.get("db_name")
        if oname:
            ev.resource = Resource(type=otype.lower() or None, name=oname, id=f"{db}.{oname}" if db else None)
        elif db:
            ev.resource = Resource(type="database", name=db)
        if rows is not None:
            ev.resource = ev.resource or Resource()
            ev.resource.records = rows
        return [ev]

    def _prefixed(self, prefix: str) -> AccessEvent:
        """An event with the time, pid, user and database of a log_line_prefix (or none: psql output)."""
        p = prefix.strip()
        labels: dict[str, str] = {}
        if not p:
            labels["pgaudit_time_source"] = "received"
            ev = AccessEvent(timestamp=self._now(), labels=labels,
                             service=Service(name="postgresql", type="database"))
            return ev
        ev = AccessEvent(timestamp=self._time(p), labels=labels, service=Service(name="postgresql", type="database"))
        labels["pgaudit_time_source"] = "logged"
        if (m := _PID.search(p)) is not None:
            ev.process = Process(name="postgres", pid=int(m["pid"]))
        user = db = client = None
        for kv in _KV.finditer(p):
            k, v = kv["k"], kv["v"]
            if not v or (v in ("[unknown]", "[local]") and k != "client"):
                continue
            if k == "user":
                user = v
            elif k == "db":
                db = v
            elif k == "app":
                labels["db_application"] = v
            else:
                client = v
        if user is None and (m := _USER_AT_DB.search(p)) is not None:
            user, db = m["user"], m["db"]
        if user and user != "[unknown]":
            ev.user = User(name=user)
        if db and db != "[unknown]":
            labels["db_name"] = db
        if client and client not in ("[local]", "[unknown]"):
            host = re.sub(r"\(\d+\)$", "", client)  # %r: host(port)
            ev.source = endpoint(host)
        return ev

    def _time(self, p: str) -> datetime:
        ts = self._prefix_time(p)
        if ts < EARLIEST_PLAUSIBLE:
            raise ParseError("implausible timestamp", f"timestamp {ts.isoformat()} is before {EARLIEST_PLAUSIBLE.year}",
                             parser=self.name)
        return ts

    def _prefix_time(self, p: str) -> datetime:
        if (e := _EPOCH.match(p)) is not None:
            return datetime.fromtimestamp(float(e["epoch"]), tz=UTC)
        m = _TS.match(p)
        if m is None:
            raise ParseError("missing timestamp", "timestamp: the log_line_prefix does not start with %m, %t or %n",
                             parser=self.name)
        try:
            ts = datetime.fromisoformat(m["ts"].replace(" ", "T"))
        except ValueError as e:
            raise ParseError("invalid timestamp", f"timestamp={m['ts']!r}: {e}", parser=self.name) from None
        tz = m["tz"]
        if tz is None:
            raise ParseError("invalid timestamp", f"timestamp={m['ts']!r} has no time zone", parser=self.name)
        if tz[0] in "+-":
            digits = tz[1:].replace(":", "")
            off = timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
            return ts.replace(tzinfo=timezone(off if tz[0] == "+" else -off))
        hours = _ZONES.get(tz.upper())
        if hours is None:
            raise ParseError("invalid timestamp", f"timestamp: time zone {tz!r} is not an offset nor a known "
                             "zone name (set log_timezone = 'UTC')", parser=self.name)
        return ts.replace(tzinfo=timezone(timedelta(hours=hours)))

    def _login(self, text: str) -> AccessEvent:
        m = _CONN.search(text)
        if m is not None:
            ev = self._prefixed(text[:m.start()])
            ev.event = EventInfo(kind="event", category=["authentication", "database"], type=["start"],
                                 action="connection_authorized", outcome=Outcome.success, provider="postgresql")
            ev.user = User(name=m["user"])
            if m["db"]:
                ev.labels["db_name"] = m["db"]
                ev.resource = Resource(type="database", name=m["db"])
            return ev
        m = _AUTH_FAIL.search(text)
        if m is None:
            raise ParseError("not a pgaudit record", "no 'AUDIT: ' record, connection or authentication line",
                             parser=self.name)
        ev = self._prefixed(text[:m.start()])
        if not m["user"]:
            raise ParseError("missing field", "user: the authentication failure names no user", parser=self.name)
        ev.event = EventInfo(kind="event", category=["authentication", "database"], type=["start"],
                             action="authentication_failed", outcome=Outcome.failure, reason="password",
                             provider="postgresql")
        ev.user = User(name=m["user"])
        if (db := ev.labels.get("db_name")) is not None:
            ev.resource = Resource(type="database", name=db)
        return ev

    def _now(self) -> datetime:
        clock = getattr(self, "clock", None)
        return clock.now() if clock else datetime.now(UTC)
