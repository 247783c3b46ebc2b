"""A local fake of the Slack Web API over real HTTP (slack-sdk's WebClient points at it with base_url).

It implements chat.postMessage, chat.update, conversations.history, conversations.replies and
conversations.list (cursor-paged, names without the ``#``, as Slack lists them), keeps the
messages it accepted, records every request, and can be scripted to fail: 429 with
Retry-After, 500, hang (sleep past the client's timeout, before or after storing the message),
or be stopped altogether (connection refused) and started again on the same port.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse


@dataclass
class Request:
    method: str
    args: dict[str, Any]
    headers: dict[str, str]
    answered: str  # "ok", "429", "500", "hang", "error:<code>"


@dataclass
class Failure:
    method: str | None
    kind: str  # 429 | 500 | hang | hang_after | error:<code>
    retry_after: int = 1
    times: int = 1


@dataclass
class Channel:
    id: str
    name: str
    messages: list[dict[str, Any]] = field(default_factory=list)  # top level, oldest first
    replies: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # thread ts -> replies


class FakeSlack:
    def __init__(self, token: str = "xoxb-test-token-0000", hang_s: float = 1.2) -> None:
        self.token = token
        self.hang_s = hang_s
        self.requests: list[Request] = []
        self.channels: dict[str, Channel] = {}
        self.failures: list[Failure] = []
        self.outage: str | None = None  # "500" or "429": every request fails until cleared
        self.list_scopes: set[str] | None = None  # conversations.list types the token may list (None: all)
        self._ts = 1_700_000_000_000_000
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._port = 0

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> FakeSlack:
        fake = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                fake._handle(self)

            def do_GET(self) -> None:
                fake._handle(self)

            def log_message(self, *a: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self._port), H)
        self._server.daemon_threads = True
        self._port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._port}/api/"

    def fail(self, method: str | None, kind: str, *, times: int = 1, retry_after: int = 1) -> None:
        self.failures.append(Failure(method, kind, retry_after, times))

    # --- what happened -----------------------------------------------------------------------

    def calls(self, method: str | None = None, answered: str | None = None) -> list[Request]:
        return [r for r in self.requests if (method is None or r.method == method)
                and (answered is None or r.answered == answered)]

    def channel(self, name: str) -> Channel:
        return self.channels[self._channel_id(name)]

    def posts(self, name: str) -> list[dict[str, Any]]:
        ch = self.channels.get(self._channel_id(name))
        return list(ch.messages) if ch else []

    def thread(self, name: str, ts: str) -> list[dict[str, Any]]:
        return list(self.channel(name).replies.get(ts, []))

    # --- the API ------------------------------------------------------------------------------

    def _channel_id(self, name: str) -> str:
        if name in self.channels:
            return name
        return "C" + hashlib.sha1(name.lstrip("#").encode()).hexdigest()[:9].upper()  # "#x" and "x" are one

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        url = urlparse(h.path)
        method = url.path.rsplit("/", 1)[-1]
        n = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(n) if n else b""
        ctype = h.headers.get("Content-Type") or ""
        if "json" in ctype and raw:
            args = json.loads(raw)
        else:
            args = {k: v[0] for k, v in parse_qs(raw.decode() or url.query).items()}
            args.update({k: v[0] for k, v in parse_qs(url.query).items()})
        req = Request(method, args, dict(h.headers.items()), "ok")
        with self._lock:
            self.requests.append(req)
            failure = self._take_failure(method)
        kind = failure.kind if failure else None
        if h.headers.get("Authorization") != f"Bearer {self.token}":
            req.answered = "error:invalid_auth"
            return self._send(h, 200, {"ok": False, "error": "invalid_auth"})
        if kind == "hang":
            req.answered = "hang"
            time.sleep(self.hang_s)
            return self._send(h, 200, {"ok": False, "error": "too_late"})
        if failure is not None and kind != "hang_after":
            req.answered = failure.kind
            if kind == "429":
                return self._send(h, 429, {"ok": False, "error": "ratelimited"},
                                  {"Retry-After": str(failure.retry_after)})
            if kind == "500":
                return self._send(h, 500, b"<html>Internal Server Error</html>")
            return self._send(h, 200, {"ok": False, "error": failure.kind.split(":", 1)[1]})
        with self._lock:
            body = self._api(method, args)
        if kind == "hang_after":
            req.answered = "hang"
            time.sleep(self.hang_s)
        elif not body.get("ok"):
            req.answered = f"error:{body.get('error')}"
        return self._send(h, 200, body)

    def _take_failure(self, method: str) -> Failure | None:
        if self.outage:
            return Failure(None, self.outage, retry_after=5)
        for f in self.failures:
            if f.method in (None, method):
                f.times -= 1
                if f.times <= 0:
                    self.failures.remove(f)
                return f
        return None

    def _api(self, method: str, a: dict[str, Any]) -> dict[str, Any]:
        if method == "chat.postMessage":
            cid = self._channel_id(a["channel"])
            ch = self.channels.setdefault(cid, Channel(cid, a["channel"]))
            self._ts += 100
            ts = f"{self._ts // 1_000_000}.{self._ts % 1_000_000:06d}"
            msg = {"type": "message", "ts": ts, "text": a.get("text"), "blocks": a.get("blocks")}
            if a.get("metadata"):
                msg["metadata"] = a["metadata"]
            if a.get("thread_ts"):
                if not any(m["ts"] == a["thread_ts"] for m in ch.messages):
                    return {"ok": False, "error": "thread_not_found"}
                msg["thread_ts"] = a["thread_ts"]
                ch.replies.setdefault(a["thread_ts"], []).append(msg)
            else:
                ch.messages.append(msg)
            return {"ok": True, "channel": cid, "ts": ts, "message": msg}
        if method == "chat.update":
            ch = self.channels.get(a.get("channel", ""))
            if ch is None:
                return {"ok": False, "error": "channel_not_found"}
            for m in ch.messages:
                if m["ts"] == a.get("ts"):
                    m["text"], m["blocks"] = a.get("text"), a.get("blocks")
                    m["edits"] = m.get("edits", 0) + 1
                    return {"ok": True, "channel": ch.id, "ts": m["ts"], "text": m["text"]}
            return {"ok": False, "error": "message_not_found"}
        if method in ("conversations.history", "conversations.replies"):
            ch = self.channels.get(a.get("channel", ""))
            if ch is None:
                return {"ok": False, "error": "channel_not_found"}
            with_md = str(a.get("include_all_metadata")).lower() in ("1", "true")
            if method == "conversations.history":
                msgs = list(reversed(ch.messages))
            else:
                parent = [m for m in ch.messages if m["ts"] == a.get("ts")]
                msgs = parent + ch.replies.get(a.get("ts", ""), [])
            return {"ok": True, "messages": [m if with_md else {k: v for k, v in m.items() if k != "metadata"}
                                             for m in msgs], "has_more": False}
        if method == "conversations.list":
            return self._list(a)
        return {"ok": False, "error": "unknown_method"}

    def _list(self, a: dict[str, Any]) -> dict[str, Any]:
        # Slack: types defaults to public_channel; limit at most 1000; an opaque cursor in
        # response_metadata.next_cursor, empty on the last page. Oldest first; the fake's channels are public.
        types = str(a.get("types") or "public_channel").split(",")
        if self.list_scopes is not None and not set(types) <= self.list_scopes:
            return {"ok": False, "error": "missing_scope", "needed": "groups:read"}
        try:
            limit = min(1000, max(1, int(a.get("limit") or 100)))
            start = int(a["cursor"].removeprefix("dGVhbTpD")) if a.get("cursor") else 0
        except (TypeError, ValueError):
            return {"ok": False, "error": "invalid_cursor"}
        chans = list(self.channels.values()) if "public_channel" in types else []
        page = chans[start:start + limit]
        nxt = f"dGVhbTpD{start + limit}" if start + limit < len(chans) else ""
        return {"ok": True, "channels": [{"id": c.id, "name": c.name.lstrip("#"), "is_channel": True,
                                          "is_private": False, "is_archived": False} for c in page],
                "response_metadata": {"next_cursor": nxt}}

    def create_channel(self, name: str) -> Channel:
        """A channel that exists in the workspace before anything is posted to it."""
        cid = self._channel_id(name)
        return self.channels.setdefault(cid, Channel(cid, name))

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        try:
            h.send_response(status)
            h.send_header("Content-Type", "text/html" if isinstance(body, bytes) else "application/json")
            for k, v in (headers or {}).items():
                h.send_header(k, v)
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
