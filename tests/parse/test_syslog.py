from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from access_audit.core.events import Outcome
from access_audit.core.records import RawRecord
from access_audit.ingest.files import LineReader
from access_audit.parse import ParserRegistry
from access_audit.testing import FrozenClock


def parse(line: str | bytes, *, source: str = "t", year: int | None = None, log_type: str | None = "syslog",
          now: datetime | None = None, occurrence: int = 0):
    reg = ParserRegistry(clock=FrozenClock(now or datetime(2026, 11, 23, tzinfo=UTC)))
    data = line.encode() if isinstance(line, str) else line
    return reg.parse(RawRecord(data=data, origin=f"{source}:1", source=source, log_type=log_type, year=year,
                               occurrence=occurrence))


def one(line: str, **kw):
    res = parse(line, **kw)
    assert not res.dead_letters, res.dead_letters[0].reason
    (ev,) = res.events
    return ev


def test_accepted_password_fills_user_ip_port_method():
    ev = one("Dec 10 09:32:20 LabSZ sshd[24680]: Accepted password for fztu from 119.4.203.64 port 2191 ssh2")
    assert (ev.event.action, ev.event.outcome) == ("ssh_login", Outcome.success)
    assert (ev.user.name, ev.source.ip, ev.source.port, ev.authentication.method) == (
        "fztu", "119.4.203.64", 2191, "password")
    assert ev.host.name == "LabSZ" and ev.process.pid == 24680
    assert ev.related.ip == ["119.4.203.64"] and ev.related.user == ["fztu"]
    assert ev.event.original.startswith("Dec 10 09:32:20")


def test_failed_for_invalid_user_marks_reason():
    ev = one("Dec 10 06:55:46 LabSZ sshd[24200]: Failed password for invalid user webmaster from 173.234.31.186 "
             "port 38926 ssh2")
    assert (ev.event.outcome, ev.event.reason, ev.user.name) == (Outcome.failure, "invalid_user", "webmaster")


def test_user_name_with_leading_space_is_kept():
    ev = one("Dec 10 07:08:28 LabSZ sshd[24208]: Invalid user  0101 from 123.235.32.19")
    assert ev.user.name == " 0101" and ev.event.action == "ssh_invalid_user"


def test_disconnect_and_pam_lines():
    ev = one("Dec 10 06:55:48 LabSZ sshd[24200]: Received disconnect from 173.234.31.186: 11: Bye Bye [preauth]")
    assert ev.event.action == "ssh_disconnect" and ev.source.ip == "173.234.31.186"
    ev = one("Dec 10 06:55:46 LabSZ sshd[24200]: pam_unix(sshd:auth): authentication failure; logname= uid=0 "
             "euid=0 tty=ssh ruser= rhost=173.234.31.186  user=root")
    assert (ev.event.action, ev.user.name, ev.source.ip) == ("pam_auth_failure", "root", "173.234.31.186")
    ev = one("Dec 10 10:00:00 LabSZ sshd[1]: pam_unix(sshd:session): session opened for user fztu by (uid=0)")
    assert (ev.event.action, ev.user.name) == ("session_opened", "fztu")


def test_modern_openssh_formats():
    ev = one("2026-11-02T08:01:02.123456+01:00 bastion sshd[311]: Accepted publickey for alice from 2001:db8::7 "
             "port 50122 ssh2: ED25519 SHA256:xyz")
    assert ev.timestamp == datetime(2026, 11, 2, 7, 1, 2, 123456, tzinfo=UTC)
    assert (ev.source.ip, ev.authentication.method) == ("2001:db8::7", "publickey")
    ev = one("Nov  2 08:01:02 bastion sshd[311]: Disconnected from user alice 198.51.100.4 port 50122")
    assert (ev.event.action, ev.user.name, ev.source.port) == ("ssh_disconnect", "alice", 50122)
    ev = one("Nov  2 08:01:02 bastion sudo:    alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/bin/ls")
    assert (ev.event.action, ev.user.name, ev.user.target.name, ev.resource.name) == (
        "sudo", "alice", "root", "/bin/ls")


def test_year_inference_puts_future_dates_in_last_year():
    now = datetime(2026, 11, 23, tzinfo=UTC)
    assert one("Dec 10 06:55:46 h sshd[1]: Connection closed by 1.2.3.4 [preauth]", now=now).timestamp.year == 2025
    assert one("Nov 20 06:55:46 h sshd[1]: Connection closed by 1.2.3.4 [preauth]", now=now).timestamp.year == 2026
    assert one("Dec 10 06:55:46 h sshd[1]: Connection closed by 1.2.3.4 [preauth]", year=2019).timestamp.year == 2019


def test_year_rolls_over_at_new_year(tmp_path: Path):
    f = tmp_path / "auth.log"
    f.write_bytes(b"Dec 31 23:59:58 h sshd[1]: Connection closed by 1.2.3.4 [preauth]\r\n"
                  b"Jan  1 00:00:01 h sshd[1]: Connection closed by 1.2.3.4 [preauth]\r\n")
    reg = ParserRegistry(clock=FrozenClock())
    evs = [e for r in LineReader([f], log_type="syslog", year=2024) for e in reg.parse(r).events]
    assert [e.timestamp.year for e in evs] == [2024, 2025]
    assert all("\r" not in e.event.original for e in evs)


def test_same_record_same_id_other_position_other_id():
    line = "Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user webmaster from 173.234.31.186"
    a, b = one(line), one(line)
    assert a.id == b.id
    assert parse(line, source="other").events[0].id == a.id  # another file name: the same line (rotation)
    c = parse(line, occurrence=1).events[0]  # the same line again in one file: another event
    assert c.id != a.id


@pytest.mark.parametrize("raw, reason", [
    (b"\x00\xff\xfe garbage \x01", "unrecognised format"),
    (b"Foo 10 06:55:46 LabSZ sshd[1]: hi", "unknown month"),
    (b"Feb 31 06:55:46 LabSZ sshd[1]: hi", "invalid syslog timestamp"),
    (b"Dec 10 06:55:46", "not a syslog line"),
    (b"2999-01-01T00:00:00Z host sshd[1]: Accepted password for a from 1.2.3.4 port 1 ssh2", "timestamp in the future"),
    (b"1800-01-01T00:00:00Z host sshd[1]: Accepted password for a from 1.2.3.4 port 1 ssh2", "before 1990"),
])
def test_malformed_lines_become_dead_letters(raw: bytes, reason: str):
    res = parse(raw, log_type=None if raw.startswith(b"\x00") else "syslog")
    assert not res.events
    (dl,) = res.dead_letters
    assert reason in dl.reason and dl.raw == raw and dl.stage == "parse" and dl.origin == "t:1"


def test_whole_openssh_sample_parses(openssh_log: Path):
    reg = ParserRegistry(clock=FrozenClock())
    reader = LineReader([openssh_log])  # auto-detect
    results = [reg.parse(r) for r in reader]
    events = [e for r in results for e in r.events]
    dead = [d for r in results for d in r.dead_letters]
    assert len(results) == 2000 and reader.blank_lines == 0
    assert len(events) / len(results) >= 0.99, [d.reason for d in dead[:5]]
    assert len({e.id for e in events}) == len(events)
    accepted = [e for e in events if e.event.action == "ssh_login" and e.event.outcome == Outcome.success]
    assert [(e.user.name, e.source.ip) for e in accepted] == [("fztu", "119.137.62.142")]


def test_modern_pam_session_line_keeps_the_bare_user_name():
    ev = one("2026-11-02T09:13:01.123456+01:00 bastion sshd[4242]: pam_unix(sshd:session): session opened for user "
             "mdekker(uid=1101) by (uid=0)")
    assert (ev.event.action, ev.user.name) == ("session_opened", "mdekker")
    ev = one("2026-11-02T10:00:01+01:00 db-01 CRON[77]: pam_unix(cron:session): session opened for user root(uid=0) "
             "by root(uid=0)")
    assert (ev.event.action, ev.user.name, ev.service.name) == ("session_opened", "root", "CRON")


def test_something_that_is_not_an_address_stays_out_of_source_ip():
    ev = one("Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user x from 10.0.0.256")
    assert ev.source.ip is None and ev.source.address == "10.0.0.256"
    ev = one("Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user x from 2001:DB8::1")
    assert ev.source.ip == "2001:db8::1"
