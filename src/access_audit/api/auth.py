"""Who may do what: API tokens, roles and their permissions, console sessions, pseudonymisation.

Tokens live in ``<data_dir>/auth.db``, hashed: a token is ``aa_<id>_<secret>`` with 256 random bits
in the secret, and only its SHA-256 is stored (a slow password hash adds nothing for a secret that
long; the id finds the row, the hash is compared in constant time). A token has one role, expires
(``api_token_ttl_days``, 90 by default) and can be revoked; it is shown once, when created.

Every route declares its permission with :func:`require`, also the public ones (``Perm.public``);
the authorization matrix test walks ``app.routes`` and fails on a route without one.

Roles without ``see_personal_data`` get user names, source addresses and data-subject ids as
keyed pseudonyms (HMAC-SHA256 with ``api_pseudonym_key``): the same person gets the same pseudonym
in every response, so patterns stay visible, and the key holder alone can link it back. This is done
on the way out, in one place: :func:`protect` (applied to every JSON response by
``PseudonymiseMiddleware``, and by the routes that stream CSV/NDJSON or render pages).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import re
import secrets
import sqlite3
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import orjson
from fastapi import Depends, Request

from access_audit.api.privacy import Pseudonymiser
from access_audit.core.clock import Clock, SystemClock
from access_audit.core.errors import AccessAuditError, ConfigError

__all__ = ["Pseudonymiser"]

SESSION_COOKIE = "aa_session"
SESSION_HOURS = 12
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf"


class Role(StrEnum):
    engineer = "engineer"
    security_analyst = "security_analyst"
    dpo = "dpo"
    auditor = "auditor"
    admin = "admin"


ROLE_ALIASES = {"analyst": Role.security_analyst, "security-analyst": Role.security_analyst,
                "security analyst": Role.security_analyst}


def parse_role(text: str) -> Role:
    t = text.strip().lower()
    try:
        return ROLE_ALIASES.get(t) or Role(t.replace("-", "_"))
    except ValueError:
        raise ConfigError(f"unknown role {text!r}; roles: {', '.join(r.value for r in Role)}") from None


class Perm(StrEnum):
    public = "public"  # no token: health, login, the OpenAPI document
    session = "session"  # any valid token: logout, whoami
    events_search = "events:search"
    events_export = "events:export"
    events_aggregate = "events:aggregate"
    alerts_read = "alerts:read"
    subjects_report = "subjects:report"
    cases_read = "cases:read"
    cases_write = "cases:write"
    cases_approve = "cases:approve"  # approve and submit a notification: the DPO's signature
    register_read = "register:read"  # read and export the breach register
    tokens_manage = "tokens:manage"
    audit_read = "audit:read"  # the self-audit: who read what, who was refused
    see_personal_data = "see_personal_data"  # clear user names, addresses, subject ids


_READ_LOGS = {Perm.events_search, Perm.events_aggregate, Perm.alerts_read}
PERMISSIONS: dict[Role, frozenset[Perm]] = {
    # builds and runs systems: searches logs, sees pseudonyms only
    Role.engineer: frozenset({Perm.session, *_READ_LOGS, Perm.events_export}),
    # investigates: everything about events and alerts, opens and works cases
    Role.security_analyst: frozenset({Perm.session, *_READ_LOGS, Perm.events_export, Perm.subjects_report,
                                      Perm.cases_read, Perm.cases_write, Perm.see_personal_data}),
    # the Data Protection Officer: cases, approval and submission, the register, Art. 15 reports
    Role.dpo: frozenset({Perm.session, *_READ_LOGS, Perm.events_export, Perm.subjects_report, Perm.cases_read,
                         Perm.cases_write, Perm.cases_approve, Perm.register_read, Perm.see_personal_data,
                         Perm.audit_read}),
    # checks compliance: reads everything, changes nothing, sees pseudonyms only
    Role.auditor: frozenset({Perm.session, *_READ_LOGS, Perm.cases_read, Perm.register_read, Perm.audit_read}),
    # runs the system: tokens and everything else, except signing off notifications (the DPO's) and
    # reading the self-audit (the record of what the admins themselves read)
    Role.admin: frozenset(set(Perm) - {Perm.public, Perm.cases_approve, Perm.audit_read}),
}


def allowed(role: Role | None, perm: Perm) -> bool:
    """Whether ``role`` (None: no valid token) has ``perm``."""
    if perm is Perm.public:
        return True
    return role is not None and perm in PERMISSIONS[role]


class AuthError(AccessAuditError):
    """401 (no valid token) or 403 (the role lacks the permission)."""

    def __init__(self, status: int, detail: str, *, html: bool = False) -> None:
        self.status = status
        self.detail = detail
        self.html = html
        super().__init__(detail)


# --- tokens ---------------------------------------------------------------------------------------

_TOKEN = re.compile(r"^aa_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")

SCHEMA = """
CREATE TABLE IF NOT EXISTS tokens (
  id TEXT PRIMARY KEY,
  hash TEXT NOT NULL,
  name TEXT NOT NULL,
  role TEXT NOT NULL,
  created_us INTEGER NOT NULL,
  expires_us INTEGER NOT NULL,
  revoked_us INTEGER,
  issued_by TEXT,
  revoked_by TEXT
);
CREATE TABLE IF NOT EXISTS sessions (
  hash TEXT PRIMARY KEY,
  token_id TEXT NOT NULL REFERENCES tokens(id),
  csrf TEXT NOT NULL,
  created_us INTEGER NOT NULL,
  expires_us INTEGER NOT NULL
);
"""


def _us(dt: datetime) -> int:
    return int(dt.timestamp() * 1_000_000)


def _dt(us: int | None) -> datetime | None:
    return datetime.fromtimestamp(us / 1_000_000, tz=UTC) if us is not None else None


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class TokenInfo:
    id: str
    name: str
    role: Role
    created: datetime
    expires: datetime
    revoked: datetime | None = None
    issued_by: str | None = None  # who minted it: "<holder> (token <id>)", or "cli:<OS user>"
    revoked_by: str | None = None

    def state(self, now: datetime) -> str:
        return "revoked" if self.revoked else "expired" if now >= self.expires else "active"

    def to_json(self, now: datetime) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "role": self.role.value, "created": self.created.isoformat(),
                "expires": self.expires.isoformat(), "revoked": self.revoked.isoformat() if self.revoked else None,
                "state": self.state(now), "holder": self.name, "issued_by": self.issued_by,
                "revoked_by": self.revoked_by}


class TokenStore:
    """API tokens and console sessions on SQLite. Thread-safe (one connection, one lock)."""

    def __init__(self, path: Path | str, clock: Clock | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.clock = clock or SystemClock()
        self._lock = threading.RLock()
        if not self.path.exists():
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
        self.db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=30)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(SCHEMA)
        cols = {r[1] for r in self.db.execute("PRAGMA table_info(tokens)")}
        for c in ("issued_by", "revoked_by"):  # files from before issue 12
            if c not in cols:
                self.db.execute(f"ALTER TABLE tokens ADD COLUMN {c} TEXT")
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(OSError):
                os.chmod(f"{self.path}{suffix}", 0o600)

    def active_approvers(self) -> list[TokenInfo]:
        """Active tokens of a role that approves notifications (the DPO's)."""
        now = self.clock.now()
        return [t for t in self.list() if t.state(now) == "active" and Perm.cases_approve in PERMISSIONS[t.role]]

    def create(self, role: Role, name: str | None = None, ttl_days: float = 90, *,
               issued_by: str | None = None) -> tuple[str, TokenInfo]:
        """A new token (returned once, in clear) and its record. ``ttl_days`` must be positive;
        ``issued_by`` names who minted it (kept with the token)."""
        if not 0 < ttl_days <= 3660:
            raise ConfigError(f"a token must expire: ttl_days between 1 minute and 10 years (got {ttl_days})")
        tid = secrets.token_hex(6)
        token = f"aa_{tid}_{secrets.token_urlsafe(32)}"
        now = self.clock.now()
        info = TokenInfo(tid, (name or f"{role.value}-{tid[:4]}").strip()[:100], role, now,
                         now + timedelta(days=ttl_days), issued_by=issued_by)
        with self._lock:
            self.db.execute("INSERT INTO tokens (id, hash, name, role, created_us, expires_us, issued_by)"
                            " VALUES (?,?,?,?,?,?,?)",
                            (tid, _sha(token), info.name, role.value, _us(now), _us(info.expires), issued_by))
        return token, info

    def _row(self, tid: str) -> TokenInfo | None:
        with self._lock:
            r = self.db.execute("SELECT id, name, role, created_us, expires_us, revoked_us, issued_by, revoked_by"
                                " FROM tokens WHERE id=?", (tid,)).fetchone()
        if r is None:
            return None
        return TokenInfo(r[0], r[1], Role(r[2]), _dt(r[3]), _dt(r[4]), _dt(r[5]), r[6], r[7])  # type: ignore[arg-type]

    def verify(self, token: str) -> TokenInfo:
        """The token's record; AuthError(401) when it is unknown, expired or revoked."""
        m = _TOKEN.match(token.strip())
        info = self._row(m[1]) if m else None
        if m and info is not None:
            with self._lock:
                stored = self.db.execute("SELECT hash FROM tokens WHERE id=?", (m[1],)).fetchone()[0]
            if not hmac.compare_digest(stored, _sha(token.strip())):
                info = None
        if info is None:
            raise AuthError(401, "invalid token")
        state = info.state(self.clock.now())
        if state != "active":
            raise AuthError(401, f"token {state}")
        return info

    def list(self) -> list[TokenInfo]:
        with self._lock:
            ids = [r[0] for r in self.db.execute("SELECT id FROM tokens ORDER BY created_us, id")]
        return [t for t in (self._row(i) for i in ids) if t is not None]

    def revoke(self, tid: str, by: str | None = None) -> bool:
        """Revoke a token (and end its sessions). False when there is no such token."""
        with self._lock:
            n = self.db.execute("UPDATE tokens SET revoked_us=coalesce(revoked_us, ?),"
                                " revoked_by=coalesce(revoked_by, ?) WHERE id=?",
                                (_us(self.clock.now()), by, tid)).rowcount
            self.db.execute("DELETE FROM sessions WHERE token_id=?", (tid,))
        return n == 1

    # --- console sessions ---------------------------------------------------------------------

    def start_session(self, info: TokenInfo) -> tuple[str, str]:
        """(session id for the cookie, CSRF token for the forms), valid for SESSION_HOURS or until
        the token expires or is revoked."""
        sid, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
        now = self.clock.now()
        expires = min(now + timedelta(hours=SESSION_HOURS), info.expires)
        with self._lock:
            self.db.execute("DELETE FROM sessions WHERE expires_us < ?", (_us(now),))
            self.db.execute("INSERT INTO sessions (hash, token_id, csrf, created_us, expires_us) VALUES (?,?,?,?,?)",
                            (_sha(sid), info.id, csrf, _us(now), _us(expires)))
        return sid, csrf

    def session(self, sid: str) -> tuple[TokenInfo, str]:
        with self._lock:
            r = self.db.execute("SELECT token_id, csrf, expires_us FROM sessions WHERE hash=?", (_sha(sid),)).fetchone()
        if r is None or _dt(r[2]) <= self.clock.now():  # type: ignore[operator]
            raise AuthError(401, "session expired: log in again")
        info = self._row(r[0])
        if info is None or info.state(self.clock.now()) != "active":
            raise AuthError(401, f"token {info.state(self.clock.now()) if info else 'unknown'}: log in again")
        return info, r[1]

    def end_session(self, sid: str) -> None:
        with self._lock:
            self.db.execute("DELETE FROM sessions WHERE hash=?", (_sha(sid),))

    def close(self) -> None:
        with self._lock:
            self.db.close()


# --- who is asking --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Principal:
    """The authenticated caller of one request."""

    token_id: str
    name: str
    role: Role
    via: str  # bearer | session
    csrf: str | None = None  # the session's CSRF token (console forms)

    def can(self, perm: Perm) -> bool:
        return allowed(self.role, perm)

    @property
    def sees_personal_data(self) -> bool:
        return self.can(Perm.see_personal_data)

    @property
    def actor(self) -> str:
        """How the person is named in audit trails and the self-audit: the token's holder."""
        return self.name

    @property
    def signature(self) -> str:
        """Who did it with which token, for case trails and approvals: ``<holder> (token <id>)``."""
        return f"{self.name} (token {self.token_id})"


def _bearer(request: Request) -> str | None:
    h = request.headers.get("authorization")
    if not h:
        return None
    scheme, _, value = h.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


async def authenticate(request: Request) -> Principal:
    """The caller from ``Authorization: Bearer <token>`` or the console's session cookie.

    A cookie-authenticated request that changes something must carry the session's CSRF token
    (header ``X-CSRF-Token`` or form field ``csrf``). Raises AuthError(401/403)."""
    tokens: TokenStore = request.app.state.tokens
    token = _bearer(request)
    if token is not None:
        info = tokens.verify(token)
        return Principal(info.id, info.name, info.role, "bearer")
    sid = request.cookies.get(SESSION_COOKIE)
    if not sid:
        raise AuthError(401, "authentication required: send 'Authorization: Bearer <token>'")
    info, csrf = tokens.session(sid)
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        sent = request.headers.get(CSRF_HEADER)
        if sent is None and request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            sent = next(iter(form_fields(await request.body()).get(CSRF_FIELD, [])), None)
        if not sent or not hmac.compare_digest(sent, csrf):
            raise AuthError(403, "missing or wrong CSRF token: reload the page and try again")
    return Principal(info.id, info.name, info.role, "session", csrf)


def form_fields(body: bytes) -> dict[str, list[str]]:
    """An ``application/x-www-form-urlencoded`` body (the console's forms)."""
    return parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=500)


def require(perm: Perm, *, html: bool = False) -> Any:
    """The dependency every route declares: ``dependencies=[require(Perm.x)]`` or
    ``p: Principal = require(Perm.x)``. ``Perm.public`` needs no token. ``html`` routes (the console)
    answer a missing login with a redirect to /login instead of 401."""

    async def check(request: Request) -> Principal | None:
        if perm is Perm.public:
            return None
        try:
            p = await authenticate(request)
        except AuthError as e:
            raise AuthError(e.status, e.detail, html=html) from None
        request.state.principal = p  # also for a refusal: the self-audit names who was refused
        request.state.pseudonymise = not p.sees_personal_data
        if not p.can(perm):
            raise AuthError(403, f"your role ({p.role.value}) lacks the permission {perm.value}", html=html)
        request.state.principal = p
        request.state.pseudonymise = not p.sees_personal_data
        return p

    check.permission = perm  # type: ignore[attr-defined]  # read by the authorization matrix test
    check.html = html  # type: ignore[attr-defined]
    return Depends(check)


def route_permission(dependant: Any) -> Perm | None:
    """The permission a route declared (walks its dependency tree), or None."""
    for d in dependant.dependencies:
        perm = getattr(d.call, "permission", None)
        if perm is not None:
            return perm  # type: ignore[no-any-return]
        found = route_permission(d)
        if found is not None:
            return found
    return None


# --- pseudonymisation -----------------------------------------------------------------------------

def pseudonym_key(settings: Any) -> bytes:
    """``api_pseudonym_key`` from the settings, else a key generated once and kept in
    ``<data_dir>/pseudonym.key`` (mode 0600). Changing it changes every pseudonym."""
    secret = getattr(settings, "api_pseudonym_key", None)
    if secret is not None:
        value = secret.get_secret_value()
        if len(value) < 16:
            raise ConfigError("api_pseudonym_key must be at least 16 characters")
        return value.encode()
    path = Path(settings.data_dir) / "pseudonym.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    return path.read_text().strip().encode()


def protect(request: Request, data: Any, known: Iterable[str] = ()) -> Any:
    """``data`` as the caller may see it: pseudonymised unless its role has ``see_personal_data``.
    The one place where results are pseudonymised (the middleware and streaming routes call it)."""
    if getattr(request.state, "pseudonymise", True) is False:
        return data
    return request.app.state.pseudonymiser.protect(data, known)


class PseudonymiseMiddleware:
    """Pseudonymises every JSON response of a request whose caller lacks ``see_personal_data``
    (the auth dependency marks the request). Fails closed: a JSON body it cannot parse is a 500."""

    def __init__(self, app: Any, pseudonymiser: Callable[[], Pseudonymiser]) -> None:
        self.app = app
        self.pseudonymiser = pseudonymiser

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        start: dict[str, Any] = {}
        chunks: list[bytes] = []
        passthrough = [False]

        async def wrapped(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                ctype = _header(message.get("headers", []), b"content-type")
                if state.get("pseudonymise") and not state.get("protected") and ctype.startswith(b"application/json"):
                    start.update(message)
                    return
                passthrough[0] = True
                await send(message)
                return
            if message["type"] == "http.response.body" and not passthrough[0] and start:
                chunks.append(message.get("body", b""))
                if message.get("more_body"):
                    return
                body = b"".join(chunks)
                status = start["status"]
                try:
                    body = orjson.dumps(self.pseudonymiser().protect(orjson.loads(body), state.get("known", ()))) \
                        if body else body
                except orjson.JSONDecodeError:
                    body, status = b'{"detail":"response withheld: it could not be pseudonymised"}', 500
                headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
                headers.append((b"content-length", str(len(body)).encode()))
                await send({**start, "status": status, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
            await send(message)

        await self.app(scope, receive, wrapped)


def _header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> bytes:
    for k, v in headers:
        if k.lower() == name:
            return v.lower()
    return b""
