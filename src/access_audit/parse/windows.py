"""Windows Security event log: logon, logoff, explicit-credential, special-privilege and object
access events (log type ``windows.security``).

Read as one JSON object per event, with the ``EventData`` fields flattened to top-level keys, in
the three shapes the datasets hold:

* NXLog ``im_msvistalog`` through Logstash (OTRF 2019-2020): ``EventID``, ``Channel``,
  ``Hostname``, ``@timestamp`` (UTC), ``EventTime`` (collector local time, no zone: not read);
* the flatter export of OTRF 2021-2023: ``TimeCreated``, ``Hostname``, ``ProviderGuid``;
* Microsoft Sentinel / Log Analytics ``SecurityEvent`` rows (msticpy, OTRF GoldenSAML):
  ``TimeGenerated``, ``Computer``, ``LogonType`` as a number, ``Activity``; some rows carry no
  ``Channel`` (msticpy's query dropped it).

Event ids and their mapping (after Elastic's Windows integration, ``event.code`` = the id):

=====  ======================  ==========================  ===========  =========
id     event.action            event.category              event.type   outcome
=====  ======================  ==========================  ===========  =========
4624   logged-in               authentication              start        success
4625   logon-failed            authentication              start        failure
4634   logged-out              authentication              end          success
4647   logged-out              authentication              end          success
4648   logged-in-explicit      authentication              start        success
4672   logged-in-special       iam                         admin        success
4662   object-operation        file (directory object)     access       success
4663   object-access-attempt   file                        access       success
=====  ======================  ==========================  ===========  =========

``event.code`` has no field in our model: it is ``labels.winlog_event_id``. Other fields:

* ``@timestamp`` = ``@timestamp``, else ``TimeCreated``, ``TimeGenerated``, ``TimeCreatedUtc``,
  ``UtcTime``.
* ``user``: ``TargetUserName`` / ``TargetDomainName`` / ``TargetUserSid`` (4624, 4625, 4634,
  4647); the ``Subject*`` fields when the event has no target account (4672, 4662, 4663) or the
  subject is the actor (4648: the ``Target*`` account, whose credentials were used, is
  ``user.target``). The NULL SID ``S-1-0-0`` and ``-`` are not an identity and are left out.
* ``source.ip`` = ``IpAddress`` (``-`` and empty are absent; the loopback ``::1`` / ``127.0.0.1``
  **is kept**: it says the logon came from the machine itself, which rules may want to tell
  apart from a remote one); ``source.port`` = ``IpPort`` when not 0; ``source.domain`` =
  ``WorkstationName`` (not ``-``).
* ``host.name`` = ``Computer``, else ``Hostname``.
* ``process.name`` = the base name of ``ProcessName``; ``process.pid`` = ``ProcessId`` (hex).
* ``resource``: for logons the host logged on to (type host); 4648: ``TargetServerName``
  (type host); 4662 / 4663: ``ObjectName`` (id and name), type from ``ObjectType`` (File ->
  file, Key -> registry_key, else its value in lower case; Sentinel's ``%{guid}`` directory
  object types -> ds_object), ``owner`` = ``ObjectServer``.
* ``authentication.method`` = ``AuthenticationPackageName`` (lower case: ntlm, kerberos,
  negotiate).
* ``event.reason`` (4625) = the meaning of ``SubStatus``, else ``Status`` (table below),
  else the status code.
* ``message`` = the first line of ``Message``, else ``Activity``.
* labels ``winlog_event_id``, ``winlog_channel``, ``winlog_logon_type`` (the name, as Elastic's
  ``winlog.logon.type``: Interactive, Network, Service...), ``winlog_logon_type_code``,
  ``winlog_logon_id`` (``TargetLogonId``, else ``SubjectLogonId``), ``winlog_logon_process``
  (trimmed: Windows pads it), ``winlog_status``, ``winlog_sub_status``, ``winlog_access_mask``,
  ``winlog_record_id``, ``winlog_privileges`` (4672).

A record of the Security log (``Channel: Security``, the Security-Auditing provider, or a
``SecurityEvent`` row) with another event id (4688, AD FS 412...) is a dead letter ``no
events`` naming its ``EventID``: a known type, not an access event; never silently dropped.

**Never seen in a real record** (no sample exists in the datasets): event id 4663 and its
``ObjectType: File`` / ``Key`` values (the only object events seen are Sentinel 4662 directory
reads), ``PrivilegeList`` in the Sentinel shape, ``EventRecordID`` (NXLog writes ``RecordNumber``), most of the
``STATUS`` table (seen: 0xc000006d, 0xc000006a, 0xc000010b, 0xc000015b).
"""

from __future__ import annotations

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
    User,
    UserTarget,
)
from access_audit.core.records import RawRecord
from access_audit.parse.base import JsonParser, register
from access_audit.parse.ecs import Fields, code_number, endpoint

PROVIDER = "Microsoft-Windows-Security-Auditing"

# id -> (action, category, type, outcome)
EVENTS: dict[int, tuple[str, str, str, Outcome]] = {
    4624: ("logged-in", "authentication", "start", Outcome.success),
    4625: ("logon-failed", "authentication", "start", Outcome.failure),
    4634: ("logged-out", "authentication", "end", Outcome.success),
    4647: ("logged-out", "authentication", "end", Outcome.success),
    4648: ("logged-in-explicit", "authentication", "start", Outcome.success),
    4672: ("logged-in-special", "iam", "admin", Outcome.success),
    4662: ("object-operation", "file", "access", Outcome.success),
    4663: ("object-access-attempt", "file", "access", Outcome.success),
}
LOGON_TYPES = {0: "System", 2: "Interactive", 3: "Network", 4: "Batch", 5: "Service", 7: "Unlock",
               8: "NetworkCleartext", 9: "NewCredentials", 10: "RemoteInteractive", 11: "CachedInteractive",
               12: "CachedRemoteInteractive", 13: "CachedUnlock"}
# NTSTATUS codes of failed logons (Microsoft's 4625 documentation).
STATUS = {
    "0xc000005e": "no logon servers available",
    "0xc0000064": "user name does not exist",
    "0xc000006a": "wrong password",
    "0xc000006d": "bad user name or password",
    "0xc000006e": "account restriction",
    "0xc000006f": "outside of the permitted logon hours",
    "0xc0000070": "workstation restriction",
    "0xc0000071": "password expired",
    "0xc0000072": "account disabled",
    "0xc000010b": "logon process failure",
    "0xc000015b": "logon type not granted",
    "0xc0000193": "account expired",
    "0xc0000224": "password must change",
    "0xc0000234": "account locked out",
}
_TIME_KEYS = ("@timestamp", "TimeCreated", "TimeGenerated", "TimeCreatedUtc", "UtcTime")
_NOT_AN_ID = frozenset({"", "-", "S-1-0-0"})
_USER_FIELDS = ("TargetUserName", "SubjectUserName")
_SECURITY_NAMES = frozenset({"security", PROVIDER.lower(), "securityevent"})


def event_code(obj: dict[str, Any]) -> int | None:
    """The ``EventID`` as an int (exports write a number or a string), None when absent/other."""
    return code_number(Fields._lookup(obj, "EventID"))


def is_security_log(obj: dict[str, Any]) -> bool:
    """A record of the Windows Security log, by its channel, provider or Sentinel table."""
    for key in ("Channel", "SourceName", "EventSourceName", "ProviderName", "Type"):
        v = Fields._lookup(obj, key)
        if isinstance(v, str) and v.lower() in _SECURITY_NAMES:  # 2019 NXLog writes "security"
            return True
    return False


@register
class WindowsSecurityParser(JsonParser):
    """Windows Security log logon / logoff / privilege / object-access events, one per JSON object."""

    name = "windows.security"
    aliases = ("windows", "winlog.security", "securityevent")
    description = "Windows Security event log (logons, logoffs, explicit credentials, object access)"

    def sniff_obj(self, obj: dict[str, Any]) -> bool:
        if is_security_log(obj) and Fields._lookup(obj, "EventID") is not None:
            return True  # also with a broken EventID: its dead letter then names the field
        code = event_code(obj)
        if code is None:
            return False
        # Sentinel rows whose query dropped Channel: a logon id with its account fields.
        return code in EVENTS and any(Fields._lookup(obj, k) is not None for k in _USER_FIELDS)

    def parse_obj(self, obj: dict[str, Any], record: RawRecord) -> list[AccessEvent]:
        f = Fields(obj, self.name)
        code = event_code(obj)
        if code is None:
            raw = f.raw("EventID")
            if raw is None:
                raise ParseError("missing field", "EventID is absent", parser=self.name)
            raise ParseError("wrong field type", f"EventID={raw!r} is not an event number", parser=self.name)
        if code not in EVENTS:
            raise ParseError("no events", f"EventID={code} is a Windows Security event but not an access event "
                             f"(parsed: {', '.join(map(str, EVENTS))})", parser=self.name)
        ts = f.time(*_TIME_KEYS)
        action, category, etype, outcome = EVENTS[code]
        labels: dict[str, str] = {"winlog_event_id": str(code)}
        for key, label in (("Channel", "winlog_channel"), ("Status", "winlog_status"),
                           ("SubStatus", "winlog_sub_status"), ("AccessMask", "winlog_access_mask"),
                           ("RecordNumber", "winlog_record_id"), ("EventRecordID", "winlog_record_id"),
                           ("TargetLogonId", "winlog_logon_id"), ("SubjectLogonId", "winlog_logon_id"),
                           ("PrivilegeList", "winlog_privileges")):
            if label not in labels and (v := _value(f, key)) is not None:
                labels[label] = v.strip()
        if (proc := _value(f, "LogonProcessName")) is not None and proc.strip():
            labels["winlog_logon_process"] = proc.strip()
        if (lt := _value(f, "LogonType")) is not None:
            if not lt.isdigit():
                raise ParseError("wrong field type", f"LogonType={lt!r} is not a number", parser=self.name)
            labels["winlog_logon_type_code"] = lt
            labels["winlog_logon_type"] = LOGON_TYPES.get(int(lt), lt)

        reason = None
        if code == 4625:
            sub = (labels.get("winlog_sub_status") or "").lower()
            status = (labels.get("winlog_status") or "").lower()
            reason = STATUS.get(sub) or STATUS.get(status) or (status or None)

        host_name = f.text("Computer") or f.text("Hostname")
        ev = AccessEvent(
            timestamp=ts,
            event=EventInfo(kind="event", category=[category], type=[etype], action=action, outcome=outcome,
                            reason=reason, provider=PROVIDER),
            host=Host(name=host_name) if host_name else None,
            labels=labels,
            message=_message(f),
        )
        ev.user = _user(f, code)
        ev.source = _source(f)
        if (pname := _value(f, "ProcessName")) is not None and pname != "-":
            ev.process = Process(name=pname.replace("/", "\\").rsplit("\\", 1)[-1] or None, pid=_pid(f))
        if (pkg := _value(f, "AuthenticationPackageName")) is not None and pkg != "-":
            ev.authentication = Authentication(method=pkg.strip().lower())
        ev.resource = self._resource(f, code, host_name)
        return [ev]

    def _resource(self, f: Fields, code: int, host_name: str | None) -> Resource | None:
        if code in (4662, 4663):
            obj_name = _value(f, "ObjectName")
            if obj_name is None or obj_name == "-":
                raise ParseError("missing field", f"ObjectName is absent (EventID {code} is an object access)",
                                 parser=self.name)
            otype = _value(f, "ObjectType") or ""
            rtype = ("ds_object" if otype.startswith("%{") else
                     {"file": "file", "key": "registry_key"}.get(otype.lower(), otype.lower() or "object"))
            return Resource(type=rtype, id=obj_name, name=obj_name, owner=_value(f, "ObjectServer"))
        if code == 4648 and (server := _value(f, "TargetServerName")) not in (None, "-"):
            return Resource(type="host", id=server, name=server)
        return Resource(type="host", id=host_name, name=host_name) if host_name else None


def _value(f: Fields, key: str) -> str | None:
    """A scalar field as text (Sentinel writes numbers, NXLog strings); ``None`` when absent/empty."""
    v = f.raw(key)
    if v is None or v == "":
        return None
    if isinstance(v, bool) or not isinstance(v, (str, int)):
        raise f.wrong(key, v, "string")
    return str(v)


def _account(f: Fields, prefix: str) -> tuple[str | None, str | None, str | None]:
    name = _value(f, f"{prefix}UserName")
    domain = _value(f, f"{prefix}DomainName")
    sid = _value(f, f"{prefix}UserSid")
    return (None if name in _NOT_AN_ID else name, None if domain in _NOT_AN_ID else domain,
            None if sid in _NOT_AN_ID else sid)


def _user(f: Fields, code: int) -> User | None:
    target = _account(f, "Target")
    subject = _account(f, "Subject")
    if code == 4648:
        name, domain, sid = subject
        tname, _, tsid = target
        tgt = UserTarget(name=tname, id=tsid) if (tname or tsid) else None
        if not (name or sid or tgt):
            return None
        return User(name=name, domain=domain, id=sid, target=tgt)
    name, domain, sid = target if any(target) else subject
    return User(name=name, domain=domain, id=sid) if (name or sid) else None


def _source(f: Fields) -> Endpoint | None:
    ip = _value(f, "IpAddress")
    src = endpoint(ip) if ip and ip != "-" else None
    if src is not None and (port := _value(f, "IpPort")) is not None:
        if not port.isdigit():
            raise ParseError("wrong field type", f"IpPort={port!r} is not a number", parser=f.parser)
        if 0 < int(port) < 65536:
            src.port = int(port)
    ws = _value(f, "WorkstationName")
    if ws and ws != "-":
        src = src or Endpoint()
        src.domain = ws
    return src


def _pid(f: Fields) -> int | None:
    v = _value(f, "ProcessId")
    if v is None:
        return None
    try:
        n = int(v, 16) if v.lower().startswith("0x") else int(v)
    except ValueError:
        raise ParseError("wrong field type", f"ProcessId={v!r} is not a number", parser=f.parser) from None
    return n if 0 <= n < 1 << 32 else None


def _message(f: Fields) -> str | None:
    msg = f.text("Message")
    if msg:
        return msg.split("\n", 1)[0].strip() or None
    return f.text("Activity")
