"""Linux auditd ``audit.log`` records (log type ``linux.auditd``), raw and ENRICHED.

A record is ``[node=<host> ]type=<TYPE> msg=audit(<epoch>.<ms>:<serial>): key=value ...``;
user-space records carry their own fields in ``msg='op=... acct="..." exe=... addr=... res=...'``.
With ``log_format = ENRICHED`` the record is followed by byte 0x1D and the interpreted fields in
upper case (``UID="root" AUID="unset"``, ``ARCH=x86_64 SYSCALL=execve``). Untrusted strings that
auditd hex-encodes (``exe``, ``comm``, ``cmd``, ``proctitle``, ``name``, ``cwd``, ``acct``,
``data``, ``key`` and the ``EXECVE`` arguments ``a0``...) are decoded.

Joining records of one event. The kernel writes one event as several records with the same
serial (SYSCALL + EXECVE + CWD + PATH... + PROCTITLE [+ EOE]). They become ONE AccessEvent. The
design, and why:

* The join happens where the lines are read (``join_lines``, used by ``ingest.files.LineReader``
  for auto-detected and ``linux.auditd`` input): records of one (node, serial) are gathered into
  one RawRecord whose data is their lines joined by LF (its origin is the first line's). The
  registry then parses that record as usual, so ids stay deterministic (they hash the joined
  bytes) and a batch never holds half an event: the bus carries whole events and a commit after
  a batch never acknowledges a record whose event has not been emitted. A join inside the
  parser would have to hold records across batches, i.e. past the source's commit, and lose
  them on a crash.
* ``join_lines`` keeps up to ``JOIN_WINDOW`` serials open, so records of concurrent events that
  interleave (as in go-libaudit's ``test3.log``) are still joined. A group is emitted when its
  ``EOE`` record arrives, when it is the oldest of more than ``JOIN_WINDOW`` open groups, when a
  line that is not an audit record arrives, and at the end of each input: nothing is held back
  at the end. Groups are emitted in the order of their first record.
* The parser accepts a record of several lines (LF-separated) and groups them by serial itself,
  so a record of lines of several serials gives one event per serial, and a single line (a
  Kafka producer that ships one line per message) parses alone. A serial split across inputs
  (or arriving more than ``JOIN_WINDOW`` serials late) becomes two events: documented, not lost.

Mapping (ECS on the left):

* ``@timestamp`` = the ``audit(...)`` time; ``host.name`` = ``node``.
* ``event.action``: user-space records: the record type in lower case (``user_login``,
  ``user_cmd``, ``add_user``...); syscall events: the syscall name (``ARCH``/``SYSCALL`` of the
  enriched form, else the x86-64/i386/aarch64 number table below), else ``syscall-<n>``.
  ``labels.auditd_key`` = the audit rule key (several keys are joined by a comma); rules written
  for an audit key should test it.
* ``event.category``: USER_LOGIN/AUTH/ACCT/LOGOUT/ERR, CRED_*, LOGIN -> authentication (USER_START/END:
  session); ADD/DEL_USER/GROUP, USER_MGMT, GRP_MGMT, USER_CHAUTHTOK, ROLE_* -> iam; USER_CMD and
  execve -> process; other syscalls with a PATH -> file; CONFIG_CHANGE, DAEMON_*, SERVICE_* -> configuration.
* ``event.outcome`` = ``res`` (success/yes/1 -> success, failed/no/0 -> failure), else SYSCALL ``success``.
* ``user.name``: ``acct`` (the account logged in to, authenticated, sudo'ed...); for account
  management the actor is the login user (``AUID`` name of the enriched form) and ``acct``/``id``
  is ``user.target``; otherwise the enriched ``AUID``/``UID`` name. ``user.id`` = ``auid`` when set
  (not 4294967295), else ``uid`` unless the record names an ``acct`` (then none: the uid is the
  reporting daemon's, not the account's).
* ``source.ip`` = ``addr``, ``source.domain`` = ``hostname`` (``?`` is absent).
* ``process.name`` = ``comm``, else the base name of ``exe``; ``process.pid`` = ``pid``.
* ``resource``: syscall events: the first PATH ``name`` with nametype NORMAL/CREATE/DELETE
  that is not the dynamic loader (type file; absolute with ``cwd`` when relative); USER_CMD: the
  command (type command); logins: the host (``node``) when known.
* ``message``: the command line (EXECVE arguments, else PROCTITLE, else ``cmd``), else ``op``.
* labels ``auditd_<x>``: type (primary record), types (all, comma-separated), serial, key, exe,
  cwd, syscall, uid, auid, euid, ses, ppid, terminal, tty, op, command.

Sigma reads the vendor record: ``sigma_fields`` gives the fields of every record of the event,
each name with the list of its values over the records (``type`` lists every record type), so a
rule's ``type: EXECVE`` + ``a0: wget`` matches the joined event; fields of different records of
one serial can therefore combine in one selection (documented in detect/sigma.py).

Bad input: a line that looks like an audit record but whose header ``msg=audit(<time>:<serial>)``
is missing or broken (go-libaudit's ``UNKNOWN[1329] msg=?``), a SYSCALL without ``syscall``,
a user-space record of the listed types without ``res``, and numeric fields (``pid``, ``uid``...)
that are not numbers are dead letters naming the field.

Samples (asserted in tests/parse/test_auditd.py; lines -> events after joining, one per serial):

* otrf_linux_auditd ``sh_arp_cache``: 12 lines -> 2 events (execve of arp, grep); ``sh_binary_padding_dd``:
  6 lines -> 1 event.
* go_libaudit_testdata: ``audit-rhel7.log`` 50 lines -> 47 records -> 46 events + 1 dead letter
  (``UNKNOWN[1329] msg=?``, naming the header); ``audit-rhel6.log`` 2 -> 2; ``audit-ubuntu14.log``
  1 -> 1; ``audit-ubuntu16.log`` 3 -> 3; ``audit-ubuntu17.log`` 1 -> 1; ``test3.log`` 17 -> 10
  (7 interleaved SYSCALL/PROCTITLE pairs joined); ``reassembler_normal.log`` 17 -> 5.
* msticpy ``auditd_log.txt``: 1,708 lines -> 938 events, no dead letter.
* plaso ``audit_enriched.log``: 29 lines -> 12 events (LOGIN + SYSCALL + PROCTITLE of serial 447 are one).

Never seen in a real record: ``node=`` prefixes (the samples have none; the form follows the
auditd man page), ``EOE`` records, several audit keys separated by 0x01 in a real key (only in
go-libaudit's ``audit-ubuntu17.log``, hex-encoded), DEL_USER with success.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

from access_audit.core.errors import ParseError
from access_audit.core.events import (
    AccessEvent,
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
from access_audit.parse.base import Parser, register

NAME = "linux.auditd"
ALIASES = ("auditd", "linux.audit")
JOIN_WINDOW = 8
UNSET_ID = "4294967295"

_SNIFF = re.compile(rb"^(?:node=\S+ )?type=[A-Z_0-9\[\]]+ msg=")
_HEADER = re.compile(r"^(?:node=(?P<node>\S+) )?type=(?P<type>\S+) "
                     r"msg=audit\((?P<sec>\d+)\.(?P<ms>\d+):(?P<serial>\d+)\):?\s?")
_HEADER_START = re.compile(r"^(?:node=(?P<node>\S+) )?type=(?P<type>\S+)")
_TOKEN = re.compile(r"""([A-Za-z_][\w\-\[\]]*)=("[^"]*"?|'[^']*'?|\S*)""")
_HEX = re.compile(r"^(?:[0-9A-Fa-f]{2})+$")
_ARG = re.compile(r"^a\d+(?:\[\d+\])?$")
_ENCODED = frozenset({"exe", "comm", "cmd", "proctitle", "name", "cwd", "acct", "data", "key", "path", "old", "new"})
_NUMERIC = ("pid", "ppid", "uid", "auid", "euid", "ses")

# Records that only add detail to the event of their serial; the others say what happened.
_AUX = frozenset({"SYSCALL", "EXECVE", "PATH", "CWD", "PROCTITLE", "SOCKADDR", "EOE", "BPRM_FCAPS", "MMAP",
                  "FD_PAIR", "OBJ_PID", "CAPSET", "SOCKETCALL", "IPC", "MQ_OPEN", "MQ_SENDRECV", "KERN_MODULE",
                  "SECCOMP"})
_NEEDS_RES = frozenset({"USER_LOGIN", "USER_AUTH", "USER_ACCT", "USER_CMD", "USER_START", "USER_END", "CRED_ACQ",
                        "CRED_DISP", "CRED_REFR", "ADD_USER", "DEL_USER"})
_AUTH = frozenset({"USER_LOGIN", "USER_AUTH", "USER_ACCT", "USER_LOGOUT", "USER_ERR", "CRED_ACQ", "CRED_DISP",
                   "CRED_REFR", "LOGIN", "USER_START", "USER_END", "ANOM_LOGIN_FAILURES"})
_IAM = frozenset({"ADD_USER", "DEL_USER", "ADD_GROUP", "DEL_GROUP", "USER_MGMT", "GRP_MGMT", "USER_CHAUTHTOK",
                  "GRP_CHAUTHTOK", "ROLE_ASSIGN", "ROLE_REMOVE", "ROLE_MODIFY", "ACCT_LOCK", "ACCT_UNLOCK"})
_CONFIG_PREFIX = ("CONFIG_CHANGE", "DAEMON_", "SERVICE_", "USYS_CONFIG", "NETFILTER_CFG", "SYSTEM_")
_LOADER = re.compile(r"/ld-linux[^/]*\.so[^/]*$|/ld-[^/]*\.so[^/]*$")

# Syscall names by arch for the numbers rules and readers care about (the enriched SYSCALL= wins).
_X86_64 = {0: "read", 1: "write", 2: "open", 3: "close", 4: "stat", 9: "mmap", 13: "rt_sigaction",
           14: "rt_sigprocmask", 23: "select", 41: "socket", 42: "connect", 43: "accept", 44: "sendto",
           45: "recvfrom", 49: "bind", 50: "listen", 56: "clone", 57: "fork", 58: "vfork", 59: "execve",
           62: "kill", 76: "truncate", 77: "ftruncate", 82: "rename", 83: "mkdir", 84: "rmdir", 85: "creat",
           86: "link", 87: "unlink", 88: "symlink", 90: "chmod", 91: "fchmod", 92: "chown", 93: "fchown",
           94: "lchown", 99: "sysinfo", 101: "ptrace", 103: "syslog", 105: "setuid", 106: "setgid",
           113: "setreuid", 117: "setresuid", 133: "mknod", 135: "personality", 157: "prctl", 161: "chroot",
           165: "mount", 166: "umount2", 170: "sethostname", 175: "init_module", 176: "delete_module",
           228: "clock_gettime", 231: "exit_group", 257: "openat", 259: "mknodat", 260: "fchownat",
           263: "unlinkat", 264: "renameat", 265: "linkat", 266: "symlinkat", 268: "fchmodat", 272: "unshare",
           288: "accept4", 308: "setns", 313: "finit_module", 316: "renameat2", 319: "memfd_create",
           322: "execveat", 437: "openat2"}
_I386 = {3: "read", 4: "write", 5: "open", 6: "close", 11: "execve", 37: "kill", 102: "socketcall",
         132: "getpgid", 136: "personality", 14: "mknod", 116: "sysinfo", 103: "syslog", 358: "execveat"}
_AARCH64 = {56: "openat", 63: "read", 64: "write", 129: "kill", 179: "sysinfo", 116: "syslog",
            221: "execve", 281: "execveat", 279: "memfd_create", 92: "personality", 33: "mknodat"}
_ARCHES = {"c000003e": ("x86_64", _X86_64), "40000003": ("i386", _I386), "c00000b7": ("aarch64", _AARCH64)}


class AuditRecord:
    """One audit.log line: type, time, serial, node and its fields (values decoded)."""

    __slots__ = ("fields", "interpreted", "line", "node", "serial", "time", "type")

    def __init__(self, line: str) -> None:
        self.line = line
        raw, _, enriched = line.partition("\x1d")
        m = _HEADER.match(raw)
        if m is None:
            start = _HEADER_START.match(raw)
            if start is None:
                raise ParseError("not an audit record", "expected 'type=<TYPE> msg=audit(<time>:<serial>):'",
                                 parser=NAME)
            raise ParseError("missing field", f"type={start['type']}: the header msg=audit(<time>:<serial>) "
                             "is absent or broken", parser=NAME)
        self.type = m["type"]
        self.node = m["node"]
        self.serial = m["serial"]
        try:
            self.time = datetime.fromtimestamp(int(m["sec"]) + int(m["ms"].ljust(3, "0")[:3]) / 1000, tz=UTC)
        except (OverflowError, OSError, ValueError):
            raise ParseError("invalid timestamp", f"msg=audit({m['sec']}.{m['ms']}) is out of range",
                             parser=NAME) from None
        self.fields = _fields(raw[m.end():], self.type)
        if self.type == "EXECVE":
            _join_long_args(self.fields)
        self.interpreted = _fields(enriched, "") if enriched else {}

    def get(self, name: str) -> str | None:
        v = self.fields.get(name)
        return None if v in (None, "", "?", "(null)", "(none)") else v


def _unquote(v: str) -> tuple[str, bool]:
    if len(v) >= 1 and v[0] in "\"'":
        return v[1:-1] if len(v) >= 2 and v[-1] == v[0] else v[1:], True
    if v.endswith('"'):  # go-libaudit's ubuntu17 sample: key=<hex>" (a stray quote after hex)
        return v[:-1], False
    return v, False


def _decode_hex(v: str, name: str) -> str:
    text = bytes.fromhex(v).decode("utf-8", errors="replace")
    if name == "proctitle":
        return text.rstrip("\x00").replace("\x00", " ")
    if name == "key":
        return ",".join(k for k in text.split("\x01") if k)
    return text


def _fields(body: str, rtype: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for m in _TOKEN.finditer(body):
        name, value = m[1], m[2]
        if name == "msg" and value.startswith("'"):
            inner, _ = _unquote(value)
            for k, v in _fields(inner, rtype).items():
                out.setdefault(k, v)
            continue
        text, quoted = _unquote(value)
        if (not quoted and text and _HEX.match(text)
                and (name in _ENCODED or (rtype == "EXECVE" and _ARG.match(name)))):
            text = _decode_hex(text, name)
        out.setdefault(name, text)
    return out


_PIECE = re.compile(r"^(a\d+)\[(\d+)\]$")


def _join_long_args(fields: dict[str, str]) -> None:
    """A long EXECVE argument comes as ``aN_len=... aN[0]=... aN[1]=...``: join it into ``aN``."""
    pieces: dict[str, list[tuple[int, str]]] = {}
    for k, v in fields.items():
        if (m := _PIECE.match(k)) is not None:
            pieces.setdefault(m[1], []).append((int(m[2]), v))
    for arg, parts in pieces.items():
        fields.setdefault(arg, "".join(v for _, v in sorted(parts)))


def _int(rec: AuditRecord, name: str) -> int | None:
    v = rec.get(name)
    if v is None:
        return None
    try:
        return int(v)
    except ValueError:
        raise ParseError("invalid field", f"type={rec.type} {name}={v!r} is not a number", parser=NAME) from None


def split_lines(data: bytes) -> list[str]:
    """The lines of a record (LF only: 0x1D, the ENRICHED separator, is not a line break)."""
    text = data.decode("utf-8", errors="replace")
    return [ln.rstrip("\r") for ln in text.split("\n") if ln.strip()]


def group_records(data: bytes) -> list[list[AuditRecord]]:
    """The records of a raw record, grouped by (node, serial) in order of first appearance."""
    groups: OrderedDict[tuple[str | None, str], list[AuditRecord]] = OrderedDict()
    for line in split_lines(data):
        rec = AuditRecord(line)
        groups.setdefault((rec.node, rec.serial), []).append(rec)
    if not groups:
        raise ParseError("empty record", "no audit record in it", parser=NAME)
    return list(groups.values())


def syscall_name(rec: AuditRecord) -> str | None:
    """The syscall's name: ENRICHED ``SYSCALL=``, else by arch and number."""
    name = rec.interpreted.get("SYSCALL")
    if name:
        return name
    num = rec.get("syscall")
    arch = _ARCHES.get((rec.get("arch") or "").lower())
    if num is None or arch is None or not num.isdigit():
        return None
    return arch[1].get(int(num))


def sigma_fields(data: bytes | str) -> dict[str, list[str]]:
    """The fields of every record of an event for Sigma: name -> values over the records.

    ``type`` lists the record types; the ENRICHED interpreted fields come under their upper-case
    names (``SYSCALL``, ``UID``...), and ``SYSCALL`` is filled from the number table when the
    record is not enriched. Lines that are not audit records are ignored.
    """
    raw = data.encode() if isinstance(data, str) else data
    recs = []
    for line in split_lines(raw):
        try:
            recs.append(AuditRecord(line))
        except ParseError:
            continue
    return record_fields(recs)


def record_fields(recs: list[AuditRecord]) -> dict[str, list[str]]:
    """``sigma_fields`` of records already parsed."""
    out: dict[str, list[str]] = {}
    for rec in recs:
        out.setdefault("type", []).append(rec.type)
        if rec.node:
            out.setdefault("node", []).append(rec.node)
        for k, v in rec.fields.items():
            out.setdefault(k, []).append(v)
        for k, v in rec.interpreted.items():
            out.setdefault(k, []).append(v)
        if rec.type == "SYSCALL" and "SYSCALL" not in rec.interpreted and (name := syscall_name(rec)):
            out.setdefault("SYSCALL", []).append(name)
    return out


def _outcome(value: str | None) -> Outcome | None:
    if value is None:
        return None
    v = value.lower()
    if v in ("success", "yes", "1"):
        return Outcome.success
    if v in ("failed", "failure", "no", "0"):
        return Outcome.failure
    return None


def _is_ip(v: str | None) -> bool:
    if not v:
        return False
    import ipaddress

    try:
        ipaddress.ip_address(v)
    except ValueError:
        return False
    return True


def _command(recs: list[AuditRecord]) -> str | None:
    for r in recs:
        if r.type == "EXECVE":
            args = sorted(((int(k[1:]), v) for k, v in r.fields.items() if re.fullmatch(r"a\d+", k)))
            if args:
                return " ".join(v for _, v in args)
    for r in recs:
        if r.type == "PROCTITLE" and (t := r.get("proctitle")):
            return t
    return None


def _file(recs: list[AuditRecord]) -> str | None:
    cwd = next((r.get("cwd") for r in recs if r.type == "CWD" and r.get("cwd")), None)
    for r in recs:
        if r.type != "PATH":
            continue
        name = r.get("name")
        nt = (r.get("nametype") or r.get("objtype") or "NORMAL").upper()
        if not name or nt not in ("NORMAL", "CREATE", "DELETE") or _LOADER.search(name):
            continue
        if not name.startswith("/") and cwd:
            name = cwd.rstrip("/") + "/" + name
        return name
    return None


def build_event(recs: list[AuditRecord]) -> AccessEvent:
    """One AccessEvent from the records of one serial."""
    types = [r.type for r in recs]
    primary = next((r for r in recs if r.type not in _AUX), None)
    syscall = next((r for r in recs if r.type == "SYSCALL"), None)
    main = primary or syscall or recs[0]
    rtype = main.type
    for r in recs:
        if r.type == "SYSCALL" and r.get("syscall") is None:
            raise ParseError("missing field", f"type=SYSCALL msg=audit(...:{r.serial}): syscall is absent",
                             parser=NAME)
        if r.type in _NEEDS_RES and r.get("res") is None:
            raise ParseError("missing field", f"type={r.type} msg=audit(...:{r.serial}): res is absent",
                             parser=NAME)
    proc_rec = main if (main.get("pid") or main.get("exe")) else (syscall or main)

    def first(name: str) -> str | None:
        for r in (main, *(x for x in recs if x is not main)):
            v = r.get(name)
            if v is not None:
                return v
        return None

    def interpreted(name: str) -> str | None:
        for r in (main, *(x for x in recs if x is not main)):
            v = r.interpreted.get(name)
            if v not in (None, "", "unset", "?"):
                return v
        return None

    nums = {n: _int(r, n) for r in reversed(recs) for n in _NUMERIC if r.get(n) is not None}
    auid = main.get("auid") or (syscall.get("auid") if syscall else None)
    uid = main.get("uid") or (syscall.get("uid") if syscall else None)
    acct = main.get("acct")
    if acct == "(invalid user)":
        acct = None
    # the login user; else the process's uid, unless the record names another account (an sshd
    # running as root that reports a failed login to "admin" says nothing about admin's uid)
    user_id = auid if auid not in (None, UNSET_ID, "-1") else (None if main.get("acct") else uid)
    labels: dict[str, str] = {"auditd_type": rtype, "auditd_types": ",".join(dict.fromkeys(types)),
                              "auditd_serial": main.serial}

    category: list[str] = []
    etype: list[str] = []
    action = rtype.lower()
    resource: Resource | None = None
    sc_name = syscall_name(syscall) if syscall else None
    if primary is None and syscall is not None:
        action = sc_name or f"syscall-{syscall.get('syscall')}"
        labels["auditd_syscall"] = action
        path = _file(recs)
        if sc_name in ("execve", "execveat"):
            category, etype = ["process"], ["start"]
        elif path:
            category, etype = ["file"], ["access"]
        if path:
            resource = Resource(type="file", name=path, id=path)
    elif rtype in _AUTH:
        category = ["authentication"]
        etype = {"USER_START": ["start"], "USER_END": ["end"], "USER_LOGOUT": ["end"]}.get(rtype, ["info"])
        if rtype in ("USER_START", "USER_END"):
            category = ["authentication", "session"]
    elif rtype in _IAM:
        category = ["iam"]
        etype = ["user", "creation" if rtype.startswith("ADD") else "deletion" if rtype.startswith("DEL")
                 else "change"]
        if "GROUP" in rtype or rtype.startswith("GRP"):
            etype[0] = "group"
    elif rtype == "USER_CMD":
        category, etype = ["process"], ["start"]
        if (cmd := main.get("cmd")) is not None:
            resource = Resource(type="command", name=cmd)
    elif rtype.startswith(_CONFIG_PREFIX):
        category, etype = ["configuration"], ["change"]
    elif primary is None:  # only detail records (a PATH or EXECVE alone)
        path = _file(recs)
        if path:
            category, etype = ["file"], ["access"]
            resource = Resource(type="file", name=path, id=path)
        elif "EXECVE" in types:
            category, etype = ["process"], ["start"]
        if rtype == "EOE" and len(recs) == 1:
            raise ParseError("no events", f"msg=audit(...:{main.serial}): an EOE record alone (the end marker "
                             "of an event whose records came separately)", parser=NAME)

    # who: for account management the actor is the login user and acct/id the account managed
    actor_name = interpreted("AUID") or interpreted("UID")
    target: UserTarget | None = None
    if rtype in _IAM:
        tname = acct or None
        tid = main.get("id")
        if tname or tid:
            target = UserTarget(name=tname, id=tid)
        name = actor_name
    else:
        name = acct or actor_name
    user = User(name=name, id=user_id, target=target) if (name or user_id or target) else None

    addr = main.get("addr")
    host_name = main.get("hostname")
    source: Endpoint | None = None
    if _is_ip(addr) or (host_name and host_name != addr):
        source = Endpoint(ip=addr if _is_ip(addr) else None,
                          domain=host_name if host_name and host_name != addr and not _is_ip(host_name) else None)
        if source.ip is None and source.domain is None:
            source = None
    elif host_name and _is_ip(host_name):
        source = Endpoint(ip=host_name)

    exe = proc_rec.get("exe") or first("exe")
    comm = proc_rec.get("comm") or first("comm")
    pname = comm or (exe.rsplit("/", 1)[-1] if exe else None)
    pid = _int(proc_rec, "pid") if proc_rec.get("pid") else nums.get("pid")
    process = Process(name=pname, pid=pid) if (pname or pid is not None) else None

    outcome = _outcome(main.get("res")) or (_outcome(syscall.get("success")) if syscall else None)
    command = _command(recs) or main.get("cmd")
    message = command or (main.get("op") and f"{rtype} op={main.get('op')}") or None

    key = next((r.get("key") for r in recs if r.get("key")), None)
    extra = {"auditd_key": key, "auditd_exe": exe, "auditd_cwd": first("cwd"), "auditd_command": command,
             "auditd_uid": uid, "auditd_auid": auid, "auditd_euid": first("euid"), "auditd_ses": first("ses"),
             "auditd_ppid": first("ppid"), "auditd_terminal": first("terminal"), "auditd_tty": first("tty"),
             "auditd_op": main.get("op")}
    labels.update({k: v for k, v in extra.items() if v is not None})

    node = next((r.node for r in recs if r.node), None)
    if resource is None and rtype in ("USER_LOGIN", "USER_AUTH", "USER_ACCT", "LOGIN") and node:
        resource = Resource(type="host", name=node)
    return AccessEvent(
        timestamp=main.time,
        event=EventInfo(action=action, category=category, type=etype, outcome=outcome, module="auditd",
                        provider="auditd"),
        user=user, source=source, host=Host(name=node) if node else None, process=process,
        resource=resource, labels=labels, message=message)


@register
class AuditdParser(Parser):
    """Linux auditd audit.log records; one event per serial (see the module docstring)."""

    name = NAME
    aliases = ALIASES
    description = "Linux auditd audit.log (raw or ENRICHED), records of one serial joined into one event"

    def sniff(self, data: bytes) -> bool:
        return bool(_SNIFF.match(data[:256]))

    def parse(self, record: RawRecord) -> list[AccessEvent]:
        out = []
        for g in group_records(record.data):
            ev = build_event(g)
            # what Sigma reads (detect/sigma.py), without parsing the lines again
            ev.raw_obj = record_fields(g)  # type: ignore[misc]
            out.append(ev)
        return out


def _line_key(line: bytes) -> tuple[bytes | None, bytes, bool] | None:
    """(node, serial, is EOE) of an audit line, or None when it is not one with a readable header."""
    m = _KEY.match(line)
    if m is None:
        return None
    return m[1], m[3], m[2] == b"EOE"


_KEY = re.compile(rb"^(?:node=(\S+) )?type=(\S+) msg=audit\(\d+\.\d+:(\d+)\)")


def join_lines(lines: Iterable[tuple[int, bytes]], window: int = JOIN_WINDOW) -> Iterator[tuple[int, bytes]]:
    """Join the audit records of one (node, serial) into one record (see the module docstring).

    ``lines`` are (line number, bytes) pairs; yields (number of the first line, bytes) with the
    lines of one serial joined by LF. Lines that are not audit records pass through unchanged, in
    order (pending groups are emitted before them). Nothing is held back at the end.
    """
    pending: OrderedDict[tuple[bytes | None, bytes], tuple[int, list[bytes], list[bool]]] = OrderedDict()

    def drain(all_: bool) -> Iterator[tuple[int, bytes]]:
        while pending:
            key, (n, group, closed) = next(iter(pending.items()))
            if not (all_ or closed[0] or len(pending) > window):
                return
            del pending[key]
            yield n, b"\n".join(group)

    try:
        for n, line in lines:
            k = _line_key(line)
            if k is None:
                yield from drain(True)
                yield n, line
                continue
            key = (k[0], k[1])
            got = pending.get(key)
            if got is None:
                pending[key] = got = (n, [], [False])
            got[1].append(line)
            if k[2]:
                got[2][0] = True
            yield from drain(False)
    except Exception:
        yield from drain(True)  # a read error (truncated .gz): what was read is still emitted
        raise
    yield from drain(True)

