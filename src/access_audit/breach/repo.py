"""Breach cases on SQLite: ``<data_dir>/breach.db``, apart from the event store.

- ``cases``: one JSON document per case, with its state and times in columns for listing, and a
  ``version`` for optimistic concurrency (the CLI, the API and the reminder scheduler may all
  write; a save based on a stale read is refused, never silently merged).
- ``audit``: the append-only trail, one row per step (who, when, what changed, why). It is the
  trail's source of truth; a case's ``trail`` is read from it.
- ``reminders``: one row per reminder sent, keyed by (case, clock, offset, due time, channel), so
  a reminder is sent once per channel, across restarts and across processes.
- ``chain``: with a chain key (``BreachRepo.from_settings``, on by default), every case version and
  every trail row is chained (``store/chain.py``, kind ``case``) in the same transaction that
  writes it, so ``access-audit verify`` reports a case or trail row edited, deleted or inserted
  behind the workflow's back; retention chains the ids of the cases it deletes.
"""

from __future__ import annotations

import builtins
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import orjson

from access_audit.breach.model import AuditEntry, BreachCase, CaseNotFoundError, ConcurrentUpdateError

SCHEMA = """
CREATE TABLE IF NOT EXISTS cases (
  id TEXT PRIMARY KEY,
  year INTEGER NOT NULL, number INTEGER NOT NULL,
  state TEXT NOT NULL,
  opened_us INTEGER NOT NULL,
  awareness_us INTEGER,
  version INTEGER NOT NULL,
  doc TEXT NOT NULL,
  UNIQUE (year, number)
);
CREATE INDEX IF NOT EXISTS cases_state ON cases (state);
CREATE TABLE IF NOT EXISTS audit (
  case_id TEXT NOT NULL REFERENCES cases(id),
  seq INTEGER NOT NULL,
  at_us INTEGER NOT NULL,
  actor TEXT NOT NULL,
  action TEXT NOT NULL,
  from_state TEXT, to_state TEXT, reason TEXT,
  changes TEXT NOT NULL,
  PRIMARY KEY (case_id, seq)
);
CREATE TABLE IF NOT EXISTS reminders (
  case_id TEXT NOT NULL,
  clock_id TEXT NOT NULL,
  offset_key TEXT NOT NULL,
  due_us INTEGER NOT NULL,
  channel TEXT NOT NULL,
  status TEXT NOT NULL,          -- sending | sent
  claimed_us INTEGER NOT NULL,
  sent_us INTEGER,
  PRIMARY KEY (case_id, clock_id, offset_key, due_us, channel)
);
"""


def _us(dt: datetime) -> int:
    return int(dt.timestamp() * 1_000_000)


def _dt(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1_000_000, tz=UTC)


class BreachRepo:
    """The case repository. Safe to share between threads (one connection, one lock); several
    processes may open the same file (SQLite WAL; writes are short transactions)."""

    def __init__(self, path: Path | str, *, chain_key: Path | None = None, chain_anchor: Path | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self.db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=30)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.executescript(SCHEMA)
        self.chain: Any = None
        if chain_key is not None and chain_anchor is not None:
            from access_audit.store.chain import Chain, SqliteLog, load_key

            self.chain = Chain(SqliteLog(self), load_key(chain_key), chain_anchor)

    @classmethod
    def from_settings(cls, settings: Any) -> BreachRepo:
        """``<data_dir>/breach.db``, chained when the store is (``settings.chain``)."""
        path = getattr(settings, "breach_path", None) or Path(settings.data_dir) / "breach.db"
        if not getattr(settings, "chain", False):  # not a Settings (a test's namespace): no chain
            return cls(path)
        return cls(path, chain_key=settings.chain_key_path, chain_anchor=settings.chain_anchor_path)

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

    # --- cases ------------------------------------------------------------------------------

    def create(self, case: BreachCase, *, year: int) -> BreachCase:
        """Store a new case under the next number of ``year``; its id becomes ``BR-<year>-<nnnn>``.

        The trail entries on ``case`` are stored with it. Returns the stored case.
        """
        with self._tx() as db:
            n = db.execute("SELECT coalesce(max(number), 0) + 1 FROM cases WHERE year=?", (year,)).fetchone()[0]
            case = case.model_copy(update={"id": f"BR-{year}-{n:04d}", "version": 1})
            db.execute("INSERT INTO cases (id, year, number, state, opened_us, awareness_us, version, doc)"
                       " VALUES (?,?,?,?,?,?,?,?)", (case.id, year, n, case.state.value, _us(case.opened_at),
                                                     _us(case.awareness.at) if case.awareness else None, 1,
                                                     orjson.dumps(case.to_doc()).decode()))
            self._append(db, case.id, case.trail)
            self._chain(db, case.id)
        return case

    def save(self, case: BreachCase, new_entries: list[AuditEntry]) -> BreachCase:
        """Store ``case`` if nobody saved it since it was read (its ``version``); append the entries.

        Raises ConcurrentUpdateError when the stored version moved on.
        """
        new_version = case.version + 1
        stored = case.model_copy(update={"version": new_version})
        with self._tx() as db:
            cur = db.execute("UPDATE cases SET state=?, awareness_us=?, version=?, doc=? WHERE id=? AND version=?",
                             (stored.state.value, _us(stored.awareness.at) if stored.awareness else None,
                              new_version, orjson.dumps(stored.to_doc()).decode(), case.id, case.version))
            if cur.rowcount != 1:
                raise ConcurrentUpdateError("the case was changed by someone else since it was read: read it "
                                            "again and retry", case_id=case.id)
            self._append(db, case.id, new_entries)
            self._chain(db, case.id, [e.seq for e in new_entries])
        return stored

    def _append(self, db: sqlite3.Connection, case_id: str, entries: list[AuditEntry]) -> None:
        db.executemany(
            "INSERT INTO audit (case_id, seq, at_us, actor, action, from_state, to_state, reason, changes)"
            " VALUES (?,?,?,?,?,?,?,?,?)",
            [(case_id, e.seq, _us(e.at), e.actor, e.action, e.from_state.value if e.from_state else None,
              e.to_state.value if e.to_state else None, e.reason, orjson.dumps(e.changes, default=str).decode())
             for e in entries])

    # --- tamper evidence (store/chain.py) -------------------------------------------------------

    _CASE_SQL = "SELECT id, version, opened_us, doc FROM cases"
    _TRAIL_SQL = "SELECT case_id, seq, at_us, actor, action, from_state, to_state, reason, changes FROM audit"

    @staticmethod
    def _case_leaf_doc(row: tuple[Any, ...]) -> dict[str, Any]:
        return {"version": row[1], "doc": orjson.loads(row[3])}

    @staticmethod
    def _trail_leaf_doc(row: tuple[Any, ...]) -> dict[str, Any]:
        return {"seq": row[1], "at_us": row[2], "actor": row[3], "action": row[4], "from_state": row[5],
                "to_state": row[6], "reason": row[7], "changes": orjson.loads(row[8])}

    def _chain(self, db: sqlite3.Connection, case_id: str, seqs: builtins.list[int] | None = None) -> None:
        """Chain the case as just written (read back from the transaction, so the leaves cover the
        stored bytes) and its new trail rows; last in the transaction, so a failure rolls all back."""
        if self.chain is None:
            return
        from access_audit.store.chain import leaf

        row = db.execute(self._CASE_SQL + " WHERE id=?", (case_id,)).fetchone()
        items: builtins.list[builtins.list[Any]] = [[case_id, leaf("case", case_id, self._case_leaf_doc(row)),
                                                     row[2] // 1_000_000]]
        trail = db.execute(self._TRAIL_SQL + " WHERE case_id=?" + ("" if seqs is None else
                           f" AND seq IN ({','.join('?' * len(seqs))})"), (case_id, *(seqs or []))).fetchall()
        for r in trail:
            rid = f"{case_id}#{r[1]}"
            items.append([rid, leaf("case", rid, self._trail_leaf_doc(r)), r[2] // 1_000_000])
        self.chain.append("case", items)

    def chained_records(self) -> Iterator[tuple[str, str, str, Any, int]]:
        """(kind, id, place, document as its leaf covers it, epoch seconds) of every case and trail
        row, for ``store.chain.verify``."""
        with self._lock:
            cases = self.db.execute(self._CASE_SQL).fetchall()
            trail = self.db.execute(self._TRAIL_SQL).fetchall()
        for r in cases:
            yield "case", r[0], f"breach.db cases {r[0]}", self._case_leaf_doc(r), r[2] // 1_000_000
        for r in trail:
            yield "case", f"{r[0]}#{r[1]}", f"breach.db audit {r[0]}#{r[1]}", self._trail_leaf_doc(r), r[2] // 1_000_000

    def get(self, case_id: str) -> BreachCase:
        with self._lock:
            row = self.db.execute("SELECT doc, version FROM cases WHERE id=?", (case_id,)).fetchone()
            if row is None:
                raise CaseNotFoundError(f"no breach case {case_id!r}", case_id=case_id)
            trail = self._trail(case_id)
        doc = orjson.loads(row[0])
        doc["version"] = row[1]
        doc["trail"] = trail
        return BreachCase.model_validate(doc)

    def _trail(self, case_id: str) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT seq, at_us, actor, action, from_state, to_state, reason, changes FROM audit"
                               " WHERE case_id=? ORDER BY seq", (case_id,)).fetchall()
        return [{"seq": r[0], "at": _dt(r[1]), "actor": r[2], "action": r[3], "from_state": r[4], "to_state": r[5],
                 "reason": r[6], "changes": orjson.loads(r[7])} for r in rows]

    def ids(self, *, state: str | None = None, open_only: bool = False) -> list[str]:
        sql = "SELECT id FROM cases"
        params: list[Any] = []
        if state:
            sql += " WHERE state=?"
            params.append(state)
        elif open_only:
            sql += " WHERE state != 'closed'"
        sql += " ORDER BY year, number"
        with self._lock:
            return [r[0] for r in self.db.execute(sql, params)]

    def cases_with_alerts(self, alert_ids: builtins.list[str]) -> dict[str, str]:
        """alert id -> the case that holds it as evidence (the oldest case when several do)."""
        if not alert_ids:
            return {}
        q = ("SELECT json_extract(j.value, '$.id'), c.id FROM cases c, json_each(c.doc, '$.alerts') j"
             f" WHERE json_extract(j.value, '$.id') IN ({','.join('?' * len(alert_ids))}) ORDER BY c.year DESC,"
             " c.number DESC")
        with self._lock:
            return dict(self.db.execute(q, list(alert_ids)).fetchall())

    def list(self, *, state: str | None = None, open_only: bool = False) -> list[BreachCase]:
        return [self.get(i) for i in self.ids(state=state, open_only=open_only)]

    # --- retention of closed cases (access_audit.retention, class "cases") ----------------------

    def _closed(self) -> builtins.list[tuple[str, datetime]]:
        with self._lock:
            rows = self.db.execute("SELECT id, json_extract(doc, '$.closed_at') FROM cases WHERE state='closed'"
                                   ).fetchall()
        return [(r[0], datetime.fromisoformat(r[1]).astimezone(UTC)) for r in rows if r[1]]

    def retention_days(self, cls: str) -> builtins.list[date]:
        """The UTC days on which cases were closed (only closed cases age out, GDPR Art. 33(5))."""
        return sorted({t.date() for _, t in self._closed()}) if cls == "cases" else []

    def count_day(self, cls: str, day: date) -> int:
        return sum(1 for _, t in self._closed() if t.date() == day) if cls == "cases" else 0

    def delete_day(self, cls: str, day: date) -> int:
        """Delete the cases closed on ``day`` with their audit trail and reminders; return how many."""
        if cls != "cases":
            return 0
        ids = [i for i, t in self._closed() if t.date() == day]
        with self._tx() as db:
            for i in ids:
                db.execute("DELETE FROM audit WHERE case_id=?", (i,))
                db.execute("DELETE FROM reminders WHERE case_id=?", (i,))
                db.execute("DELETE FROM cases WHERE id=? AND state='closed'", (i,))
            if self.chain is not None and ids:
                self.chain.append("retention", [], cls="cases", ids=ids, count=len(ids))
        return len(ids)

    # --- reminders sent -----------------------------------------------------------------------

    def claim_reminder(self, key: tuple[str, str, str, datetime], channel: str, now: datetime) -> bool:
        """Claim the right to send a reminder on ``channel``: True for exactly one caller, ever.

        A claim whose send failed is released with :meth:`release_reminder` so it is tried again.
        A process that dies between claiming and sending leaves a ``sending`` claim, which
        :meth:`stale_claims` reports so the scheduler can retry it (at least once, then once).
        """
        case_id, clock_id, offset_key, due = key
        with self._tx() as db:
            cur = db.execute("INSERT OR IGNORE INTO reminders (case_id, clock_id, offset_key, due_us, channel, status,"
                             " claimed_us) VALUES (?,?,?,?,?, 'sending', ?)",
                             (case_id, clock_id, offset_key, _us(due), channel, _us(now)))
            return cur.rowcount == 1

    def mark_reminder_sent(self, key: tuple[str, str, str, datetime], channel: str, now: datetime) -> None:
        case_id, clock_id, offset_key, due = key
        with self._tx() as db:
            db.execute("UPDATE reminders SET status='sent', sent_us=? WHERE case_id=? AND clock_id=? AND offset_key=?"
                       " AND due_us=? AND channel=?", (_us(now), case_id, clock_id, offset_key, _us(due), channel))

    def release_reminder(self, key: tuple[str, str, str, datetime], channel: str) -> None:
        case_id, clock_id, offset_key, due = key
        with self._tx() as db:
            db.execute("DELETE FROM reminders WHERE case_id=? AND clock_id=? AND offset_key=? AND due_us=?"
                       " AND channel=? AND status='sending'", (case_id, clock_id, offset_key, _us(due), channel))

    def reminder_sent(self, key: tuple[str, str, str, datetime], channel: str) -> bool:
        case_id, clock_id, offset_key, due = key
        with self._lock:
            return self.db.execute("SELECT 1 FROM reminders WHERE case_id=? AND clock_id=? AND offset_key=? AND"
                                   " due_us=? AND channel=?",
                                   (case_id, clock_id, offset_key, _us(due), channel)).fetchone() is not None

    def stale_claims(self, older_than: datetime) -> int:
        """Release ``sending`` claims older than ``older_than`` (their process died mid-send)."""
        with self._tx() as db:
            return db.execute("DELETE FROM reminders WHERE status='sending' AND claimed_us < ?",
                              (_us(older_than),)).rowcount

    def reminders_sent(self, case_id: str | None = None) -> builtins.list[dict[str, Any]]:
        sql = "SELECT case_id, clock_id, offset_key, due_us, channel, status, claimed_us, sent_us FROM reminders"
        params: list[Any] = []
        if case_id:
            sql += " WHERE case_id=?"
            params.append(case_id)
        with self._lock:
            rows = self.db.execute(sql + " ORDER BY claimed_us, case_id, clock_id, offset_key, channel",
                                   params).fetchall()
        return [{"case_id": r[0], "clock_id": r[1], "offset": r[2], "due": _dt(r[3]), "channel": r[4],
                 "status": r[5], "claimed_at": _dt(r[6]), "sent_at": _dt(r[7]) if r[7] else None} for r in rows]

    def close(self) -> None:
        with self._lock:
            self.db.close()
