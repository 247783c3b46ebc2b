"""Squid web proxy access logs (``access.log``): the native format and the common/combined formats.

Built from Squid's documented formats (``logformat`` in squid.conf and the format writers of Squid's
source, ``log/FormatSquidNative.cc`` and ``log/FormatHttpdCombined.cc``): **no real Squid log is in
the shared datasets**, so every test line is hand-written in those formats.

``logformat squid`` (the default), fields separated by one or more spaces::

    1764000000.123    180 192.0.2.24 TCP_MISS/200 4120 GET http://www.example.org/a/b.php?x=1 alice
        HIER_DIRECT/203.0.113.80 text/html       (one line)

``time elapsed remotehost code/status bytes method URL rfc931 peerstatus/peerhost type``: epoch
seconds with milliseconds, the milliseconds the transaction took, the client, Squid's result code
(TCP_MISS, TCP_HIT, TCP_DENIED, TCP_TUNNEL, NONE_NONE...) and the HTTP status (``000`` when no
reply was sent), the size of the reply to the client (headers and body), the method (``NONE``
when the request could not be parsed), the URL (absolute, ``host:port`` for CONNECT,
``error:invalid-request`` for a request Squid refused to parse; Squid strips the query by default,
``strip_query_terms``), the user (authenticated user, else the ident, ``-`` for none;
URL-encoded), the hierarchy code (HIER_DIRECT, FIRSTUP_PARENT, HIER_NONE..., ``TIMEOUT_`` in front
when the peer query timed out) and the server or peer it went to (``-`` for none), and the reply's
content type (``-`` for none).

``logformat combined`` (and ``common``, the same without referrer and user agent)::

    192.0.2.24 - alice [24/Nov/2026:10:00:00 +0000] "GET http://www.example.org/ HTTP/1.1" 200 4120
        "https://ref.example.net/" "Mozilla/5.0 ..." TCP_MISS:HIER_DIRECT      (one line)

i.e. the NCSA formats of the ``http`` log type with Squid's ``code:hierarchy`` at the end, which
tells the two apart when auto-detecting (this parser is asked first). Only these formats of Squid
carry the user agent, which most of SigmaHQ's proxy rules match. With ``log_mime_hdrs on`` the
request and reply headers follow in brackets: kept in ``labels.squid_mime_headers`` (a combined line
with them is not recognised by content: give the log type).

Mapping: ``source`` = the client (``source.ip``, or ``source.domain`` with ``log_fqdn``),
``user.name`` = the user (None for ``-``), ``http.request.method`` (None for ``NONE``),
``url.original`` = the URL as logged, ``url.domain``/``path``/``query``/``extension`` from it
(a CONNECT target is only a domain and port), ``destination.domain`` = the URL's host,
``destination.port`` its port when the URL names one, ``destination.ip`` = the URL's host when it is
an address, else the server Squid connected to when it went direct (a ``*DIRECT`` hierarchy code
or ORIGINAL_DST; a parent or sibling peer is only ``labels.squid_peer``),
``http.response.status_code`` (None for ``000``), ``http.response.bytes`` (the whole reply),
``http.response.mime_type``, ``http.version``, ``http.request.referrer`` and
``user_agent.original`` (combined), ``event.category`` network and web, ``event.type`` access (and
denied for a ``*DENIED*`` result code, with the code as ``event.reason``), ``event.action``
``http_request``, ``event.outcome`` failure when denied or from status 400, unknown when no reply
was sent (status 0), else success; ``resource`` type ``url`` named by the URL without its query.
Labels: ``squid_result_code``, ``squid_hierarchy``, ``squid_peer``, ``squid_elapsed_ms`` (native).

A line that is neither format, or one whose field does not hold what the format says, is a dead
letter whose reason names the field (``time``, ``elapsed``, ``code/status``, ``bytes``,
``method``, ``URL``, ``peerstatus/peerhost``...).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import ClassVar
from urllib.parse import unquote, urlsplit

from access_audit.core.errors import ParseError
from access_audit.core.events import (
    AccessEvent,
    Endpoint,
    EventInfo,
    Http,
    HttpRequest,
    HttpResponse,
    Outcome,
    Resource,
    Url,
    User,
)
from access_audit.core.records import RawRecord
from access_audit.parse.base import register
from access_audit.parse.ecs import endpoint
from access_audit.parse.http_access import _PREFIX as _NCSA_PREFIX
from access_audit.parse.http_access import _SNIFF as _NCSA_SNIFF
from access_audit.parse.http_access import HttpAccessParser

_NATIVE_SNIFF = re.compile(rb"^ *\d{9,10}\.\d{3} +-?\d+ \S+ [A-Z][A-Z0-9_]*/\d{3} \d+ [A-Za-z]")
_NATIVE_START = re.compile(r"^ *\d")
_CODE_STATUS = re.compile(r"^(?P<code>[A-Z][A-Z0-9_]*)/(?P<status>\d{3})$")
_HIER_PEER = re.compile(r"^(?P<hier>[A-Z][A-Z0-9_]*)/(?P<peer>\S+)$")
_SQUID_TAIL = re.compile(r"^(?P<code>(?:TCP|UDP|NONE|TAG)[A-Z0-9_]*):(?P<hier>[A-Z][A-Z0-9_]*)(?P<mime> \[.*)?$", re.S)
_SQUID_TAIL_SNIFF = re.compile(rb"^(?:TCP|UDP|NONE|TAG)[A-Z0-9_]*:[A-Z][A-Z0-9_]*$")
_METHOD = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,31}$")
_NATIVE_FORMAT = "time elapsed remotehost code/status bytes method URL rfc931 peerstatus/peerhost type"
_COMBINED_FORMAT = ('client ident user [dd/Mon/yyyy:HH:MM:SS +zzzz] "request" status bytes ["referrer" "user agent"] '
                    "code:hierarchy")
_DIRECT = ("ORIGINAL_DST",)


@register
class SquidParser(HttpAccessParser):
    """Squid access log lines: ``logformat squid`` (native), ``common`` and ``combined``."""

    name = "squid.access"
    aliases: ClassVar[tuple[str, ...]] = ("squid", "proxy.squid")
    description = "Squid web proxy access logs (native, common or combined logformat)"
    sniff_priority = 1  # its common/combined lines are NCSA lines: asked before ``http``

    def sniff(self, data: bytes) -> bool:
        head = data[:256]
        if _NATIVE_SNIFF.match(head):
            return True
        if not _NCSA_SNIFF.match(head):
            return False
        last = data.rstrip(b"\r\n ").rsplit(b" ", 1)[-1]
        return bool(_SQUID_TAIL_SNIFF.match(last))

    def parse(self, record: RawRecord) -> list[AccessEvent]:
        line = record.data.decode("utf-8", errors="replace").rstrip("\r\n")
        if _NCSA_PREFIX.match(line):
            return [self._combined(record)]
        if _NATIVE_START.match(line):
            return [self._native(line)]
        raise ParseError("not a squid access log line",
                         f"expected {_NATIVE_FORMAT} (logformat squid) or {_COMBINED_FORMAT} (logformat combined)",
                         parser=self.name)

    # --- logformat squid ---------------------------------------------------------------------

    def _native(self, line: str) -> AccessEvent:
        parts = line.split(None, 9)
        names = ("time", "elapsed", "remotehost", "code/status", "bytes", "method", "URL", "rfc931",
                 "peerstatus/peerhost")
        if len(parts) < len(names):
            raise ParseError("missing field", f"{names[len(parts)]} is absent; expected {_NATIVE_FORMAT}",
                             parser=self.name)
        ts = self._epoch(parts[0])
        elapsed = parts[1]
        if not elapsed.lstrip("-").isdigit() or len(elapsed) > 12:
            raise ParseError("invalid elapsed time", f"elapsed={elapsed[:20]!r} is not a number of milliseconds",
                             parser=self.name)
        cs = _CODE_STATUS.match(parts[3])
        if not cs:
            raise ParseError("invalid result code", f"code/status={parts[3][:40]!r} is not CODE/NNN (TCP_MISS/200)",
                             parser=self.name)
        status = self._status(cs["status"])
        size = self._bytes(parts[4])
        method = self._method(parts[5])
        hp = _HIER_PEER.match(parts[8])
        if not hp:
            raise ParseError("invalid hierarchy", f"peerstatus/peerhost={parts[8][:40]!r} is not CODE/host "
                             "(HIER_DIRECT/203.0.113.5, HIER_NONE/-)", parser=self.name)
        mime_type = mime = None
        if len(parts) == 10:
            rest = parts[9].strip()
            mime_type, sep, tail = rest.partition(" [")
            mime = (sep + tail).strip() or None
            if mime_type.startswith("["):
                mime_type, mime = "", rest
        ev = AccessEvent(
            timestamp=ts,
            event=EventInfo(kind="event"),
            source=endpoint(parts[2]),
            http=Http(request=HttpRequest(method=method) if method else None,
                      response=HttpResponse(status_code=status or None, bytes=size,
                                            mime_type=mime_type if mime_type not in ("", "-") else None)),
        )
        ev.labels["squid_elapsed_ms"] = elapsed
        self._finish(ev, code=cs["code"], status=status, target=parts[6], user=parts[7],
                     hier=hp["hier"], peer=hp["peer"], mime=mime)
        return ev

    def _epoch(self, text: str) -> datetime:
        secs, dot, ms = text.partition(".")
        if not (secs.isdigit() and len(secs) <= 12 and (not dot or (ms.isdigit() and len(ms) <= 6))):
            raise ParseError("invalid timestamp", f"time={text[:30]!r} is not epoch seconds.milliseconds",
                             parser=self.name)
        try:
            return datetime.fromtimestamp(int(secs), tz=UTC) + timedelta(microseconds=int(ms.ljust(6, "0") or 0))
        except (OverflowError, OSError, ValueError):
            raise ParseError("invalid timestamp", f"time={text[:30]!r} is out of range", parser=self.name) from None

    def _method(self, text: str) -> str | None:
        if not _METHOD.match(text):
            raise ParseError("invalid method", f"method={text[:20]!r} is not an HTTP method", parser=self.name)
        return None if text == "NONE" else text

    # --- logformat common / combined ---------------------------------------------------------

    def _combined(self, record: RawRecord) -> AccessEvent:
        ev = super().parse(record)[0]  # the NCSA part; Squid's code:hierarchy is left in labels.extra
        tail = _SQUID_TAIL.match(ev.labels.pop("extra", ""))
        if not tail:
            raise ParseError("missing field", "code:hierarchy (TCP_MISS:HIER_DIRECT) is absent or malformed after "
                             f"the byte count or user agent; expected {_COMBINED_FORMAT}", parser=self.name)
        http = ev.http or Http()
        request = http.request or HttpRequest()
        if ev.url is not None and ev.url.original:
            target = ev.url.original
        else:  # "NONE error:invalid-request NONE/0.0": Squid's protocol is not HTTP/
            words = (ev.message or "").split(" ")
            if not (len(words) == 3 and _METHOD.match(words[0])):
                raise ParseError("invalid request", f'request={(ev.message or "-")[:60]!r} is not "METHOD URL '
                                 'PROTOCOL/x.y"', parser=self.name)
            request.method, target, http.version = words[0], words[1], None
        m = _NCSA_PREFIX.match(record.data.decode("utf-8", errors="replace"))
        ident, user = (m["ident"], m["user"]) if m else ("-", "-")
        status = http.response.status_code if http.response is not None else None
        body = http.response.body if http.response is not None else None
        http.response = HttpResponse(status_code=status or None,  # Squid counts the whole reply: not body.bytes
                                     bytes=body.bytes if body is not None else None)
        request.method = None if request.method == "NONE" else request.method
        http.request = request if request.method or request.referrer else None
        ev.http = http
        ev.message = ev.url = ev.resource = ev.user = None
        ev.event = EventInfo(kind="event")
        self._finish(ev, code=tail["code"], status=status or 0, target=target, user=user if user != "-" else ident,
                     hier=tail["hier"], peer="-", mime=(tail["mime"] or "").strip() or None)
        return ev

    def _status(self, text: str) -> int:
        if text.strip("0") == "" and 1 <= len(text) <= 3:
            return 0  # no reply was sent (the client went away, the request was unparsable)
        return super()._status(text)

    # --- both ----------------------------------------------------------------------------------

    def _finish(self, ev: AccessEvent, *, code: str, status: int, target: str, user: str, hier: str, peer: str,
                mime: str | None) -> None:
        denied = "DENIED" in code
        outcome = Outcome.failure if denied or status >= 400 else Outcome.unknown if status == 0 else Outcome.success
        ev.event.category = ["network", "web"]
        ev.event.type = ["access", "denied"] if denied else ["access"]
        ev.event.action = "http_request"
        ev.event.outcome = outcome
        ev.event.reason = code if denied else None
        if user not in ("-", ""):
            ev.user = User(name=unquote(user, errors="replace"))  # Squid URL-encodes user names
        method = ev.http.request.method if ev.http and ev.http.request else None
        url, port = self._url(target, method)
        if url is None:
            if target not in ("-", ""):
                ev.message = target  # error:invalid-request, error:transaction-end-before-headers...
        else:
            ev.url = url
            ev.resource = Resource(type="url", name=target.split("?", 1)[0] if url.domain or url.path else target)
        dest = Endpoint(domain=url.domain if url else None, port=port)
        if url is not None and url.domain is not None:
            ip = endpoint(url.domain).ip
            if ip is not None:
                dest.ip, dest.domain = ip, None
        direct = ("DIRECT" in hier and "NO_DIRECT" not in hier) or hier.removeprefix("TIMEOUT_") in _DIRECT
        if peer != "-":
            ev.labels["squid_peer"] = peer
            if direct and dest.ip is None:
                dest.ip = endpoint(peer).ip
        if dest.domain or dest.ip:
            dest.address = dest.domain or dest.ip
            ev.destination = dest
        ev.labels["squid_result_code"] = code
        ev.labels["squid_hierarchy"] = hier
        if mime:
            ev.labels["squid_mime_headers"] = mime

    def _url(self, target: str, method: str | None) -> tuple[Url | None, int | None]:
        """The URL as Squid logged it: absolute, ``host:port`` (CONNECT), or a path (accelerator)."""
        if target in ("-", "") or target.startswith("error:"):
            return None, None
        url = Url(original=target)
        port: int | None = None
        if target.startswith("/"):
            path, _, query = target.partition("?")
            url.path, url.query = path, query or None
        elif "://" in target:
            try:
                split = urlsplit(target)
                url.domain = split.hostname
                url.path, url.query = split.path or "/", split.query or None
                port = split.port
            except ValueError:  # an unclosed IPv6 bracket, a port out of range: url.original only
                pass
        elif method == "CONNECT" or re.match(r"^[\w.-]+:\d+$|^\[[0-9A-Fa-f:.]+\]:\d+$", target):
            host, _, p = target.rpartition(":")
            url.domain = (host or target).strip("[]").lower() or None
            port = int(p) if p.isdigit() and int(p) <= 65535 else None
        else:
            raise ParseError("invalid URL", f"URL={target[:60]!r} is neither absolute, host:port nor a path",
                             parser=self.name)
        if url.path:
            last = url.path.rsplit("/", 1)[-1]
            ext = last.rsplit(".", 1)[1] if "." in last else ""
            url.extension = ext or None
        return url, port
