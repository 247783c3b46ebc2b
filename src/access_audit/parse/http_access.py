"""Web server access logs: the NCSA common and combined formats of nginx and Apache httpd.

    203.0.113.9 - alice [10/Oct/2026:13:55:36 +0200] "GET /api/patients/123?x=1 HTTP/1.1" 200 2326
        "https://ref/" "Mozilla/5.0 ..."       (one line)

``client ident user [time] "request" status bytes`` is the common format; the combined format
adds ``"referrer" "user agent"``. Anything after that (request time, upstream times, forwarded
for...) differs per site and is kept verbatim in ``labels.extra``. Quotes inside fields are
escaped by the servers (Apache ``\\"``, nginx ``\\x22``) and unescaped here.

Mapping: ``source.ip`` (``source.domain`` when the server logged a host name), ``user.name``
(None for ``-``), ``http.request.method``, ``url.original``/``path``/``query`` (and ``domain``
for absolute or CONNECT targets), ``http.version``, ``http.response.status_code``,
``http.response.body.bytes`` (``-`` is 0), ``http.request.referrer``, ``user_agent.original``,
``event.category`` web, ``event.type`` access, ``event.action`` ``http_request``,
``event.outcome`` success below 400 and failure from 400 (ECS convention), ``resource`` type
``url`` named by the path. A request line that is not ``METHOD target [HTTP/x]`` (a TLS handshake
sent to a plain port, ``-`` for a timed-out connection) keeps its text in ``message``.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import ClassVar
from urllib.parse import urlsplit

from access_audit.core.errors import ParseError
from access_audit.core.events import (
    AccessEvent,
    EventInfo,
    Http,
    HttpRequest,
    HttpResponse,
    HttpResponseBody,
    Outcome,
    Resource,
    Url,
    User,
    UserAgent,
)
from access_audit.core.records import RawRecord
from access_audit.parse.base import Parser, parse_time, register
from access_audit.parse.ecs import endpoint

_SNIFF = re.compile(rb'^\S+ \S+ \S+ \[\d{2}/[A-Za-z]{3}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\] "')
_QUOTED = r'"(?:[^"\\]|\\.)*"'
_PREFIX = re.compile(rf"^(?P<client>\S+) (?P<ident>\S+) (?P<user>{_QUOTED}|\S+) \[(?P<time>[^\]]*)\] ")
_REQUEST = re.compile(rf"^(?P<request>{_QUOTED})(?: (?P<status>\S+)(?: (?P<bytes>\S+))?)?(?P<tail>.*)$", re.S)
_REF_UA = re.compile(rf"^ (?P<referrer>{_QUOTED}) (?P<agent>{_QUOTED})(?P<extra>.*)$", re.S)
_TIME = re.compile(r"^(?P<d>\d{2})/(?P<mon>[A-Za-z]{3})/(?P<y>\d{4}):(?P<t>\d{2}:\d{2}:\d{2}) (?P<z>[+-]\d{4})$")
_METHOD = re.compile(r"^[A-Z][A-Z_-]{0,19}$")
_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|.)")
_MONTHS = {m: i for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), start=1)}
_FORMAT = 'client ident user [dd/Mon/yyyy:HH:MM:SS +zzzz] "request" status bytes ["referrer" "user agent"]'


@register
class HttpAccessParser(Parser):
    """nginx / Apache access log lines in the common or combined log format."""

    name = "http"
    aliases: ClassVar[tuple[str, ...]] = ("nginx", "apache", "http_access")
    description = "nginx / Apache access logs (common or combined log format)"

    def sniff(self, data: bytes) -> bool:
        return bool(_SNIFF.match(data[:256]))

    def parse(self, record: RawRecord) -> list[AccessEvent]:
        line = record.data.decode("utf-8", errors="replace").rstrip("\r\n")
        m = _PREFIX.match(line)
        if not m:
            raise ParseError("not an access log line", f"expected {_FORMAT}", parser=self.name)
        ts = self._time(m["time"])
        rest = line[m.end():]
        r = _REQUEST.match(rest)
        if not r:
            if not rest.startswith('"'):
                raise ParseError("not an access log line", f"expected a quoted request after the time; {_FORMAT}",
                                 parser=self.name)
            raise ParseError("unbalanced quotes", "the request line has no closing quote", parser=self.name)
        if r["bytes"] is None:
            raise ParseError("not an access log line", f"status and byte count missing; expected {_FORMAT}",
                             parser=self.name)
        status = self._status(r["status"])
        size = self._bytes(r["bytes"])

        referrer = agent = extra = None
        tail = r["tail"]
        if tail.startswith(' "'):
            t = _REF_UA.match(tail)
            if not t:
                raise ParseError("unbalanced quotes", "the referrer and user agent must be two quoted strings",
                                 parser=self.name)
            referrer, agent = _dash(_unquote(t["referrer"])), _dash(_unquote(t["agent"]))
            extra = t["extra"].strip() or None
        elif tail.strip():
            if not tail.startswith(" "):
                raise ParseError("not an access log line", f"unexpected {tail[:20]!r} after the byte count",
                                 parser=self.name)
            extra = tail.strip()

        user = _unquote(m["user"]) if m["user"].startswith('"') else m["user"]
        ev = AccessEvent(
            timestamp=ts,
            event=EventInfo(kind="event", category=["web"], type=["access"], action="http_request",
                            outcome=Outcome.success if status < 400 else Outcome.failure),
            source=endpoint(m["client"]),
            user=User(name=user) if user not in ("-", "") else None,
            http=Http(request=HttpRequest(referrer=referrer),
                      response=HttpResponse(status_code=status, body=HttpResponseBody(bytes=size))),
            user_agent=UserAgent(original=agent) if agent else None,
        )
        if extra:
            ev.labels["extra"] = extra
        self._request(_unquote(r["request"]), ev)
        return [ev]

    def _time(self, text: str) -> datetime:
        t = _TIME.match(text)
        month = _MONTHS.get(t["mon"].lower()) if t else None
        if not t or month is None:
            raise ParseError("invalid timestamp", f"[{text[:40]}] is not dd/Mon/yyyy:HH:MM:SS +zzzz",
                             parser=self.name)
        z = t["z"]
        iso = f"{t['y']}-{month:02d}-{t['d']}T{t['t']}{z[:3]}:{z[3:]}"
        try:
            return parse_time(iso, field_name="time")
        except ParseError as e:
            raise ParseError("invalid timestamp", f"[{text}] is not a valid date", parser=self.name) from e

    def _status(self, text: str) -> int:
        if not (text.isdigit() and len(text) == 3 and text[0] != "0"):
            raise ParseError("invalid status", f"{text[:20]!r} is not an HTTP status code", parser=self.name)
        return int(text)

    def _bytes(self, text: str) -> int:
        if text == "-":
            return 0
        if not text.isdigit() or len(text) > 18:
            raise ParseError("invalid byte count", f"{text[:20]!r} is not a number of bytes", parser=self.name)
        return int(text)

    def _request(self, request: str, ev: AccessEvent) -> None:
        parts = request.split(" ")
        if not (2 <= len(parts) <= 3 and _METHOD.match(parts[0])
                and (len(parts) == 2 or parts[2].startswith("HTTP/"))):
            if request not in ("", "-"):
                ev.message = request
            return
        method, target = parts[0], parts[1]
        if ev.http is not None and ev.http.request is not None:
            ev.http.request.method = method
            if len(parts) == 3:
                ev.http.version = parts[2][5:] or None
        url = Url(original=target)
        if target.startswith("/"):
            path, _, query = target.partition("?")
            url.path, url.query = path, query or None
        elif "://" in target:
            try:
                split = urlsplit(target)
                url.domain, url.path, url.query = split.hostname, split.path or "/", split.query or None
            except ValueError:  # e.g. an unclosed IPv6 bracket: keep only url.original
                pass
        elif method == "CONNECT":
            url.domain = target.rsplit(":", 1)[0].strip("[]")
        ev.url = url
        ev.resource = Resource(type="url", name=url.path or target)


def _unquote(quoted: str) -> str:
    inner = quoted[1:-1]
    return _ESCAPE.sub(_unescape, inner) if "\\" in inner else inner


def _unescape(m: re.Match[str]) -> str:
    esc = m.group(1)
    if esc[0] == "x" and len(esc) == 3:
        ch = chr(int(esc[1:], 16))
        return ch if 0x20 <= ord(ch) < 0x7F else m.group(0)  # control bytes stay escaped
    return esc if esc in ('"', "\\") else m.group(0)


def _dash(value: str) -> str | None:
    return None if value in ("-", "") else value
