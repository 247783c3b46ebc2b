"""nginx / Apache access log parser: hand-written realistic lines, and malformed ones."""

from __future__ import annotations

import pytest

from access_audit.core.events import AccessEvent, Outcome
from access_audit.core.records import DeadLetter
from access_audit.parse.http_access import HttpAccessParser

LOG_TYPE = "http"

NGINX_USER = ('203.0.113.9 - alice [10/Oct/2026:13:55:36 +0200] "GET /api/patients/123?x=1 HTTP/1.1" 200 2326 '
              '"https://portal.example.org/search" "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Firefox/131.0"')
APACHE_NO_USER = ('198.51.100.23 - - [10/Oct/2026:04:55:36 -0700] "POST /login HTTP/1.1" 401 512 "-" '
                  '"curl/8.4.0"')
COMMON = '127.0.0.1 - frank [10/Oct/2026:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326'
IPV6 = ('2001:db8::1 - bob [03/Nov/2026:08:00:01 +0000] "DELETE /api/patients/9 HTTP/2.0" 204 - "-" '
        '"python-requests/2.31.0"')
APACHE_ESCAPED_UA = ('192.0.2.44 - carol [03/Nov/2026:08:00:02 +0100] "GET /records/export.csv HTTP/1.1" 200 91822 '
                     '"-" "Mozilla/5.0 \\"compatible\\" Scanner\\\\1.0"')
NGINX_ESCAPED_UA = ('192.0.2.45 - - [03/Nov/2026:08:00:03 +0100] "GET / HTTP/1.1" 200 612 "-" '
                    '"sqlmap/1.7 \\x22injected\\x22"')
NGINX_TIMING = ('203.0.113.10 - dave [03/Nov/2026:08:00:04 +0100] "GET /api/v2/me HTTP/1.1" 200 88 "-" '
                '"okhttp/4.12.0" 0.004 "10.0.0.7:8080" rt=0.004')
COMMON_TIMING = '203.0.113.11 - - [03/Nov/2026:08:00:05 +0100] "HEAD /health HTTP/1.1" 200 0 1532'
TIMEOUT = '203.0.113.12 - - [03/Nov/2026:08:00:06 +0100] "-" 408 0 "-" "-"'
TLS_ON_PLAIN_PORT = ('203.0.113.13 - - [03/Nov/2026:08:00:07 +0100] "\\x16\\x03\\x01\\x00\\xCA\\x01\\x00\\x00" '
                     '400 157 "-" "-"')
PROXY_ABSOLUTE = ('203.0.113.14 - - [03/Nov/2026:08:00:08 +0100] "GET http://intranet.example.org/a/b?c=1 HTTP/1.1" '
                  '502 166 "-" "Wget/1.21"')
HOSTNAME_CLIENT = 'ws-17.corp.example.org - erin [03/Nov/2026:08:00:09 +0100] "GET /wiki HTTP/1.1" 304 0'


def test_nginx_combined_with_user(parse_one):
    ev = parse_one(NGINX_USER, LOG_TYPE)
    assert isinstance(ev, AccessEvent)
    assert ev.timestamp.isoformat() == "2026-10-10T11:55:36+00:00"  # +0200 -> UTC
    assert ev.source.ip == "203.0.113.9"
    assert ev.user.name == "alice"
    assert ev.http.request.method == "GET" and ev.http.version == "1.1"
    assert ev.url.original == "/api/patients/123?x=1"
    assert ev.url.path == "/api/patients/123" and ev.url.query == "x=1"
    assert ev.http.response.status_code == 200 and ev.http.response.body.bytes == 2326
    assert ev.http.request.referrer == "https://portal.example.org/search"
    assert ev.user_agent.original == "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Firefox/131.0"
    assert ev.event.category == ["web"] and ev.event.type == ["access"]
    assert ev.event.action == "http_request" and ev.event.outcome is Outcome.success
    assert ev.resource.type == "url" and ev.resource.name == "/api/patients/123"
    assert ev.related.ip == ["203.0.113.9"] and ev.related.user == ["alice"]
    assert ev.event.original == NGINX_USER


def test_apache_combined_without_user_is_failure(parse_one):
    ev = parse_one(APACHE_NO_USER, "apache")
    assert ev.user is None and ev.related.user == []
    assert ev.http.request.referrer is None
    assert ev.event.outcome is Outcome.failure and ev.http.response.status_code == 401
    assert ev.timestamp.isoformat() == "2026-10-10T11:55:36+00:00"  # -0700 -> UTC


def test_common_log_format(parse_one):
    ev = parse_one(COMMON, "nginx")
    assert ev.user.name == "frank" and ev.http.version == "1.0"
    assert ev.user_agent is None and ev.http.request.referrer is None
    assert "extra" not in ev.labels


def test_ipv6_client_and_dash_bytes(parse_one):
    ev = parse_one(IPV6, LOG_TYPE)
    assert ev.source.ip == "2001:db8::1" and ev.related.ip == ["2001:db8::1"]
    assert ev.http.request.method == "DELETE" and ev.http.version == "2.0"
    assert ev.http.response.body.bytes == 0  # Apache %b writes "-" for no body


@pytest.mark.parametrize(("line", "agent"), [
    (APACHE_ESCAPED_UA, 'Mozilla/5.0 "compatible" Scanner\\1.0'),
    (NGINX_ESCAPED_UA, 'sqlmap/1.7 "injected"'),
])
def test_escaped_quotes_in_user_agent(parse_one, line, agent):
    ev = parse_one(line, LOG_TYPE)
    assert isinstance(ev, AccessEvent)
    assert ev.user_agent.original == agent


def test_trailing_fields_are_kept(parse_one):
    ev = parse_one(NGINX_TIMING, LOG_TYPE)
    assert ev.user.name == "dave" and ev.user_agent.original == "okhttp/4.12.0"
    assert ev.labels["extra"] == '0.004 "10.0.0.7:8080" rt=0.004'
    ev = parse_one(COMMON_TIMING, LOG_TYPE)
    assert ev.http.request.method == "HEAD" and ev.labels["extra"] == "1532"


def test_request_lines_that_are_not_requests(parse_one):
    timeout = parse_one(TIMEOUT, LOG_TYPE)
    assert timeout.http.request.method is None and timeout.url is None and timeout.message is None
    assert timeout.event.outcome is Outcome.failure
    tls = parse_one(TLS_ON_PLAIN_PORT, LOG_TYPE)
    assert tls.http.request.method is None and tls.resource is None
    assert tls.message == "\\x16\\x03\\x01\\x00\\xCA\\x01\\x00\\x00"  # control bytes stay escaped


def test_absolute_url_and_hostname_client(parse_one):
    ev = parse_one(PROXY_ABSOLUTE, LOG_TYPE)
    assert ev.url.domain == "intranet.example.org" and ev.url.path == "/a/b" and ev.url.query == "c=1"
    ev = parse_one(HOSTNAME_CLIENT, LOG_TYPE)
    assert ev.source.ip is None and ev.source.domain == "ws-17.corp.example.org"
    assert ev.event.outcome is Outcome.success  # 304


@pytest.mark.parametrize("line", [NGINX_USER, APACHE_NO_USER, COMMON, IPV6, APACHE_ESCAPED_UA, NGINX_TIMING,
                                  TIMEOUT, TLS_ON_PLAIN_PORT, HOSTNAME_CLIENT])
def test_autodetect(parse_one, line):
    ev = parse_one(line)
    assert isinstance(ev, AccessEvent) and ev.event.dataset == LOG_TYPE


def test_sniff_rejects_other_formats():
    p = HttpAccessParser()
    assert p.sniff(NGINX_USER.encode())
    assert not p.sniff(b"Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user webmaster from 173.234.31.186")
    assert not p.sniff(b'{"@timestamp": "2026-01-01T00:00:00Z"}')
    assert not p.sniff(b"\x00\xff\xfe")


@pytest.mark.parametrize(("line", "reason"), [
    ('1.2.3.4 - - [10/Oct/2026:13:55:36 +0200] "GET / HTTP/1.1 200 12', "unbalanced quotes"),
    ('1.2.3.4 - - [10/Oct/2026:13:55:36 +0200] "GET / HTTP/1.1" 200 12 "https://ref/ "Mozilla', "unbalanced quotes"),
    ('1.2.3.4 - - [32/Oct/2026:13:55:36 +0200] "GET / HTTP/1.1" 200 12', "invalid timestamp"),
    ('1.2.3.4 - - [10/Foo/2026:13:55:36 +0200] "GET / HTTP/1.1" 200 12', "invalid timestamp"),
    ('1.2.3.4 - - [10/Oct/2026:13:55:36] "GET / HTTP/1.1" 200 12', "invalid timestamp"),
    ('1.2.3.4 - - [10/Oct/2026:25:55:36 +0200] "GET / HTTP/1.1" 200 12', "invalid timestamp"),
    ('1.2.3.4 - - [10/Oct/1800:13:55:36 +0200] "GET / HTTP/1.1" 200 12', "before 1990"),
    ('1.2.3.4 - - [10/Oct/9999:13:55:36 +0200] "GET / HTTP/1.1" 200 12', "timestamp in the future"),
    ('1.2.3.4 - - [10/Oct/2026:13:55:36 +0200] "GET / HTTP/1.1" OK 12', "invalid status"),
    ('1.2.3.4 - - [10/Oct/2026:13:55:36 +0200] "GET / HTTP/1.1" 2000 12', "invalid status"),
    ('1.2.3.4 - - [10/Oct/2026:13:55:36 +0200] "GET / HTTP/1.1" 200 lots', "invalid byte count"),
    ('1.2.3.4 - - [10/Oct/2026:13:55:36 +0200] "GET / HTTP/1.1" 200', "status and byte count missing"),
    ('1.2.3.4 - - [10/Oct/2026:13:55:36 +0200] GET / HTTP/1.1 200 12', "expected a quoted request"),
    ("hello world", "not an access log line"),
    ("", "not an access log line"),
    (b"\x00\xff\xfe\x00garbage\x01", "not an access log line"),
    ('1.2.3.4 - - [10/Oct/2026:13:55:36 +0200] "GET /' + "a" * 5_000_000 + ' HTTP/1.1" 200 12', "record too large"),
])
def test_malformed_lines_become_dead_letters(parse_one, line, reason):
    dl = parse_one(line, LOG_TYPE)
    assert isinstance(dl, DeadLetter), "expected a dead letter, got an event"
    assert reason in dl.reason
    assert dl.raw == (line if isinstance(line, bytes) else line.encode())
    auto = parse_one(line)
    assert isinstance(auto, DeadLetter) and auto.reason


def test_same_line_twice_gives_the_same_id(parse_one):
    a = parse_one(NGINX_USER, LOG_TYPE, origin="/var/log/nginx/access.log:12")
    b = parse_one(NGINX_USER, None, origin="/var/log/nginx/access.log.1:12")  # rotated: the same event
    c = parse_one(NGINX_USER, LOG_TYPE, origin="/var/log/nginx/access.log:13", occurrence=1)  # a 2nd identical line
    assert a.id == b.id != c.id
    assert a.to_doc() == b.to_doc()
