"""Slack's interactive payloads (the buttons on an alert message): verify, then act.

Slack signs each request: ``X-Slack-Signature: v0=<hex HMAC-SHA256(signing secret,
"v0:" + X-Slack-Request-Timestamp + ":" + raw body)>``. ``SignatureVerifier`` accepts a request
only when the signature matches (compared in constant time), the timestamp is within five
minutes of now (either way), and the same signature was not seen before within that window (a
replay). Anything else is rejected with 401 before the body is even parsed.

``InteractionHandler.handle(headers, body) -> (status, headers, body)`` is the whole endpoint, so
the HTTP API can mount it in a few lines; ``InteractionServer`` serves it standalone (stdlib
``http.server``). An action (acknowledge, escalate, false positive, resolve) updates the alerts in
the store, records who and when in ``alert.context["history"]``, edits the original message and
replies in its thread through the outbox. It is idempotent: a double click changes nothing twice.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import orjson

from access_audit.core.alerts import Alert, AlertStatus
from access_audit.core.clock import Clock, SystemClock
from access_audit.core.errors import AccessAuditError
from access_audit.notify.slack import ACTIONS, ActionOutcome, SlackNotifier

log = logging.getLogger(__name__)

MAX_AGE_S = 300.0
MAX_BODY = 1 << 20
ACTION_PREFIX = "access_audit."

Response = tuple[int, dict[str, str], bytes]


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """Slack's request signature (also what tests and a local proxy use to sign)."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def _header(headers: Mapping[str, str], name: str) -> str | None:
    low = name.lower()
    return next((v for k, v in headers.items() if k.lower() == low), None)


class SignatureVerifier:
    """Checks Slack's signature, the timestamp window and replays (signatures seen in the window).

    The seen-set lives in this process: behind several replicas a replay to another replica is only
    stopped by the timestamp window.
    """

    def __init__(self, signing_secret: str, *, clock: Clock | None = None, max_age_s: float = MAX_AGE_S) -> None:
        if not signing_secret:
            raise ValueError("a Slack signing secret is required")
        self._secret = signing_secret
        self.clock = clock or SystemClock()
        self.max_age_s = max_age_s
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def verify(self, headers: Mapping[str, str], body: bytes) -> str | None:
        """None when the request is Slack's and fresh; otherwise why it is rejected."""
        ts = _header(headers, "X-Slack-Request-Timestamp")
        sig = _header(headers, "X-Slack-Signature")
        if not ts or not sig:
            return "missing signature headers"
        try:
            t = int(ts)
        except ValueError:
            return "malformed timestamp"
        now = self.clock.now().timestamp()
        if abs(now - t) > self.max_age_s:
            return "timestamp outside the five-minute window"
        expected = sign(self._secret, ts, body)
        if not hmac.compare_digest(expected.encode(), sig.encode("utf-8", "replace")):
            return "signature mismatch"
        with self._lock:
            for s, seen_t in list(self._seen.items()):
                if seen_t < now - self.max_age_s:
                    del self._seen[s]
            if sig in self._seen:
                return "replayed request"
            self._seen[sig] = t
        return None


def load_alert(store: Any, alert_id: str, rule_id: str | None = None) -> Alert | None:
    """An alert by id from an EventStore (``store.alert(id)`` when it has one, else a scan by rule)."""
    getter = getattr(store, "alert", None)
    if callable(getter):
        found: Alert | None = getter(alert_id)
        return found
    return next((a for a in store.alerts(rule_id=rule_id, limit=100_000) if a.id == alert_id), None)


class InteractionHandler:
    """The interactive endpoint. ``on_escalate(alerts, user)`` opens a breach case and returns its
    id (the breach workflow plugs in here); without it, escalating only sets the status."""

    def __init__(self, notifier: SlackNotifier, verifier: SignatureVerifier, *, store: Any = None,
                 on_escalate: Callable[[list[Alert], str], str | None] | None = None,
                 authorise: Callable[[str, str], bool] | None = None) -> None:
        self.notifier = notifier
        self.verifier = verifier
        self.store = store
        self.on_escalate = on_escalate
        #: ``authorise(slack_user_id, action) -> allowed``: a signed request proves it came from
        #: Slack, not that the person clicking may change alerts (``serve`` maps Slack users to roles)
        self.authorise = authorise
        self._lock = threading.Lock()  # one action at a time: a double click cannot open two cases

    def handle(self, headers: Mapping[str, str], body: bytes) -> Response:
        """Verify and handle one request. 401 when not Slack's (or stale, or replayed), 400 when
        malformed, 404 for an unknown message, 503 when the change could not be stored (the user
        may click again), else 200 with ``{"ok", "changed", "status"}``."""
        reason = self.verifier.verify(headers, body)
        if reason is not None:
            log.warning("slack interaction rejected: %s", reason)
            return _json(401, {"ok": False, "error": "invalid_request"})
        try:
            form = parse_qs(body.decode("utf-8"), strict_parsing=False)
            payload = orjson.loads(form["payload"][0])
            kind = payload["type"]
            user = payload.get("user") or {}
            actions = payload.get("actions") or []
            if not (isinstance(user, dict) and isinstance(actions, list) and all(isinstance(a, dict) for a in actions)):
                raise ValueError("payload fields of the wrong type")
        except (KeyError, IndexError, ValueError, UnicodeDecodeError, TypeError, AttributeError):
            return _json(400, {"ok": False, "error": "malformed_payload"})
        if kind != "block_actions":
            return _json(200, {"ok": True, "changed": False})
        by, by_name = str(user.get("id") or ""), user.get("username") or user.get("name")
        results = []
        for act in actions:
            action_id = str(act.get("action_id") or "")
            if not action_id.startswith(ACTION_PREFIX) or action_id[len(ACTION_PREFIX):] not in ACTIONS:
                continue
            if self.authorise is not None and not self.authorise(by, action_id[len(ACTION_PREFIX):]):
                log.warning("slack interaction refused: user %s may not %s", by, action_id[len(ACTION_PREFIX):])
                return _json(403, {"ok": False, "error": "not_authorised"})
            try:
                results.append(self.act(str(act.get("value") or ""), action_id[len(ACTION_PREFIX):],
                                        by=by, by_name=by_name))
            except KeyError:
                return _json(404, {"ok": False, "error": "unknown_message"})
            except AccessAuditError as e:
                log.error("slack interaction could not be recorded: %s", e)
                return _json(503, {"ok": False, "error": "unavailable"})
        if not results:
            return _json(200, {"ok": True, "changed": False})
        last = results[-1]
        return _json(200, {"ok": True, "changed": any(r.changed for r in results), "status": last.status})

    def act(self, message_id: str, action: str, *, by: str, by_name: str | None = None) -> ActionOutcome:
        """Apply one action to the alerts of one message: store first, then the message (so a
        failure leaves the message untouched and a second click finishes the job)."""
        act = ACTIONS[action]
        with self._lock:
            m = self.notifier.message(message_id)
            if m is None:
                raise KeyError(message_id)
            if AlertStatus(m.status) not in act.allowed_from:
                return ActionOutcome(False, m.id, m.status, list(m.counts), reason="no change")
            alerts = [a for a in (load_alert(self.store, i, m.doc["rule_id"]) for i in m.counts) if a] \
                if self.store is not None else [Alert.model_validate(m.doc)]
            case_id = self.on_escalate(alerts, by) if action == "escalate" and self.on_escalate else None
            at = self.notifier.clock.now().isoformat()
            entry = {"action": act.id, "status": act.status.value, "by": by, "by_name": by_name, "at": at,
                     **({"case_id": case_id} if case_id else {})}
            if self.store is not None:
                changed = []
                for a in alerts:
                    hist = a.context.setdefault("history", [])
                    if a.status != act.status or not hist or hist[-1].get("action") != act.id:
                        a.status = act.status
                        hist.append(entry)
                        changed.append(a)
                self.store.write_alerts(changed, lifecycle=True)
            return self.notifier.apply_action(message_id, action, by=by, by_name=by_name, case_id=case_id)


def _json(status: int, doc: dict[str, Any]) -> Response:
    return status, {"Content-Type": "application/json"}, orjson.dumps(doc)


def role_authoriser(user_roles: Mapping[str, str], may: Callable[[str, str], bool]) -> Callable[[str, str], bool]:
    """``authorise`` for :class:`InteractionHandler` from a Slack user id -> role mapping and a
    ``may(role, action)`` check. A user missing from the mapping may do nothing (default deny)."""

    def authorise(slack_user: str, action: str) -> bool:
        role = user_roles.get(slack_user)
        return role is not None and may(role, action)

    return authorise


class InteractionServer:
    """A small standalone HTTP server for the endpoint (POST only, bodies up to 1 MiB)."""

    def __init__(self, handler: InteractionHandler, host: str = "127.0.0.1", port: int = 0) -> None:
        self.handler = handler
        self._host = host
        outer = self

        class _H(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                try:
                    n = int(self.headers.get("Content-Length") or "0")
                except ValueError:
                    n = -1
                if n < 0 or n > MAX_BODY:
                    self._reply((413, {"Content-Type": "text/plain"}, b"too large"))
                    return
                body = self.rfile.read(n)
                try:
                    res = outer.handler.handle(dict(self.headers.items()), body)
                except Exception:
                    log.exception("slack interaction failed")
                    res = (500, {"Content-Type": "text/plain"}, b"error")
                self._reply(res)

            def do_GET(self) -> None:
                self._reply((405, {"Allow": "POST"}, b""))

            def _reply(self, res: Response) -> None:
                status, headers, body = res
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("interactions: " + format, *args)

        self.server = ThreadingHTTPServer((host, port), _H)
        self.server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.server.server_address[1]}/"

    def start(self) -> InteractionServer:
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="slack-interactions", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
