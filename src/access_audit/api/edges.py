"""The edges of the HTTP server: who is calling (trusted proxies), how big a request may be, the
self-audit of every request, sign-in throttling, and an access log without personal data.

- **Client address.** ``serve`` runs uvicorn with ``proxy_headers=False``: uvicorn would otherwise
  trust ``X-Forwarded-For`` from loopback, and a forged address reached the audit record. The
  address is the TCP peer, unless the peer is one of ``api_trusted_proxies`` (addresses or
  networks): then the right-most ``X-Forwarded-For`` entry that is not itself a trusted proxy.
  ``X-Forwarded-Proto: https`` from a trusted proxy marks the request as TLS (Secure cookies, HSTS).
- **Body size.** ``api_max_body_bytes`` (1 MiB): a larger declared or streamed body is a 413.
- **Self-audit.** :class:`SelfAuditMiddleware` records every request a route did not record
  itself (console pages, case reads, denials 401/403, refusals, failures and 500s), before the
  response starts; when the record cannot be written, the response is withheld (503).
- **Sign-in.** :class:`LoginThrottle`: ``api_login_max_failures`` failures per client address (or
  per token id) within ``api_login_window_s`` lock that address (or token) out for the window.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from collections.abc import Callable, Iterable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

from starlette.concurrency import run_in_threadpool

from access_audit.core.events import Outcome

log = logging.getLogger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
NOT_AUDITED = {("GET", "/health"), ("GET", "/login"), ("GET", "/openapi.json"), ("HEAD", "/health"),
               # container probes: they read nothing personal, and readiness must answer when the store does not
               ("GET", "/healthz"), ("GET", "/readyz")}


def trusted_networks(items: Iterable[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(str(x).strip(), strict=False) for x in items if str(x).strip())


def _in(ip: str | None, nets: tuple[Network, ...]) -> bool:
    if not ip or not nets:
        return False
    try:
        a = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(a in n for n in nets)


def _header(scope: MutableMapping[str, Any], name: bytes) -> str | None:
    for k, v in scope.get("headers") or []:
        if k.lower() == name:
            return bytes(v).decode("latin-1")
    return None


def client_ip(scope: MutableMapping[str, Any], trusted: tuple[Network, ...]) -> str | None:
    """The caller's address: the peer, or what a trusted proxy says (see the module doc)."""
    peer = scope["client"][0] if scope.get("client") else None
    if not _in(peer, trusted):
        return peer
    xff = _header(scope, b"x-forwarded-for")
    if not xff:
        return peer
    for hop in reversed([h.strip() for h in xff.split(",") if h.strip()]):
        if not _in(hop, trusted):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer  # garbage from the proxy's client: do not believe any of it
    return peer


def is_https(scope: MutableMapping[str, Any], trusted: tuple[Network, ...]) -> bool:
    """TLS to the client: the server's own scheme, or ``X-Forwarded-Proto: https`` from a trusted proxy."""
    if scope.get("scheme") == "https":
        return True
    peer = scope["client"][0] if scope.get("client") else None
    return _in(peer, trusted) and (_header(scope, b"x-forwarded-proto") or "").strip().lower() == "https"


async def _reply(send: Any, status: int, body: bytes, ctype: bytes = b"application/json") -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", ctype), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class BodyLimitMiddleware:
    """413 for a body over ``max_bytes`` (declared in Content-Length, or streamed)."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        try:
            too_big = declared is not None and int(declared) > self.max_bytes
        except ValueError:
            too_big = True
        if too_big:
            await _reply(send, 413, b'{"detail":"request body too large"}')
            return
        seen = [0]

        async def limited() -> Any:
            message = await receive()
            if message["type"] == "http.request":
                seen[0] += len(message.get("body", b""))
                if seen[0] > self.max_bytes:
                    raise _TooLargeError
            return message

        started = [False]

        async def watch(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                started[0] = True
            await send(message)

        try:
            await self.app(scope, limited, watch)
        except _TooLargeError:
            if not started[0]:
                await _reply(send, 413, b'{"detail":"request body too large"}')


class _TooLargeError(Exception):
    pass


class SelfAuditMiddleware:
    """One self-audit record for every request that its route did not record (see the module doc)."""

    def __init__(self, app: Any, state: Any) -> None:
        self.app = app
        self.st = state

    def _record(self, scope: dict[str, Any], state: dict[str, Any], status: int, reason: str | None) -> None:
        p = state.get("principal")
        method, path = scope.get("method", "GET"), scope.get("path", "")
        action = state.get("audit_action") or ("denied" if status in (401, 403) else "error" if status >= 500
                                               else "refused" if status >= 400 else
                                               "read" if method in ("GET", "HEAD") else "write")
        params = scope.get("path_params") or {}
        query = (scope.get("query_string") or b"").decode("latin-1")
        q = " ".join(f"{k}={v}" for k, v in parse_qsl(query, keep_blank_values=True))[:2000]
        subjects = [str(params["subject_id"])] if "subject_id" in params else []
        self.st.audit.record(
            actor=p.actor if p else state.get("audit_actor") or "(no valid token)",
            role=p.role.value if p else "none", token_id=p.token_id if p else state.get("audit_token_id"),
            action=action, query=q, interface=("console" if p and p.via == "session" else "api"), path=path,
            method=method, client_ip=client_ip(scope, self.st.trusted_proxies), status=status,
            outcome=Outcome.success if status < 400 else Outcome.failure, reason=reason or state.get("audit_reason"),
            subject_ids=subjects, parsed=False)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or (scope.get("method"), scope.get("path")) in NOT_AUDITED:
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        done = [False]

        async def wrapped(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start" and not done[0]:
                done[0] = True
                if not state.get("audited"):
                    try:
                        await run_in_threadpool(self._record, scope, state, int(message["status"]), None)
                    except Exception as e:
                        log.error("self-audit: cannot record %s %s: %s", scope.get("method"), scope.get("path"), e)
                        state["audit_failed"] = True
                        await _reply(send, 503, b'{"detail":"the self-audit cannot be written: response withheld"}')
                        return
            if state.get("audit_failed"):
                return
            await send(message)

        try:
            await self.app(scope, receive, wrapped)
        except Exception as e:
            if not done[0]:
                done[0] = True
                try:
                    await run_in_threadpool(self._record, scope, state, 500, f"{type(e).__name__}")
                except Exception as e2:
                    log.error("self-audit: cannot record a failure: %s", e2)
            raise


class LoginThrottle:
    """Failed sign-ins per key (client address, token id) in a sliding window; locked out once
    ``max_failures`` is reached, until the oldest failure leaves the window."""

    def __init__(self, max_failures: int = 5, window_s: float = 900.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.clock = clock
        self._fails: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> list[float]:
        kept = [t for t in self._fails.get(key, []) if t > now - self.window_s]
        if kept:
            self._fails[key] = kept
        else:
            self._fails.pop(key, None)
        return kept

    def locked(self, *keys: str) -> bool:
        now = self.clock()
        with self._lock:
            return any(len(self._recent(k, now)) >= self.max_failures for k in keys if k)

    def failed(self, *keys: str) -> None:
        now = self.clock()
        with self._lock:
            for k in keys:
                if k:
                    self._recent(k, now)
                    self._fails.setdefault(k, []).append(now)
                    if len(self._fails) > 100_000:  # bounded memory under a spray of addresses
                        self._fails.pop(next(iter(self._fails)))

    def succeeded(self, *keys: str) -> None:
        with self._lock:
            for k in keys:
                self._fails.pop(k, None)


class AccessLogFilter(logging.Filter):
    """uvicorn's access log without the query string (it carries the queries, i.e. personal data):
    method, path and status only. Path segments after /api/subjects/ are withheld too."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3:
            a = list(args)
            a[0] = "-"  # the client address is in the self-audit, not in a log file
            path = str(a[2]).split("?", 1)[0]
            if path.startswith("/api/subjects/"):
                path = "/api/subjects/…"
            a[2] = path
            record.args = tuple(a)
        return True
