"""SigmaHQ's linux/builtin folder on syslog events.

Rules with ``product: linux`` and no service are keywords over any Linux log: here, every syslog
line. The daemons' folders (cron, clamav, guacamole, vsftpd) are keywords too, but only over the
lines of that daemon's program (its syslog tag), so an sshd line that quotes vsftpd's words does
not fire them. All 22 rules load; on loghub's real Linux_2k.log (2,000 lines of a real server)
none fires; on crafted lines in the real syslog format the rule fires, and its twin from another
program or with benign text does not.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from access_audit.core.records import RawRecord
from access_audit.detect.loader import load_rules
from access_audit.ingest.files import LineReader
from access_audit.parse import ParserRegistry
from access_audit.testing import FrozenClock

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def rules(datasets: Path) -> dict:
    return load_rules([datasets / "sigmahq" / "rules" / "linux" / "builtin"], include_default=False).by_id()


def test_every_builtin_rule_loads_on_syslog(datasets: Path):
    path = datasets / "sigmahq" / "rules" / "linux" / "builtin"
    rs = load_rules([path], include_default=False)
    assert len(sorted(path.rglob("*.yml"))) == 22
    assert rs.errors == []
    assert len(rs.rules) == 22
    assert set().union(*(r.log_types for r in rs.rules)) == {"syslog"}


def _fired(rules: dict, line: str) -> set[str]:
    reg = ParserRegistry(clock=FrozenClock(NOW))
    res = reg.parse(RawRecord(data=line.encode(), origin="t:1", source="t", log_type="syslog"))
    assert not res.dead_letters, res.dead_letters
    return {rid for ev in res.events for rid, r in rules.items() if r.evaluate(ev)}


def test_a_real_servers_syslog_fires_none(rules: dict, datasets: Path):
    reg = ParserRegistry(clock=FrozenClock(NOW))
    events = [ev for rec in LineReader([datasets / "loghub" / "Linux_2k.log"]) for ev in reg.parse(rec).events]
    assert len(events) == 2000
    assert {rid for ev in events for rid, r in rules.items() if r.evaluate(ev)} == set()


@pytest.mark.parametrize(("line", "expected"), [
    # a daemon's own words, from its own program
    ("Nov 24 03:10:01 web1 vsftpd[881]: Connection refused: too many sessions for this address.",
     {"lnx_vsftpd_susp_error_messages"}),
    ("Nov 24 03:10:01 web1 CRON[4410]: (root) REPLACE (root)", {"lnx_cron_crontab_file_modification"}),
    ("Nov 24 03:10:01 web1 crontab[4410]: (deploy) REPLACE (deploy)", {"lnx_cron_crontab_file_modification"}),
    ("Nov 24 03:10:01 web1 clamd[77]: /var/www/upload/x.php: Php.Webshell-123 FOUND",
     {"lnx_clamav_relevant_message"}),
    ("Nov 24 03:10:01 rdp1 guacd[520]: User \"anna\" joined connection (2 users now present)",
     {"lnx_guacamole_susp_guacamole"}),
    # no service: any Linux log
    ("Nov 24 03:10:01 web1 sudo[91]: deploy : TTY=pts/0 ; PWD=/tmp ; USER=root ; COMMAND=/bin/ln -s /etc/passwd /tmp/p",
     {"lnx_symlink_etc_passwd"}),
    ("Nov 24 03:10:01 web1 kernel: [1234.5] *** stack smashing detected ***: terminated", {"lnx_buffer_overflows"}),
    # the same words from another program, or benign text: nothing
    ("Nov 24 03:10:01 web1 sshd[881]: Connection refused: too many sessions for this address.", set()),
    ("Nov 24 03:10:01 web1 backup[12]: REPLACE (root)", set()),
    ("Nov 24 03:10:01 web1 clamd[77]: /var/www/upload/x.php: OK", set()),
    ("Nov 24 03:10:01 web1 CRON[4410]: (root) CMD (run-parts /etc/cron.hourly)", set()),
])
def test_builtin_rules_fire_on_their_lines_only(rules: dict, line: str, expected: set[str]):
    assert _fired(rules, line) == expected
