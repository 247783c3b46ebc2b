"""SigmaHQ's linux/auditd folder on linux.auditd events.

All 53 rules load with no error (no unsupported feature among them: field selections on the
record's own fields, ``|all`` keywords, ``contains``/``startswith``/``endswith``/``re``, ``1 of``,
``not``). ``SYSCALL`` resolves to the ENRICHED name or, on raw records, to the name of the syscall
number (x86-64/i386/aarch64 table of parse/auditd.py).

On the real samples (counted below): binary padding with ``dd`` (OTRF) fires
lnx_auditd_binary_padding and lnx_auditd_dd_delete_file; ``useradd`` (plaso ENRICHED ADD_USER,
go-libaudit rhel7 ADD_USER) fires lnx_auditd_create_account; ``id`` / ``hostname`` execs fire
lnx_auditd_user_discovery (and ``hostname`` lnx_auditd_system_info_discovery); the TTY/USER_TTY
records of rhel7 fire lnx_auditd_keylogging_with_pam_d. The other rules are checked on crafted
records in the real format.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from access_audit.core.events import AccessEvent
from access_audit.core.records import RawRecord
from access_audit.detect.loader import load_rules
from access_audit.ingest.files import LineReader
from access_audit.parse import ParserRegistry
from access_audit.testing import FrozenClock

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


@pytest.fixture
def registry() -> ParserRegistry:
    return ParserRegistry(clock=FrozenClock(NOW))


@pytest.fixture(scope="module")
def rules(datasets: Path) -> dict:
    return load_rules([datasets / "sigmahq" / "rules" / "linux" / "auditd"], include_default=False).by_id()


def test_every_auditd_rule_loads(datasets):
    path = datasets / "sigmahq" / "rules" / "linux" / "auditd"
    rs = load_rules([path], include_default=False)
    assert len(sorted(path.rglob("*.yml"))) == 53
    assert rs.errors == []
    assert len(rs.rules) == 53
    assert set().union(*(r.log_types for r in rs.rules)) == {"linux.auditd"}


def fired_on(registry: ParserRegistry, rules: dict, path: Path) -> Counter[str]:
    c: Counter[str] = Counter()
    for rec in LineReader([path]):
        for ev in registry.parse(rec).events:
            for rid, rule in rules.items():
                c[rid] += bool(rule.evaluate(ev))
    return +c


def test_rules_fire_on_the_real_samples(datasets, registry, rules):
    dd = fired_on(registry, rules, datasets / "otrf_linux_auditd" / "sh_binary_padding_dd_2020-11-10081941.log")
    assert dd == {"lnx_auditd_binary_padding": 1, "lnx_auditd_dd_delete_file": 1}
    assert fired_on(registry, rules, datasets / "otrf_linux_auditd" / "sh_arp_cache_2020-11-10074812.log") == {}
    plaso = fired_on(registry, rules, datasets / "plaso_test_data" / "audit_enriched.log")
    assert plaso == {"lnx_auditd_create_account": 1, "lnx_auditd_user_discovery": 1}  # ADD_USER; exec of id
    rhel7 = fired_on(registry, rules, datasets / "go_libaudit_testdata" / "auparse_audit-rhel7.log")
    text = (datasets / "go_libaudit_testdata" / "auparse_audit-rhel7.log").read_text()
    tty = text.count("type=TTY ") + text.count("type=USER_TTY ")
    assert rhel7 == {"lnx_auditd_create_account": text.count("type=ADD_USER "), "lnx_auditd_keylogging_with_pam_d": tty}
    assert tty == 3
    mstic = fired_on(registry, rules, datasets / "msticpy_testdata" / "auditd_log.txt")
    assert mstic == {"lnx_auditd_user_discovery": 1, "lnx_auditd_system_info_discovery": 1}  # one exec of hostname


def event(registry: ParserRegistry, *lines: str) -> AccessEvent:
    res = registry.parse(RawRecord(data="\n".join(lines).encode(), origin="t:1", source="t"))
    assert len(res.events) == 1, res.dead_letters
    return res.events[0]


H = "msg=audit(1764000000.100:4242):"
PROC = ("ppid=1 pid=4242 auid=1000 uid=33 gid=33 euid=33 suid=33 fsuid=33 egid=33 sgid=33 fsgid=33 tty=(none) "
        "ses=3")


def syscall(nr: int, a0: str = "0", exe: str = "/usr/bin/x", key: str = "(null)") -> str:
    comm = exe.rsplit("/", 1)[-1]
    return (f"type=SYSCALL {H} arch=c000003e syscall={nr} success=yes exit=0 a0={a0} a1=0 a2=0 a3=0 items=1 "
            f'{PROC} comm="{comm}" exe="{exe}" key={key}')


@pytest.mark.parametrize(("rule", "hit", "miss"), [
    ("lnx_auditd_susp_exe_folders", [syscall(59, exe="/tmp/.x/payload")], [syscall(59, exe="/usr/bin/payload")]),
    # raw record: SYSCALL=syslog from the number (103 on x86-64), a0=5 is SYSLOG_ACTION_CLEAR
    ("lnx_auditd_clean_disable_dmesg_logs_via_syslog", [syscall(103, a0="5")], [syscall(103, a0="3")]),
    ("lnx_auditd_web_rce", [syscall(59, exe="/bin/sh")], [syscall(2, exe="/bin/sh")]),
    ("lnx_auditd_susp_c2_commands", [syscall(59, exe="/usr/bin/curl", key='"susp_activity"')],
     [syscall(59, exe="/usr/bin/curl", key='"exec"')]),
    ("lnx_auditd_ld_so_preload_mod",
     [syscall(257), f'type=PATH {H} item=0 name="/etc/ld.so.preload" inode=1 dev=08:01 mode=0100644 nametype=NORMAL'],
     [syscall(257), f'type=PATH {H} item=0 name="/etc/ld.so.conf" inode=1 dev=08:01 mode=0100644 nametype=NORMAL']),
    ("lnx_auditd_data_exfil_wget",
     [syscall(59, exe="/usr/bin/wget"), f'type=EXECVE {H} argc=2 a0="wget" a1="--post-file=/etc/shadow"'],
     [syscall(59, exe="/usr/bin/wget"), f'type=EXECVE {H} argc=2 a0="wget" a1="https://example.org/"']),
    # hex-encoded arguments (auditd encodes ones with spaces) are decoded before matching
    ("lnx_auditd_masquerading_crond",
     [f'type=EXECVE {H} argc=3 a0="cp" a1="/bin/sh" a2=2F746D702F6D7920646972732F63726F6E64'],
     [f'type=EXECVE {H} argc=3 a0="cp" a1="/bin/sh" a2="/tmp/shell"']),
    ("lnx_auditd_disable_system_firewall",
     [f"type=SERVICE_STOP {H} pid=1 uid=0 auid=4294967295 ses=4294967295 msg='unit=firewalld comm=\"systemd\" "
      "exe=\"/usr/lib/systemd/systemd\" hostname=? addr=? terminal=? res=success'"],
     [f"type=SERVICE_STOP {H} pid=1 uid=0 auid=4294967295 ses=4294967295 msg='unit=cron comm=\"systemd\" "
      "exe=\"/usr/lib/systemd/systemd\" hostname=? addr=? terminal=? res=success'"]),
])
def test_rules_fire_on_crafted_records_and_not_on_their_benign_twin(registry, rules, rule, hit, miss):
    ev = event(registry, *hit)
    assert rules[rule].evaluate(ev)
    assert not rules[rule].evaluate(event(registry, *miss))
    # an event read back from a store has no decoded record: the rule reads event.original
    stored = AccessEvent.from_json(ev.to_json())
    assert stored.raw_obj is None and rules[rule].evaluate(stored)


def test_enriched_syscall_name_wins_over_the_number(registry, rules):
    # ENRICHED: SYSCALL=mknod after 0x1D; the number given is not mknod's
    line = syscall(999) + "\x1dARCH=x86_64 SYSCALL=mknod AUID=\"alice\" UID=\"www-data\""
    assert rules["lnx_auditd_susp_special_file_creation_via_mknod_syscall"].evaluate(event(registry, line))
    assert not rules["lnx_auditd_susp_special_file_creation_via_mknod_syscall"].evaluate(event(registry, syscall(999)))
