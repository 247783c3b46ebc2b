"""Linux auditd (``linux.auditd``) on the real audit.log samples, and the join of one serial's records.

Counts per file (asserted below; "events" is checked against the number of distinct
``audit(<time>:<serial>)`` headers of the file, counted with a regex independent of the parser):

* otrf_linux_auditd: ``sh_arp_cache`` 12 lines -> 2 events; ``sh_binary_padding_dd`` 6 -> 1.
* go_libaudit_testdata: ``audit-rhel6`` 2 -> 2; ``audit-rhel7`` 50 lines -> 47 records -> 46 events
  + 1 dead letter (``type=UNKNOWN[1329] msg=?``, naming the header); ``audit-ubuntu14`` 1 -> 1;
  ``audit-ubuntu16`` 3 -> 3; ``audit-ubuntu17`` 1 -> 1; ``test3`` 17 -> 10 (interleaved SYSCALL /
  PROCTITLE pairs of 7 serials joined); ``reassembler_normal`` 17 -> 5.
* msticpy ``auditd_log.txt``: 1,708 lines -> 938 events, no dead letter.
* plaso ``audit_enriched.log`` (ENRICHED, 0x1D separators): 29 lines -> 12 events.
"""

from __future__ import annotations

import gzip
import re
from collections import Counter
from pathlib import Path

import pytest

from access_audit.core.events import AccessEvent, Outcome
from access_audit.core.records import DeadLetter, RawRecord
from access_audit.ingest.files import LineReader
from access_audit.parse import ParserRegistry
from access_audit.parse.auditd import join_lines, sigma_fields

HEADER = re.compile(rb"msg=audit\((\d+\.\d+):(\d+)\)")

SAMPLES = [
    ("otrf_linux_auditd/sh_arp_cache_2020-11-10074812.log", 12, 2, 0),
    ("otrf_linux_auditd/sh_binary_padding_dd_2020-11-10081941.log", 6, 1, 0),
    ("go_libaudit_testdata/auparse_audit-rhel6.log", 2, 2, 0),
    ("go_libaudit_testdata/auparse_audit-rhel7.log", 50, 46, 1),
    ("go_libaudit_testdata/auparse_audit-ubuntu14.log", 1, 1, 0),
    ("go_libaudit_testdata/auparse_audit-ubuntu16.log", 3, 3, 0),
    ("go_libaudit_testdata/auparse_audit-ubuntu17.log", 1, 1, 0),
    ("go_libaudit_testdata/auparse_test3.log", 17, 10, 0),
    ("go_libaudit_testdata/reassembler_normal.log", 17, 5, 0),
    ("msticpy_testdata/auditd_log.txt", 1708, 938, 0),
    ("plaso_test_data/audit_enriched.log", 29, 12, 0),
]


def read(registry: ParserRegistry, *paths: Path, log_type: str | None = None
         ) -> tuple[list[AccessEvent], list[DeadLetter], LineReader]:
    reader = LineReader(list(paths), log_type=log_type)
    events: list[AccessEvent] = []
    dead: list[DeadLetter] = []
    for rec in reader:
        res = registry.parse(rec)
        events.extend(res.events)
        dead.extend(res.dead_letters)
    return events, dead, reader


@pytest.mark.parametrize(("name", "lines", "n_events", "n_dead"), SAMPLES)
def test_every_sample_file(datasets, registry, name, lines, n_events, n_dead):
    path = datasets / name
    data = path.read_bytes()
    assert len([ln for ln in data.split(b"\n") if ln.strip()]) == lines
    serials = {m.groups() for m in HEADER.finditer(data)}
    assert len(serials) == n_events  # one event per (time, serial), counted without the parser
    events, dead, _ = read(registry, path)
    assert (len(events), len(dead)) == (n_events, n_dead)
    assert {e.event.dataset for e in events} == {"linux.auditd"}
    assert {e.labels["auditd_serial"] for e in events} == {s.decode() for _, s in serials}
    # given the log type, the same events (same ids)
    typed, typed_dead, _ = read(registry, path, log_type="linux.auditd")
    assert [e.id for e in typed] == [e.id for e in events] and len(typed_dead) == n_dead


def test_an_execve_group_is_one_event_with_process_file_and_command(datasets, registry):
    events, _, _ = read(registry, datasets / "otrf_linux_auditd" / "sh_arp_cache_2020-11-10074812.log")
    arp, grep = events
    assert arp.timestamp.isoformat() == "2020-11-10T07:48:16.155000+00:00"
    assert arp.event.action == "execve" and arp.event.category == ["process"] and arp.event.outcome == Outcome.success
    assert (arp.process.name, arp.process.pid) == ("arp", 1631)
    assert arp.user.id == "1000" and arp.labels["auditd_ses"] == "104"
    assert (arp.resource.type, arp.resource.name) == ("file", "/usr/sbin/arp")  # not the loader (item 1)
    assert arp.labels["auditd_types"] == "SYSCALL,EXECVE,CWD,PATH,PROCTITLE"
    assert arp.labels["auditd_cwd"] == "/home/wardog" and arp.message == "arp -a"
    assert "auditd_key" not in arp.labels  # key=(null)
    assert grep.message == "grep -v ^?" and grep.event.original.count("\n") == 5  # six records, kept whole


def test_ssh_brute_force_logins_and_sudo_of_the_azure_vm(datasets, registry):
    events, dead, _ = read(registry, datasets / "msticpy_testdata" / "auditd_log.txt")
    assert not dead
    text = (datasets / "msticpy_testdata" / "auditd_log.txt").read_text()
    by_action = Counter(e.event.action for e in events)
    assert by_action["user_login"] == text.count("type=USER_LOGIN ") == 191
    assert by_action["user_auth"] == text.count("type=USER_AUTH ") == 187
    assert by_action["user_cmd"] == text.count("type=USER_CMD ") == 17
    logins = [e for e in events if e.event.action == "user_login"]
    assert all(e.event.outcome == Outcome.failure and e.event.category == ["authentication"] for e in logins)
    ips = Counter(e.source.ip for e in logins)
    assert {"61.184.247.3", "36.156.24.99", "223.111.139.247"} <= set(ips)
    assert Counter(e.user.name for e in logins if e.user).most_common(1)[0][0] == "root"
    assert {e.user.id for e in logins if e.user} == {None}  # auid unset; uid=0 is sshd's, not the account's
    invalid = sum("acct=28696E76616C6964207573657229" in ln  # hex of "(invalid user)": no user
                  for ln in text.splitlines() if ln.startswith("type=USER_LOGIN "))
    assert sum(e.user is None for e in logins) == invalid > 0
    assert all(e.resource.type == "command" and e.resource.name for e in events if e.event.action == "user_cmd")
    execs = [e for e in events if e.event.action == "execve"]
    assert execs and all(e.process.name and e.message for e in execs)


def test_hex_encoded_fields_are_decoded(datasets, registry):
    events, dead, _ = read(registry, datasets / "go_libaudit_testdata" / "auparse_audit-rhel7.log")
    cmd = next(e for e in events if e.event.action == "user_cmd")
    assert cmd.resource.name == "./metricbeat -c mb.dev.yml" and cmd.user.id == "1000"
    modprobe = next(e for e in events if e.labels["auditd_serial"] == "512226")
    assert modprobe.labels["auditd_exe"] == "/usr/bin/python2.7;58d1ccfb (deleted)"
    assert modprobe.event.action == "connect" and modprobe.event.outcome == Outcome.failure
    login = next(e for e in events if e.event.action == "user_login")
    assert (login.source.ip, login.source.domain) == ("96.241.146.97", "pool-96-241-146-97.washdc.fios.verizon.net")
    assert "msg=audit(<time>:<serial>)" in dead[0].reason and dead[0].log_type == "linux.auditd"
    invalid, _, _ = read(registry, datasets / "go_libaudit_testdata" / "auparse_audit-ubuntu16.log")
    assert invalid[0].user is None or invalid[0].user.name is None  # acct=hex "(invalid user)"
    key, _, _ = read(registry, datasets / "go_libaudit_testdata" / "auparse_audit-ubuntu17.log")
    assert key[0].labels["auditd_key"] == "exec,64bit"  # 0x01-separated keys, hex-encoded


def test_enriched_form(datasets, registry):
    path = datasets / "plaso_test_data" / "audit_enriched.log"
    events, _, reader = read(registry, path)
    assert sum(reader.records_by_source.values()) == 12
    add = next(e for e in events if e.event.action == "add_user")
    assert add.event.category == ["iam"] and add.event.type == ["user", "creation"]
    assert (add.user.name, add.user.target.name) == ("root", "specimenuser")  # AUID="root" of the 0x1D part
    auth = next(e for e in events if e.event.action == "user_auth")
    assert auth.event.outcome == Outcome.failure and auth.source.ip == "172.23.112.1" and auth.user.name == "root"
    login = next(e for e in events if e.labels["auditd_serial"] == "447")
    assert login.labels["auditd_types"] == "LOGIN,SYSCALL,PROCTITLE" and login.event.action == "login"
    cat = next(e for e in events if e.labels["auditd_serial"] == "735")
    assert cat.labels["auditd_key"] == "spec2" and cat.message == "/usr/bin/cat /tmp/my report.txt"
    assert sigma_fields(cat.event.original)["SYSCALL"] == ["execve"]  # from the enriched part


def test_interleaved_records_of_concurrent_events_are_joined(datasets, registry):
    events, _, _ = read(registry, datasets / "go_libaudit_testdata" / "auparse_test3.log")
    pairs = [e for e in events if e.labels["auditd_types"] == "SYSCALL,PROCTITLE"]
    assert len(pairs) == 7
    bash = next(e for e in pairs if e.labels["auditd_serial"] == "194433")
    assert bash.process.name == "bash" and bash.message == "bash" and bash.event.action == "rt_sigaction"
    sshd = next(e for e in pairs if e.labels["auditd_serial"] == "194435")
    assert sshd.message == "sshd: burn [priv]"


# --- the join ---------------------------------------------------------------------------------

def line(serial: int, rtype: str = "SYSCALL", rest: str = "arch=c000003e syscall=59 success=yes pid=1") -> bytes:
    return f"type={rtype} msg=audit(1700000000.123:{serial}): {rest}".encode()


def joined(lines: list[bytes], window: int = 8) -> list[tuple[int, list[int]]]:
    out = []
    for n, data in join_lines(enumerate(lines, start=1), window=window):
        out.append((n, [int(m[2]) for m in HEADER.finditer(data)] or [-1]))
    return out


def test_join_keeps_order_flushes_at_the_end_and_loses_nothing():
    lines = [line(1), line(1, "CWD", 'cwd="/"'), line(2), line(1, "PATH", 'item=0 name="/x"'), line(3)]
    got = joined(lines)
    assert got == [(1, [1, 1, 1]), (3, [2]), (5, [3])]  # all pending groups emitted at the end
    assert sum(len(s) for _, s in got) == len(lines)


def test_join_window_eoe_and_foreign_lines():
    # a group is closed by its EOE; beyond the window the oldest open group is emitted
    assert joined([line(1), line(1, "EOE", ""), line(2)], window=8)[0] == (1, [1, 1])
    got = joined([line(1), line(2), line(3), line(1, "PATH", "item=0")], window=2)
    assert got == [(1, [1]), (2, [2]), (3, [3]), (4, [1])]  # serial 1 came too late: two events, none lost
    got = joined([line(1), b"Mar  1 10:00:00 host sshd[1]: hello", line(1, "CWD", 'cwd="/"')])
    assert got == [(1, [1]), (2, [-1]), (3, [1])]  # a non-audit line passes through, in order


def test_a_serial_split_across_inputs_gives_two_events_and_nothing_is_lost(tmp_path, registry):
    a, b = tmp_path / "a.log", tmp_path / "b.log"
    a.write_bytes(line(7) + b"\n" + line(7, "EXECVE", 'argc=1 a0="id"') + b"\n")
    b.write_bytes(line(7, "PATH", 'item=0 name="/usr/bin/id" nametype=NORMAL') + b"\n" + line(8) + b"\n")
    events, dead, _ = read(registry, a, b)
    assert not dead and len(events) == 3
    assert [e.labels["auditd_types"] for e in events] == ["SYSCALL,EXECVE", "PATH", "SYSCALL"]
    assert events[1].resource.name == "/usr/bin/id" and events[1].event.category == ["file"]


def test_through_the_bus_in_batches_of_one_every_event_stays_whole(datasets, registry):
    """The join is done before the bus, so a batch (here: one message) never holds half an event
    and a commit after it never acknowledges records whose event is still pending."""
    from access_audit.ingest.memory import InMemoryBus

    path = datasets / "otrf_linux_auditd" / "sh_arp_cache_2020-11-10074812.log"
    bus = InMemoryBus()
    for rec in LineReader([path]):
        bus.produce_record("raw", rec)
    src = bus.source("raw")
    batches = []
    while batch := src.poll(1):
        batches.append([e for r in batch for e in registry.parse(r).events])
        src.commit()
    assert [[e.labels["auditd_types"] for e in b] for b in batches] == [["SYSCALL,EXECVE,CWD,PATH,PROCTITLE"]] * 2
    direct, _, _ = read(registry, path)
    assert [b[0].id for b in batches] == [e.id for e in direct]  # same ids as read directly


def test_the_parser_takes_records_of_several_lines_or_one(registry):
    multi = b"\n".join([line(1), line(2, "USER_LOGIN", "pid=5 uid=0 auid=4294967295 ses=4294967295 msg='op=login "
                        "acct=\"alice\" exe=\"/usr/sbin/sshd\" hostname=? addr=10.0.0.5 terminal=ssh res=success'"),
                        line(1, "EXECVE", 'argc=2 a0="ls" a1="-l"')])
    res = registry.parse(RawRecord(data=multi, origin="t:1", source="t"))
    assert [e.labels["auditd_types"] for e in res.events] == ["SYSCALL,EXECVE", "USER_LOGIN"]
    alice = res.events[1]
    assert (alice.user.name, alice.source.ip, alice.event.outcome) == ("alice", "10.0.0.5", Outcome.success)
    assert len({e.id for e in res.events}) == 2
    one = registry.parse(RawRecord(data=line(3, "EXECVE", 'argc=1 a0="id"'), origin="t:2", source="t"))
    assert one.events[0].message == "id" and one.events[0].event.category == ["process"]


def test_a_long_execve_argument_in_pieces_is_joined(registry):
    # auditd splits an argument longer than its buffer: a1_len=... a1[0]=<hex> a1[1]=<hex>
    text = line(5, "EXECVE", 'argc=2 a0="echo" a1_len=10 a1[0]=68656C6C6F a1[1]=776F726C64')
    ev = registry.parse(RawRecord(data=text, origin="t:1", source="t")).events[0]
    assert ev.message == "echo helloworld" and ev.raw_obj["a1"] == ["helloworld"]


def test_a_truncated_gzip_keeps_the_pending_groups(tmp_path, registry):
    raw = b"".join(line(i) + b"\n" + line(i, "CWD", 'cwd="/"') + b"\n" for i in range(1, 200))
    full = gzip.compress(raw)
    path = tmp_path / "audit.log.gz"
    path.write_bytes(full[: len(full) * 2 // 3])
    events, dead, reader = read(registry, path)
    assert reader.file_errors and not dead
    assert len(events) == sum(reader.records_by_source.values()) > 10
    assert all(e.labels["auditd_types"] in ("SYSCALL,CWD", "SYSCALL") for e in events)


# --- bad input ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("data", "names"), [
    (b"type=UNKNOWN[1329] msg=?", "msg=audit(<time>:<serial>)"),
    (b"type=SYSCALL msg=audit(1700000000.1:5): arch=c000003e success=yes", "syscall is absent"),
    (b"type=USER_LOGIN msg=audit(1700000000.1:5): pid=1 uid=0 msg='op=login acct=\"a\"'", "res is absent"),
    (b"type=USER_AUTH msg=audit(1700000000.1:5): pid=x1 uid=0 msg='op=PAM acct=\"a\" res=failed'", "pid='x1'"),
    (b"type=EOE msg=audit(1700000000.1:5): ", "EOE record alone"),
    (b"type=SYSCALL msg=audit(99999999999999999999.1:5): syscall=1", "msg=audit(99999999999999999999.1)"),
])
def test_broken_records_are_dead_letters_naming_the_field(parse_one, data, names):
    for log_type in (None, "linux.auditd"):
        got = parse_one(data, log_type)
        assert isinstance(got, DeadLetter) and names in got.reason and got.log_type == "linux.auditd"


def test_detection_by_content(parse_one):
    ev = parse_one(b"node=web1 " + line(9, "USER_CMD", "pid=3 uid=1000 auid=1000 ses=2 msg='cwd=\"/\" "
                                        "cmd=6C73202D6C terminal=pts/0 res=success'"))
    assert isinstance(ev, AccessEvent) and ev.event.dataset == "linux.auditd"
    assert ev.host.name == "web1" and ev.resource.name == "ls -l" and ev.user.id == "1000"
    other = parse_one(b"Mar  1 10:00:00 host sshd[1]: Accepted password for bob from 10.0.0.1 port 22 ssh2")
    assert isinstance(other, AccessEvent) and other.event.dataset != "linux.auditd"
