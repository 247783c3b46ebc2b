"""Squid access log parser: hand-written lines in Squid's documented formats (no real Squid log is
in the shared datasets), and malformed ones."""

from __future__ import annotations

import pytest

from access_audit.core.events import AccessEvent, Outcome
from access_audit.core.records import DeadLetter
from access_audit.parse.squid import SquidParser

LOG_TYPE = "squid.access"

# logformat squid: time elapsed remotehost code/status bytes method URL rfc931 peerstatus/peerhost type
MISS = ("1764000000.123    180 192.0.2.24 TCP_MISS/200 4120 GET http://www.example.org/a/b.php?x=1 alice "
        "HIER_DIRECT/203.0.113.80 text/html")
DENIED = "1764000001.004      0 192.0.2.25 TCP_DENIED/403 3946 CONNECT evil.example.net:443 - HIER_NONE/- text/html"
TUNNEL = ("1764000002.500  60012 192.0.2.26 TCP_TUNNEL/200 5234 CONNECT www.example.com:443 DOM%5Cbob "
          "HIER_DIRECT/93.184.216.34 -")
INVALID = "1764000003.000      0 192.0.2.27 NONE_NONE/400 3950 NONE error:invalid-request - HIER_NONE/- text/html"
ABORTED = ("1764000004.000     15 192.0.2.28 TCP_MISS_ABORTED/000 0 GET http://198.51.100.7/x.exe - "
           "HIER_DIRECT/198.51.100.7 -")
PARENT = ("1764000005.010     42 ws-17.corp.example.org TCP_MISS/200 912 POST http://api.example.net:8080/v1/items "
          "carol FIRSTUP_PARENT/proxy2.corp.example.org application/json")
HIT = "1764000006.200      1 2001:db8::5 TCP_MEM_HIT/200 15321 GET http://cdn.example.org/lib.js - HIER_NONE/- " \
      "application/javascript"
TIMEOUT_PEER = ("1764000007.300    950 192.0.2.29 TCP_MISS/304 310 GET http://www.example.org/logo.png - "
                "TIMEOUT_HIER_DIRECT/203.0.113.80 image/png")
MIME_HEADERS = ("1764000008.000     33 192.0.2.30 TCP_MISS/200 700 GET http://www.example.org/ - "
                "HIER_DIRECT/203.0.113.80 text/html [Host: www.example.org\\r\\nUser-Agent: curl/8.4.0\\r\\n] "
                "[HTTP/1.1 200 OK\\r\\n]")
# logformat combined / common: NCSA with code:hierarchy at the end
COMBINED = ('192.0.2.24 - alice [24/Nov/2026:10:00:00 +0000] "GET http://www.example.org/dl/setup.exe HTTP/1.1" 200 '
            '4120 "https://ref.example.net/" "Microsoft BITS/7.8" TCP_MISS:HIER_DIRECT')
COMBINED_IDENT = ('192.0.2.31 erin - [24/Nov/2026:10:00:01 +0000] "CONNECT mail.example.com:443 HTTP/1.1" 200 8712 '
                  '"-" "-" TCP_TUNNEL:HIER_DIRECT')
COMBINED_INVALID = ('192.0.2.32 - - [24/Nov/2026:10:00:02 +0000] "NONE error:invalid-request NONE/0.0" 400 3950 "-" '
                    '"-" NONE_NONE:HIER_NONE')
COMMON = '192.0.2.33 - - [24/Nov/2026:10:00:03 +0000] "GET http://www.example.org/ HTTP/1.1" 200 4120 TCP_HIT:HIER_NONE'
COMBINED_ABORTED = ('192.0.2.34 - - [24/Nov/2026:10:00:04 +0000] "GET http://www.example.org/big.iso HTTP/1.1" 0 0 "-" '
                    '"Wget/1.21" TCP_MISS_ABORTED:HIER_DIRECT')

ALL = [MISS, DENIED, TUNNEL, INVALID, ABORTED, PARENT, HIT, TIMEOUT_PEER, MIME_HEADERS, COMBINED, COMBINED_IDENT,
       COMBINED_INVALID, COMMON, COMBINED_ABORTED]


def test_native_miss(parse_one):
    ev = parse_one(MISS, LOG_TYPE)
    assert isinstance(ev, AccessEvent)
    assert ev.timestamp.isoformat() == "2025-11-24T16:00:00.123000+00:00"
    assert ev.source.ip == "192.0.2.24" and ev.user.name == "alice"
    assert ev.http.request.method == "GET"
    assert ev.url.original == "http://www.example.org/a/b.php?x=1"
    assert (ev.url.domain, ev.url.path, ev.url.query, ev.url.extension) == ("www.example.org", "/a/b.php", "x=1", "php")
    assert ev.http.response.status_code == 200 and ev.http.response.bytes == 4120
    assert ev.http.response.body is None and ev.http.response.mime_type == "text/html"
    assert ev.destination.domain == "www.example.org" and ev.destination.ip == "203.0.113.80"
    assert ev.destination.port is None
    assert ev.event.category == ["network", "web"] and ev.event.type == ["access"]
    assert ev.event.action == "http_request" and ev.event.outcome is Outcome.success
    assert ev.resource.type == "url" and ev.resource.name == "http://www.example.org/a/b.php"
    assert ev.labels == {"squid_elapsed_ms": "180", "squid_peer": "203.0.113.80", "squid_result_code": "TCP_MISS",
                         "squid_hierarchy": "HIER_DIRECT"}
    assert ev.related.ip == ["192.0.2.24", "203.0.113.80"] and ev.related.user == ["alice"]
    assert ev.event.original == MISS and ev.event.dataset == LOG_TYPE


def test_denied_connect(parse_one):
    ev = parse_one(DENIED, "squid")
    assert ev.event.type == ["access", "denied"] and ev.event.outcome is Outcome.failure
    assert ev.event.reason == "TCP_DENIED" and ev.user is None
    assert ev.http.request.method == "CONNECT" and ev.http.response.mime_type == "text/html"
    assert ev.url.original == "evil.example.net:443" and ev.url.domain == "evil.example.net" and ev.url.path is None
    assert ev.destination.domain == "evil.example.net" and ev.destination.port == 443 and ev.destination.ip is None
    assert "squid_peer" not in ev.labels


def test_tunnel_user_is_url_decoded(parse_one):
    ev = parse_one(TUNNEL, "proxy.squid")
    assert ev.user.name == "DOM\\bob"
    assert ev.destination.ip == "93.184.216.34" and ev.http.response.mime_type is None
    assert ev.event.outcome is Outcome.success


def test_invalid_request_and_aborted_reply(parse_one):
    ev = parse_one(INVALID, LOG_TYPE)
    assert ev.http.request is None and ev.url is None and ev.destination is None
    assert ev.message == "error:invalid-request" and ev.event.outcome is Outcome.failure
    ev = parse_one(ABORTED, LOG_TYPE)
    assert ev.http.response.status_code is None and ev.event.outcome is Outcome.unknown
    assert ev.destination.ip == "198.51.100.7" and ev.destination.domain is None and ev.url.extension == "exe"


def test_parent_peer_is_not_the_destination(parse_one):
    ev = parse_one(PARENT, LOG_TYPE)
    assert ev.source.domain == "ws-17.corp.example.org" and ev.source.ip is None
    assert ev.destination.domain == "api.example.net" and ev.destination.port == 8080 and ev.destination.ip is None
    assert ev.labels["squid_peer"] == "proxy2.corp.example.org" and ev.labels["squid_hierarchy"] == "FIRSTUP_PARENT"
    assert ev.url.extension is None and ev.http.request.method == "POST"


def test_ipv6_client_timeout_prefix_and_mime_headers(parse_one):
    ev = parse_one(HIT, LOG_TYPE)
    assert ev.source.ip == "2001:db8::5" and ev.url.extension == "js"
    ev = parse_one(TIMEOUT_PEER, LOG_TYPE)
    assert ev.labels["squid_hierarchy"] == "TIMEOUT_HIER_DIRECT" and ev.destination.ip == "203.0.113.80"
    ev = parse_one(MIME_HEADERS, LOG_TYPE)
    assert ev.http.response.mime_type == "text/html"
    assert ev.labels["squid_mime_headers"].startswith("[Host: www.example.org")


def test_combined(parse_one):
    ev = parse_one(COMBINED, LOG_TYPE)
    assert ev.timestamp.isoformat() == "2026-11-24T10:00:00+00:00"
    assert ev.user.name == "alice" and ev.user_agent.original == "Microsoft BITS/7.8"
    assert ev.http.request.referrer == "https://ref.example.net/" and ev.http.version == "1.1"
    assert ev.http.response.bytes == 4120 and ev.http.response.body is None
    assert ev.url.extension == "exe" and ev.destination.domain == "www.example.org"
    assert ev.event.category == ["network", "web"] and "extra" not in ev.labels
    assert ev.labels == {"squid_result_code": "TCP_MISS", "squid_hierarchy": "HIER_DIRECT"}


def test_combined_ident_invalid_common_and_aborted(parse_one):
    ev = parse_one(COMBINED_IDENT, LOG_TYPE)
    assert ev.user.name == "erin" and ev.user_agent is None and ev.destination.port == 443
    ev = parse_one(COMBINED_INVALID, LOG_TYPE)
    assert ev.http.request is None and ev.message == "error:invalid-request" and ev.http.version is None
    ev = parse_one(COMMON, LOG_TYPE)
    assert ev.labels["squid_result_code"] == "TCP_HIT" and ev.user_agent is None
    ev = parse_one(COMBINED_ABORTED, LOG_TYPE)
    assert ev.http.response.status_code is None and ev.event.outcome is Outcome.unknown


@pytest.mark.parametrize("line", ALL)
def test_autodetect(parse_one, line):
    ev = parse_one(line)
    assert isinstance(ev, AccessEvent) and ev.event.dataset == LOG_TYPE
    assert ev.id == parse_one(line, LOG_TYPE).id


def test_sniff_leaves_other_formats_alone(parse_one):
    p = SquidParser()
    assert all(p.sniff(line.encode()) for line in ALL)
    ncsa = '203.0.113.9 - alice [10/Oct/2026:13:55:36 +0200] "GET /api HTTP/1.1" 200 2326 "-" "curl/8.4.0"'
    assert not p.sniff(ncsa.encode())
    assert parse_one(ncsa).event.dataset == "http"
    assert parse_one(ncsa + " 0.004").event.dataset == "http"
    assert not p.sniff(b"Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user webmaster from 173.234.31.186")
    assert not p.sniff(b"type=USER_LOGIN msg=audit(1764000000.100:4242): pid=1 uid=0")
    assert not p.sniff(b'{"@timestamp": "2026-01-01T00:00:00Z"}')
    assert not p.sniff(b"\x00\xff\xfe")


@pytest.mark.parametrize(("line", "reason", "names"), [
    ("1764000000.123 180 192.0.2.24 TCP_MISS/200 4120 GET http://www.example.org/", "missing field", "rfc931"),
    ("1764000000.123 180 192.0.2.24 TCP_MISS/200 4120 GET http://www.example.org/ -", "missing field",
     "peerstatus/peerhost"),
    ("1764000000.1x3 180 192.0.2.24 TCP_MISS/200 4120 GET http://e.org/ - HIER_NONE/- -", "invalid timestamp", "time="),
    ("99999999999999.123 1 192.0.2.24 TCP_MISS/200 1 GET http://e.org/ - HIER_NONE/- -", "invalid timestamp", "time="),
    ("1764000000.123 fast 192.0.2.24 TCP_MISS/200 4120 GET http://e.org/ - HIER_NONE/- -", "invalid elapsed time",
     "elapsed="),
    ("1764000000.123 180 192.0.2.24 TCP_MISS 4120 GET http://e.org/ - HIER_NONE/- -", "invalid result code",
     "code/status="),
    ("1764000000.123 180 192.0.2.24 TCP_MISS/099 4120 GET http://e.org/ - HIER_NONE/- -", "invalid status",
     "status code"),
    ("1764000000.123 180 192.0.2.24 TCP_MISS/200 lots GET http://e.org/ - HIER_NONE/- -", "invalid byte count", "lots"),
    ("1764000000.123 180 192.0.2.24 TCP_MISS/200 1 G?T http://e.org/ - HIER_NONE/- -", "invalid method", "method="),
    ("1764000000.123 180 192.0.2.24 TCP_MISS/200 1 GET mailto:x - HIER_NONE/- -", "invalid URL", "URL="),
    ("1764000000.123 180 192.0.2.24 TCP_MISS/200 1 GET http://e.org/ - DIRECT -", "invalid hierarchy",
     "peerstatus/peerhost="),
    ("0500000000.123 1 192.0.2.24 TCP_MISS/200 1 GET http://e.org/ - HIER_NONE/- -", "before 1990", ""),
    ("2764000000.123 1 192.0.2.24 TCP_MISS/200 1 GET http://e.org/ - HIER_NONE/- -", "timestamp in the future", ""),
    ('192.0.2.24 - - [24/Nov/2026:10:00:00 +0000] "GET http://e.org/ HTTP/1.1" 200 4120', "missing field",
     "code:hierarchy"),
    ('192.0.2.24 - - [24/Nov/2026:10:00:00 +0000] "GET http://e.org/ HTTP/1.1" 200 4120 "-" "-" tcp_miss',
     "missing field", "code:hierarchy"),
    ('192.0.2.24 - - [24/Nov/2026:10:00:00 +0000] "garbage" 400 0 "-" "-" NONE_NONE:HIER_NONE', "invalid request",
     "request="),
    ('192.0.2.24 - - [24/Nov/2026:10:00:00 +0000] "GET http://e.org/ HTTP/1.1" 200 4120 "-" "curl', "unbalanced quotes",
     ""),
    ('192.0.2.24 - - [32/Nov/2026:10:00:00 +0000] "GET http://e.org/ HTTP/1.1" 200 1 TCP_MISS:HIER_DIRECT',
     "invalid timestamp", ""),
    ("hello world", "not a squid access log line", "logformat squid"),
    ("", "not a squid access log line", ""),
    (b"\x00\xff\xfe\x00garbage\x01", "not a squid access log line", ""),
])
def test_malformed_lines_become_dead_letters_naming_the_field(parse_one, line, reason, names):
    dl = parse_one(line, LOG_TYPE)
    assert isinstance(dl, DeadLetter), "expected a dead letter, got an event"
    assert reason in dl.reason and names in dl.reason
    assert dl.log_type == LOG_TYPE
    assert dl.raw == (line if isinstance(line, bytes) else line.encode())


def test_same_line_twice_gives_the_same_id(parse_one):
    a = parse_one(MISS, LOG_TYPE, origin="/var/log/squid/access.log:12")
    b = parse_one(MISS, None, origin="/var/log/squid/access.log.1:12")  # rotated: the same event
    c = parse_one(MISS, LOG_TYPE, origin="/var/log/squid/access.log:13", occurrence=1)
    assert a.id == b.id != c.id
    assert a.to_doc() == b.to_doc()
