"""The demo's Squid source: the office proxy's access.log in the native format, and no alert."""

from __future__ import annotations

import re
from collections import Counter
from datetime import timedelta

import pytest

from access_audit.core.records import RawRecord
from access_audit.demo import COMPANY, generate
from access_audit.demo.generator import DEFAULT_START, SQUID, SRC_PROXY
from access_audit.parse import ParserRegistry
from access_audit.testing import FrozenClock

#: logformat squid: time elapsed client code/status bytes method URL user hierarchy/peer type
NATIVE = re.compile(r"^(\d{10})\.(\d{3}) +(\d+) (10\.30\.0\.\d+) ([A-Z_]+)/(\d{3}) (\d+) (CONNECT|GET|POST) (\S+) "
                    r"(\S+) (HIER_DIRECT|HIER_NONE)/(\S+) (\S+)$")


@pytest.fixture(scope="module")
def week():
    return generate(seed=7, days=7)


def test_lines_are_squid_native_lines_of_people_at_the_office(week) -> None:
    recs, _ = week
    mine = [r for r in recs if r.log_type == SQUID]
    assert mine and {r.source for r in mine} == {SRC_PROXY}
    staff = {u.username for u in COMPANY.users}
    codes: Counter[str] = Counter()
    for r in mine:
        m = NATIVE.match(r.data.decode())
        assert m, r.data
        codes[f"{m[5]}/{m[6]}"] += 1
        assert m[10] in staff or (m[10] == "-" and m[5] == "TCP_DENIED" and m[6] == "407")
        if m[8] == "CONNECT":
            assert m[9].endswith(":443") and not m[9].endswith(".zorgwijk.nl:443")  # the PAC file: own domain direct
        assert (m[11] == "HIER_DIRECT") == (m[12] != "-")
    assert sum(COMPANY.is_office_hours(r.timestamp) for r in mine) / len(mine) > 0.9  # at the office, in the day
    assert codes["TCP_TUNNEL/200"] > 10 * codes["TCP_DENIED/407"] / 3 and codes["TCP_DENIED/407"] > 0
    assert set(codes) <= {"TCP_TUNNEL/200", "TCP_DENIED/407", "TCP_DENIED/403", "TCP_MISS/200",
                          "TCP_REFRESH_UNMODIFIED/304"}
    # one laptop, one address: a person is always the same client
    pairs = {(m[4], m[10]) for r in mine if (m := NATIVE.match(r.data.decode())) and m[10] != "-"}
    assert len({ip for ip, _ in pairs}) == len(pairs)
    # nobody at home or away goes through the office proxy: the night shifts and the contractors never do
    absent = {u.username for u in COMPANY.users if u.office_share == 0.0}
    assert absent and not absent & {user for _, user in pairs}


def test_parsed_fields(week) -> None:
    recs, _ = week
    reg = ParserRegistry(clock=FrozenClock(DEFAULT_START + timedelta(days=10)))
    outcomes: Counter[tuple[str, str]] = Counter()
    for i, r in enumerate(x for x in recs if x.log_type == SQUID):
        parser, _ = reg.detect(r.data)
        assert parser.name == SQUID
        res = reg.parse(RawRecord(r.data, f"{r.source}:{i}", r.source, r.log_type))
        assert not res.dead_letters
        (ev,) = res.events
        assert ev.timestamp == r.timestamp and ev.event.action == "http_request"
        assert ev.source.ip.startswith("10.30.0.") and ev.destination.domain == ev.url.domain
        assert ev.event.category == ["network", "web"]
        outcomes[(ev.labels["squid_result_code"], ev.event.outcome.value)] += 1
        if ev.http.request.method == "CONNECT":
            assert ev.destination.port == 443 and ev.url.path is None
        if ev.labels["squid_result_code"] == "TCP_TUNNEL":
            assert ev.user.name and ev.destination.ip
    assert outcomes[("TCP_TUNNEL", "success")] and outcomes[("TCP_DENIED", "failure")]
    assert {code for code, _ in outcomes} >= {"TCP_TUNNEL", "TCP_DENIED"}


def test_the_proxy_log_parses_and_raises_nothing(demo_source) -> None:
    path, run, n = demo_source(SRC_PROXY, SQUID)
    assert path.name == "proxy-01-access.log"
    assert (run.stats.records, run.stats.events, run.stats.dead_letters, run.stored) == (n, n, 0, n)
    assert run.alerts == []  # the leaver browses only until he leaves: the status rule is quiet
