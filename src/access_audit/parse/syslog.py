"""Syslog lines from auth.log / secure / messages: OpenSSH, PAM, su, sudo.

BSD syslog timestamps (``Dec 10 06:55:46``) carry no year. We infer it per source: the year of
the first line is the record's explicit ``year`` (``--year``) or else the latest year that does
not put the line in the future; after that a month that goes backwards (Dec -> Jan) means the
year rolled over. ISO timestamps (RFC 5424, rsyslog's high-precision format) carry their year.

Every well-formed syslog line becomes an event: the messages that matter for access (logins,
failures, invalid users, sessions, su/sudo) get a specific ``event.action``; other messages keep
the program name and text as a generic ``syslog`` event, so the audit trail stays whole.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import UTC, datetime
from typing import Any

from access_audit.core.errors import ParseError
from access_audit.core.events import (
    AccessEvent,
    Authentication,
    Endpoint,
    EventInfo,
    Host,
    Outcome,
    Process,
    Resource,
    Service,
    User,
)
from access_audit.core.records import RawRecord
from access_audit.parse.base import Parser, register

_MONTHS = {m: i for i, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), start=1)}

_BSD = re.compile(
    r"^(?P<mon>[A-Z][a-z]{2}) {1,2}(?P<day>\d{1,2}) (?P<time>\d{2}:\d{2}:\d{2}) "
    r"(?P<host>\S+) +(?P<prog>[^:\[]*?[^\s:\[](?:\([^)]*\))?)(?:\[(?P<pid>\d+)\])?: ?(?P<msg>.*)$", re.S)
_ISO = re.compile(
    r"^(?:<\d{1,3}>1 )?(?P<ts>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?) "
    r"(?P<host>\S+) (?P<prog>[^\s:\[]+(?:\([^)]*\))?)(?:\[(?P<pid>\d+)\])?: ?(?P<msg>.*)$", re.S)

_IP = r"(?P<ip>[0-9a-fA-F:.]+)"
_PORT = r"(?: port (?P<port>\d+))?"

# (action, category, type, outcome, regex). First match wins; order matters.
_SSHD: list[tuple[str, str, str, Outcome, re.Pattern[str]]] = [
    ("ssh_login", "authentication", "start", Outcome.success, re.compile(
        rf"^Accepted (?P<method>\S+) for (?P<user>.*?) from {_IP}{_PORT}(?: ssh2)?(?:: .*)?$")),
    ("ssh_login", "authentication", "start", Outcome.failure, re.compile(
        rf"^Failed (?P<method>\S+) for (?P<invalid>invalid user )?(?P<user>.*?) from {_IP}{_PORT}(?: ssh2)?$")),
    ("ssh_invalid_user", "authentication", "start", Outcome.failure, re.compile(
        rf"^Invalid user (?P<user>.*?) from {_IP}{_PORT}$")),
    ("ssh_invalid_user", "authentication", "start", Outcome.failure, re.compile(
        r"^input_userauth_request: invalid user (?P<user>.*?) \[preauth\]$")),
    ("ssh_too_many_failures", "authentication", "denied", Outcome.failure, re.compile(
        rf"^Disconnecting:? (?:authenticating user |invalid user )?(?:(?P<user2>\S+) {_IP} port (?P<port2>\d+): )?"
        r"Too many authentication failures(?: for (?:invalid user )?(?P<user>.*?))?(?: \[preauth\])?$")),
    ("ssh_disconnect", "session", "end", Outcome.unknown, re.compile(
        rf"^(?:error: )?Received disconnect from {_IP}{_PORT}: ?(?P<code>\d+): (?P<reason>.*?)(?: \[preauth\])?$")),
    ("ssh_disconnect", "session", "end", Outcome.unknown, re.compile(
        rf"^Disconnected from (?:(?:invalid |authenticating )?user (?P<user>\S+) )?{_IP}{_PORT}(?: \[preauth\])?$")),
    ("ssh_connection_closed", "network", "end", Outcome.unknown, re.compile(
        rf"^Connection (?:closed|reset) by (?:(?:invalid |authenticating )?user (?P<user>\S+) )?{_IP}{_PORT}(?: \[preauth\])?$")),  # noqa: E501
    ("ssh_no_identification", "network", "connection", Outcome.failure, re.compile(
        rf"^Did not receive identification string from {_IP}{_PORT}$")),
    ("ssh_connection", "network", "connection", Outcome.unknown, re.compile(
        rf"^Connection from {_IP} port (?P<port>\d+)(?: on \S+ port \d+)?(?: rdomain \S*)?$")),
    ("ssh_reverse_mapping_failed", "network", "info", Outcome.unknown, re.compile(
        rf"^(?:reverse mapping checking getaddrinfo for|Address \S+ maps to) (?P<domain>\S+?),? \[?{_IP}?\]? ?.*POSSIBLE BREAK-IN ATTEMPT!$")),  # noqa: E501
    ("ssh_write_failed", "network", "end", Outcome.failure, re.compile(
        r"^fatal: (?P<reason>Write failed: .*?)(?: \[preauth\])?$")),
    ("ssh_postponed", "authentication", "info", Outcome.unknown, re.compile(
        rf"^Postponed (?P<method>\S+) for (?P<user>\S+) from {_IP}{_PORT}(?: ssh2)?(?: \[preauth\])?$")),
]

_PAM_AUTH_FAIL = re.compile(
    r"^(?:pam_unix\((?P<svc>[^:)]+):auth\): )?authentication failure; logname=(?P<logname>\S*) uid=(?P<uid>\d*) "
    r"euid=\d* tty=(?P<tty>\S*) ruser=(?P<ruser>\S*) rhost=(?P<rhost>\S*)(?:\s+user=(?P<user>\S+))?\s*$")
_PAM_MORE_FAIL = re.compile(
    r"^PAM (?P<n>\d+) more authentication failures?; logname=\S* uid=\d* euid=\d* tty=\S* ruser=\S* "
    r"rhost=(?P<rhost>\S*)(?:\s+user=(?P<user>\S+))?\s*$")
_PAM_UNKNOWN = re.compile(r"^(?:pam_unix\([^)]*\): )?check pass; user unknown$")
_PAM_SESSION = re.compile(
    r"^(?:pam_unix\((?P<svc>[^:)]+):session\): )?session (?P<what>opened|closed) for user (?P<user>[^\s(]+)"
    r"(?:\(uid=\d+\))?(?: by (?P<by>\S*?)(?:\(uid=(?P<uid>\d+)\))?)?\s*$")
_PAM_MAXRETRIES = re.compile(r"^PAM service\((?P<svc>[^)]+)\) ignoring max retries; (?P<n>\d+) > \d+$")
_REPEATED = re.compile(r"^message repeated (?P<n>\d+) times: \[ ?(?P<inner>.*?)\]$")
_SUDO = re.compile(
    r"^\s*(?P<user>\S+) : (?:(?P<fail>.*?) ; )?TTY=(?P<tty>\S+) ; PWD=(?P<pwd>.*?) ; USER=(?P<target>\S+) ;"
    r"(?: COMMAND=(?P<cmd>.*))?$")
_ROOT_LOGIN = re.compile(r"^ROOT LOGIN (?:ON|on) (?P<tty>\S+)(?: FROM (?P<rhost>\S+))?$")
_LOGIN = re.compile(r"^(?:LOGIN ON (?P<tty>\S+) BY (?P<user>\S+)(?: FROM (?P<rhost>\S+))?)$")
_FTPD = re.compile(r"^connection from (?P<ip>[0-9.]+) \((?P<host>[^)]*)\)")
_SU = re.compile(r"^(?:\((?P<who>to \S+)\) (?P<user>\S+) on (?P<tty>\S+)|(?P<fail>FAILED SU) \(to (?P<target>\S+)\) (?P<user2>\S+) on (?P<tty2>\S+))$")  # noqa: E501


class _YearResolver:
    """Infers the year of BSD syslog lines, per source, with roll-over at New Year."""

    def __init__(self) -> None:
        self._last: dict[str, tuple[int, int]] = {}  # source -> (year, month)

    def year_for(self, source: str, month: int, day: int, explicit: int | None, now: datetime) -> int:
        last = self._last.get(source)
        if last is None:
            if explicit is not None:
                year = explicit
            else:
                year = now.year
                # A line dated after today (beyond a day of clock skew) belongs to last year.
                if (month, day) > (now.month, now.day + 1):
                    year -= 1
        else:
            year = last[0] + (1 if month < last[1] and last[1] - month >= 6 else 0)
        self._last[source] = (year, month)
        return year


@register
class SyslogParser(Parser):
    """OpenSSH, PAM, su and sudo lines from auth.log, secure and messages (BSD or ISO timestamps)."""

    name = "syslog"
    aliases = ("sshd", "auth.log", "secure", "pam")
    description = "auth.log / secure / messages syslog lines (OpenSSH, PAM, su, sudo)"

    def __init__(self) -> None:
        self._years = _YearResolver()

    def sniff(self, data: bytes) -> bool:
        s = data[:64].decode("ascii", errors="replace")
        return bool(re.match(r"^([A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d |(<\d+>1 )?\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)", s))

    def parse(self, record: RawRecord) -> list[AccessEvent]:
        line = record.data.decode("utf-8", errors="replace").rstrip("\r\n")
        m = _BSD.match(line)
        if m:
            mon = _MONTHS.get(m["mon"])
            if mon is None:
                raise ParseError("invalid syslog timestamp", f"unknown month {m['mon']!r}", parser=self.name)
            day = int(m["day"])
            now = self.clock_now()
            year = self._years.year_for(record.source, mon, day, record.year, now)
            try:
                hh, mm, ss = (int(x) for x in m["time"].split(":"))
                ts = datetime(year, mon, day, hh, mm, ss, tzinfo=UTC)
            except ValueError as e:
                raise ParseError("invalid syslog timestamp", str(e), parser=self.name) from None
        else:
            m = _ISO.match(line)
            if not m:
                raise ParseError("not a syslog line", "expected 'Mon dd hh:mm:ss host program[pid]: message'",
                                 parser=self.name)
            try:
                ts = datetime.fromisoformat(m["ts"].replace("Z", "+00:00"))
            except ValueError as e:
                raise ParseError("invalid syslog timestamp", str(e), parser=self.name) from None
            if ts.tzinfo is None:
                ts = ts.replace(tzinfo=UTC)
        prog_full = m["prog"]
        prog = prog_full.split("(", 1)[0]
        pid = int(m["pid"]) if m["pid"] else None
        msg = m["msg"].rstrip()
        ev = AccessEvent(
            timestamp=ts,
            host=Host(name=m["host"]),
            process=Process(name=prog_full, pid=pid),
            service=Service(name=prog, type="system"),
            message=msg,
        )
        self._classify(ev, prog, prog_full, msg)
        return [ev]

    def clock_now(self) -> datetime:
        clock = getattr(self, "clock", None)
        return clock.now() if clock else datetime.now(UTC)

    def _classify(self, ev: AccessEvent, prog: str, prog_full: str, msg: str) -> None:
        labels: dict[str, str] = {}
        rep = _REPEATED.match(msg)
        if rep:
            labels["repeated"] = rep["n"]
            msg = rep["inner"].strip()
        if prog == "sshd" and not prog_full.endswith("(pam_unix)") and self._sshd(ev, msg):
            ev.labels.update(labels)
            return
        if self._pam(ev, msg, prog):
            ev.labels.update(labels)
            return
        if prog == "sudo" and (s := _SUDO.match(msg)):
            ok = s["fail"] is None
            ev.event = EventInfo(kind="event", category=["process", "iam"], type=["start" if ok else "denied"],
                                 action="sudo", outcome=Outcome.success if ok else Outcome.failure,
                                 reason=s["fail"])
            ev.user = User(name=s["user"], target=_target(s["target"]))
            ev.resource = Resource(type="command", name=(s["cmd"] or "").strip() or None)
        elif prog == "su" and (s := _SU.match(msg)):
            ok = s["fail"] is None
            target = (s["who"] or "to ")[3:] if ok else s["target"]
            ev.event = EventInfo(kind="event", category=["authentication", "iam"], type=["start"], action="su",
                                 outcome=Outcome.success if ok else Outcome.failure)
            ev.user = User(name=s["user"] or s["user2"], target=_target(target))
        elif (s := _ROOT_LOGIN.match(msg)) or (s := _LOGIN.match(msg)):
            ev.event = EventInfo(kind="event", category=["authentication"], type=["start"], action="console_login",
                                 outcome=Outcome.success)
            ev.user = User(name=s.groupdict().get("user") or "root")
            ev.labels["tty"] = s["tty"]
            if s["rhost"]:
                ev.source = _endpoint(s["rhost"])
        elif prog == "ftpd" and (s := _FTPD.match(msg)):
            ev.event = EventInfo(kind="event", category=["network"], type=["connection"], action="ftp_connection")
            ev.source = Endpoint(ip=s["ip"], domain=s["host"] or None)
        else:
            ev.event = EventInfo(kind="event", category=["host"], type=["info"], action="syslog")
        ev.labels.update(labels)

    def _sshd(self, ev: AccessEvent, msg: str) -> bool:
        for action, category, etype, outcome, rx in _SSHD:
            s = rx.match(msg)
            if not s:
                continue
            g: dict[str, Any] = s.groupdict()
            user = g.get("user") or g.get("user2")
            ip = g.get("ip")
            port = g.get("port") or g.get("port2")
            reason = g.get("reason")
            if action == "ssh_invalid_user" or g.get("invalid"):
                reason = "invalid_user"
            ev.event = EventInfo(kind="event", category=[category], type=[etype], action=action,
                                 outcome=outcome, reason=reason)
            if user is not None:
                ev.user = User(name=user)
            if ip:
                ev.source = _endpoint(ip)
                ev.source.port = int(port) if port else None
                ev.source.domain = ev.source.domain or g.get("domain")
            if g.get("method"):
                ev.authentication = Authentication(method=g["method"])
            ev.resource = Resource(type="host", name=ev.host.name if ev.host else None)
            return True
        return False

    def _pam(self, ev: AccessEvent, msg: str, prog: str) -> bool:
        if s := _PAM_AUTH_FAIL.match(msg):
            ev.event = EventInfo(kind="event", category=["authentication"], type=["start"],
                                 action="pam_auth_failure", outcome=Outcome.failure)
            if s["user"]:
                ev.user = User(name=s["user"])
            if s["rhost"]:
                ev.source = _endpoint(s["rhost"])
        elif s := _PAM_MORE_FAIL.match(msg):
            ev.event = EventInfo(kind="event", category=["authentication"], type=["start"],
                                 action="pam_auth_failure", outcome=Outcome.failure)
            ev.labels["repeated"] = s["n"]
            if s["user"]:
                ev.user = User(name=s["user"])
            if s["rhost"]:
                ev.source = _endpoint(s["rhost"])
        elif _PAM_UNKNOWN.match(msg):
            ev.event = EventInfo(kind="event", category=["authentication"], type=["info"],
                                 action="pam_check_pass", outcome=Outcome.failure, reason="user_unknown")
        elif s := _PAM_SESSION.match(msg):
            opened = s["what"] == "opened"
            ev.event = EventInfo(kind="event", category=["session"], type=["start" if opened else "end"],
                                 action="session_opened" if opened else "session_closed",
                                 outcome=Outcome.success)
            ev.user = User(name=s["user"])
        elif s := _PAM_MAXRETRIES.match(msg):
            ev.event = EventInfo(kind="event", category=["authentication"], type=["info"],
                                 action="pam_max_retries", outcome=Outcome.failure)
            ev.labels["attempts"] = s["n"]
        else:
            return False
        if ev.resource is None and ev.host:
            ev.resource = Resource(type="host", name=ev.host.name)
        return True


def _target(name: str | None) -> Any:
    from access_audit.core.events import UserTarget

    return UserTarget(name=name) if name else None


def _endpoint(rhost: str) -> Endpoint:
    """An address only when it is one (``10.0.0.256`` is not); anything else stays in ``address``."""
    try:
        return Endpoint(ip=str(ipaddress.ip_address(rhost)), address=rhost)
    except ValueError:
        pass
    if re.fullmatch(r"[0-9.:]+", rhost):
        return Endpoint(address=rhost)
    return Endpoint(domain=rhost, address=rhost)
