"""SigmaHQ's web/proxy_generic folder (``category: proxy``) on Squid access log events.

28 of the 29 rules load; the one that does not is reported with file:line:
proxy_hktl_cobalt_strike_malleable_c2_requests names ``cs-cookie``, which no Squid log format
carries (the loader refuses a field that can never resolve rather than let the rule silently miss).
No real Squid log is in the shared datasets: the rules are checked on hand-written lines in Squid's
native and combined formats, each built from the rule it targets, with a benign twin.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from access_audit.core.events import AccessEvent
from access_audit.core.records import RawRecord
from access_audit.detect.loader import load_rules
from access_audit.parse import ParserRegistry
from access_audit.testing import FrozenClock

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


@pytest.fixture
def registry() -> ParserRegistry:
    return ParserRegistry(clock=FrozenClock(NOW))


def folder(datasets: Path) -> Path:
    return datasets / "sigmahq" / "rules" / "web" / "proxy_generic"


@pytest.fixture(scope="module")
def rules(datasets: Path) -> dict:
    return load_rules([folder(datasets)], include_default=False).by_id()


def test_proxy_rules_load(datasets):
    rs = load_rules([folder(datasets)], include_default=False)
    assert len(sorted(folder(datasets).rglob("*.yml"))) == 29
    assert len(rs.rules) == 28
    (err,) = rs.errors
    assert "proxy_hktl_cobalt_strike_malleable_c2_requests.yml:" in str(err) and "'cs-cookie'" in str(err)
    assert set().union(*(r.log_types for r in rs.rules)) == {"squid.access"}


def native(method: str, url: str, code: str = "TCP_MISS/200", peer: str = "HIER_DIRECT/203.0.113.80") -> str:
    return f"1764000000.123    180 192.0.2.24 {code} 4120 {method} {url} alice {peer} text/html"


def combined(method: str, url: str, agent: str, tail: str = "TCP_MISS:HIER_DIRECT") -> str:
    return f'192.0.2.24 - alice [24/Nov/2026:10:00:00 +0000] "{method} {url} HTTP/1.1" 200 4120 "-" "{agent}" {tail}'


def event(registry: ParserRegistry, line: str) -> AccessEvent:
    res = registry.parse(RawRecord(data=line.encode(), origin="t:1", source="t"))
    assert len(res.events) == 1, res.dead_letters
    assert res.events[0].event.dataset == "squid.access"
    return res.events[0]


CHROME = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
          "Safari/537.36")
QUERY = "lng=en&ver=2-5-3499&beta=n&type=upd&rmode=p&product=aips"


@pytest.mark.parametrize(("rule", "hit", "miss"), [
    # user agents (combined format: the only Squid format that logs them)
    ("proxy_ua_rclone", combined("PUT", "http://s3.example.net/bucket/a.zip", "rclone/v1.65.0"),
     combined("PUT", "http://s3.example.net/bucket/a.zip", "curl/8.4.0")),
    ("proxy_ua_hacktool", combined("GET", "http://shop.example.org/item?id=1", "sqlmap/1.7.11#stable"),
     combined("GET", "http://shop.example.org/item?id=1", CHROME)),
    # BITS to a bare address (cs-host is the URL's host, an address included)
    ("proxy_ua_bitsadmin_susp_ip", combined("GET", "http://198.51.100.7/update.exe", "Microsoft BITS/7.8"),
     combined("GET", "http://download.example.com/update.exe", "Microsoft BITS/7.8")),
    # WebDAV execution, not to a local address (dst_ip: the URL's address)
    ("proxy_webdav_external_execution",
     combined("GET", "http://203.0.113.50/share/invoice.exe", "Microsoft-WebDAV-MiniRedir/10.0.19045"),
     combined("GET", "http://10.0.0.5/share/invoice.exe", "Microsoft-WebDAV-MiniRedir/10.0.19045")),
    # URL, extension and query (native format)
    ("proxy_download_susp_dyndns", native("GET", "http://files.hopto.org/payload.exe"),
     native("GET", "http://files.hopto.org/readme.txt")),
    ("proxy_pua_advanced_ip_scanner_update_check",
     native("GET", f"http://www.advanced-ip-scanner.com/checkupdate.php?{QUERY}"),
     native("GET", "http://www.advanced-ip-scanner.com/checkupdate.php")),  # strip_query_terms on
    ("proxy_f5_tm_utility_bash_api_request", native("POST", "http://192.0.2.80/mgmt/tm/util/bash"),
     native("GET", "http://192.0.2.80/mgmt/tm/util/bash")),
    ("proxy_raw_paste_service_access", native("GET", "https://www.pastebin.com/raw/x7Gq2Lp1"),
     native("GET", "https://www.pastebin.com/x7Gq2Lp1")),
    # a tunnel to the Telegram bot API, no user agent logged (native): the filter on it does not apply
    ("proxy_telegram_api", native("CONNECT", "api.telegram.org:443", code="TCP_TUNNEL/200"),
     combined("CONNECT", "api.telegram.org:443", "TelegramBot (like TwitterBot)", tail="TCP_TUNNEL:HIER_DIRECT")),
])
def test_rules_fire_on_crafted_squid_lines_and_not_on_their_benign_twin(registry, rules, rule, hit, miss):
    assert rules[rule].evaluate(event(registry, hit))
    assert not rules[rule].evaluate(event(registry, miss))


@pytest.mark.parametrize("line", [
    combined("GET", "http://www.example.org/index.html", CHROME),
    combined("CONNECT", "www.example.org:443", CHROME, tail="TCP_TUNNEL:HIER_DIRECT"),
    native("GET", "http://www.example.org/assets/app.js"),
    native("CONNECT", "www.example.org:443", code="TCP_TUNNEL/200"),
])
def test_benign_browsing_fires_nothing(registry, rules, line):
    ev = event(registry, line)
    assert [rid for rid, r in rules.items() if r.evaluate(ev)] == []
