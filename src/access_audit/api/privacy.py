"""Pseudonymisation as a closed system, for the roles without ``see_personal_data`` (engineer, auditor).

Every field of the event catalogue has a privacy class (``core.fields.FIELD_CLASSES``: personal,
quasi, free text, safe; a field without one is personal). On the way out:

- an event's personal fields become keyed pseudonyms (``p-`` + 16 hex of HMAC-SHA256), its free-text
  fields (message, URL path and query, referrer, labels, reasons) become one pseudonym per whole value,
  its raw record (``event.original``) is withheld; quasi-identifiers and safe fields stay;
- alerts, cases, the register, drafts and reports have their personal slots (user, source_ip,
  subject ids, group values by field class, the ``context`` samples) pseudonymised, and their texts
  (titles, summaries, draft text) have every personal value of the document and of its evidence
  replaced where it appears (case-insensitive, whole words), and every e-mail address and IP address
  replaced whatever it belongs to;
- staff who act on cases (``opened_by``, ``by``, ``actor``, ``history``) stay named.

Every pseudonym shown is remembered in a :class:`PseudonymIndex` (``<data_dir>/pseudonyms.db``,
mode 0600), so a query by pseudonym (``user.name:p-1a2b...``) is rewritten to the clear value
without the caller ever knowing it; a pseudonym not in the index is looked up among the stored
values of the field (computed).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import ipaddress
import os
import re
import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from access_audit.core.fields import FIELD_CLASSES, FREE_TEXT, PERSONAL, field_class, known_field

PSEUDONYM = re.compile(r"^p-[0-9a-f]{16}$")

#: flat keys of our own documents (alerts, reports, register rows) that hold a person
PERSONAL_KEYS = frozenset({"user", "user_name", "source_ip", "source_ips", "subject_id", "subject_ids", "actor_ip",
                           "users", "ips", "client_ip", "sample_values", "values"})
#: staff acting on cases and alerts: named for every role that may read cases (not pseudonymised)
STAFF_KEYS = frozenset({"opened_by", "by", "by_name", "actor", "awareness_by", "approved_by", "submitted_by",
                        "holder", "issued_by", "token_name"})
WITHHELD = frozenset({"original"})  # event.original: the raw record
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_IPV4 = re.compile(r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?![\w.])")
_IPV6 = re.compile(r"(?<![\w:])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![\w:])")


class PseudonymIndex:
    """pseudonym -> clear value for every pseudonym the API has shown (SQLite, 0600, thread-safe)."""

    def __init__(self, path: Path | str | None) -> None:
        self._lock = threading.Lock()
        self._mem: dict[str, str] = {}
        self.db: sqlite3.Connection | None = None
        if path is not None:
            p = Path(path)
            p.parent.mkdir(parents=True, exist_ok=True)
            if not p.exists():
                os.close(os.open(p, os.O_WRONLY | os.O_CREAT, 0o600))
            self.db = sqlite3.connect(str(p), check_same_thread=False, isolation_level=None, timeout=30)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("CREATE TABLE IF NOT EXISTS pseudonyms (pseudonym TEXT PRIMARY KEY, value TEXT NOT NULL)")
            with contextlib.suppress(OSError):
                os.chmod(p, 0o600)

    def add(self, pairs: dict[str, str]) -> None:
        new = {k: v for k, v in pairs.items() if k not in self._mem}
        if not new:
            return
        with self._lock:
            self._mem.update(new)
            if self.db is not None:
                self.db.executemany("INSERT OR IGNORE INTO pseudonyms (pseudonym, value) VALUES (?, ?)", new.items())

    def get(self, pseudonym: str) -> str | None:
        if pseudonym in self._mem:
            return self._mem[pseudonym]
        if self.db is None:
            return None
        with self._lock:
            r = self.db.execute("SELECT value FROM pseudonyms WHERE pseudonym=?", (pseudonym,)).fetchone()
        if r is not None:
            self._mem[pseudonym] = r[0]
        return r[0] if r else None

    def close(self) -> None:
        if self.db is not None:
            with self._lock:
                self.db.close()


def _is_ip(s: str) -> bool:
    try:
        ipaddress.ip_address(s)
    except ValueError:
        return False
    return True


class Pseudonymiser:
    """Keyed pseudonyms: ``p-`` + 16 hex digits of HMAC-SHA256(key, value); see the module doc."""

    def __init__(self, key: bytes, index: PseudonymIndex | None = None) -> None:
        self._key = key
        self.index = index or PseudonymIndex(None)

    def __call__(self, value: str) -> str:
        return "p-" + hmac.new(self._key, value.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()[:16]

    def resolve(self, pseudonym: str) -> str | None:
        """The clear value behind a pseudonym this API has shown, or None."""
        return self.index.get(pseudonym)

    def protect(self, data: Any, known: Iterable[str] = ()) -> Any:
        """A copy of ``data`` (JSON-like: events, alerts, cases, reports...) as a pseudonymised role
        may see it. ``known``: more personal values (e.g. of the evidence) to replace in texts."""
        seen: dict[str, str] = {}
        for v in known:
            if isinstance(v, str) and v and not PSEUDONYM.match(v):
                seen[v] = self(v)
        out = self._walk(data, (), seen, event=False)
        done = frozenset(seen.values())
        words = sorted((v for v in seen if len(v) >= 3), key=len, reverse=True)
        pat = re.compile(r"(?<![\w])(?:" + "|".join(re.escape(v) for v in words) + r")(?![\w])", re.I) \
            if words else None
        lower = {k.lower(): v for k, v in seen.items()}
        out = self._text(out, pat, lower, done, seen)
        self.index.add({p: v for v, p in seen.items()})
        return out

    # --- structure ------------------------------------------------------------------------------

    def _whole(self, v: Any, seen: dict[str, str]) -> Any:
        if isinstance(v, str):
            if not v or PSEUDONYM.match(v):
                return v
            seen[v] = seen.get(v) or self(v)
            return seen[v]
        if isinstance(v, list):
            return [self._whole(x, seen) for x in v]
        if isinstance(v, dict):
            return {k: self._whole(x, seen) for k, x in v.items()}
        if isinstance(v, float):
            return None  # coordinates: withheld
        return v

    def _walk(self, data: Any, path: tuple[str, ...], seen: dict[str, str], *, event: bool) -> Any:
        if isinstance(data, list):
            return [self._walk(x, path, seen, event=event) for x in data]
        if not isinstance(data, dict):
            return data
        is_event = event or ("@timestamp" in data and isinstance(data.get("event"), dict))
        if is_event and not event:
            path = ()
        out: dict[str, Any] = {}
        for k, v in data.items():
            p = (*path, k)
            if is_event:
                dotted = ".".join(p)
                if isinstance(v, dict) and not dotted.startswith("labels") and (dotted == "event" or
                                                                                known_field(dotted)):
                    out[k] = self._walk(v, p, seen, event=True)
                    continue
                if dotted == "event.original":
                    continue
                cls = field_class(dotted)
                out[k] = self._whole(v, seen) if cls in (PERSONAL, FREE_TEXT) else v
                continue
            dotted = ".".join(p)
            if k in STAFF_KEYS:
                out[k] = v
            elif not isinstance(v, dict) and dotted in FIELD_CLASSES and field_class(dotted) in (PERSONAL, FREE_TEXT):
                out[k] = self._whole(v, seen)
            elif k == "history" and isinstance(v, list):
                out[k] = v  # people acting on an alert
            elif k in PERSONAL_KEYS or (("." in k) and known_field(k) and field_class(k) in (PERSONAL, FREE_TEXT)):
                out[k] = self._whole(v, seen) if not isinstance(v, dict) else self._walk(v, p, seen, event=False)
            elif k == "group" and isinstance(v, dict):
                out[k] = {gk: self._whole(gv, seen) if field_class(gk) in (PERSONAL, FREE_TEXT) else gv
                          for gk, gv in v.items()}
            elif k == "context" and isinstance(v, dict):
                out[k] = {ck: (cv if ck == "history" else self._whole(cv, seen)) for ck, cv in v.items()}
            elif k in WITHHELD and path[-1:] == ("event",):
                continue
            else:
                out[k] = self._walk(v, p, seen, event=False)
        return out

    # --- texts ----------------------------------------------------------------------------------

    def _scrub(self, s: str, seen: dict[str, str]) -> str:
        def rep(m: re.Match[str]) -> str:
            v = m.group()
            if _EMAIL.fullmatch(v) or _is_ip(v):
                seen[v] = seen.get(v) or self(v)
                return seen[v]
            return v

        s = _EMAIL.sub(rep, s)
        s = _IPV4.sub(rep, s)
        return _IPV6.sub(rep, s) if s.count(":") >= 2 else s

    def _text(self, data: Any, pat: re.Pattern[str] | None, lower: dict[str, str], done: frozenset[str],
              seen: dict[str, str]) -> Any:
        if isinstance(data, str):
            if data in done or PSEUDONYM.match(data):
                return data
            s = pat.sub(lambda m: lower[m.group().lower()], data) if pat is not None else data
            return self._scrub(s, seen)
        if isinstance(data, dict):
            return {k: (v if k in STAFF_KEYS or k == "history" else self._text(v, pat, lower, done, seen))
                    for k, v in data.items()}
        if isinstance(data, list):
            return [self._text(x, pat, lower, done, seen) for x in data]
        return data


def personal_values(doc: Any, path: tuple[str, ...] = ()) -> set[str]:
    """The values of the personal and free-text fields of an event document (ECS)."""
    out: set[str] = set()
    if isinstance(doc, dict):
        for k, v in doc.items():
            p = (*path, k)
            if isinstance(v, dict):
                out |= personal_values(v, p)
            elif field_class(".".join(p)) == PERSONAL:
                out |= {x for x in (v if isinstance(v, list) else [v]) if isinstance(x, str) and x}
    return out
