"""A durable outbox on SQLite: every notification is written here before anything is sent.

Notifiers (Slack, webhook) write rows in ``emit``/``flush`` and a delivery step sends them later,
so an outage of the receiver never loses a notification and never stops the pipeline. The file
lives under the data directory (``<data_dir>/outbox.db``), apart from the event store.

A row's life::

    pending --claim--> sending --> sent
       ^                  |  \\--> failed       (a permanent error: the receiver refused it)
       \\---- retry ------/                      (429, 5xx, network: again at next_attempt_at)
    pending --> superseded | digested            (replaced by a newer row / summarised in a digest)

``sending`` is written before the request goes out. A row found in ``sending`` when the outbox is
opened was in flight during a crash: it goes back to ``pending`` with ``unsure`` set, and the
notifier checks the receiver before sending it again (so a message is not posted twice).

Rows are ordered by ``seq``; each notifier delivers one channel in that order (first in, first out).
``id`` is the idempotency key chosen by the notifier: enqueuing the same id twice keeps one row.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from access_audit.core.errors import NotifyError

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  sink TEXT NOT NULL,
  channel TEXT NOT NULL,
  op TEXT NOT NULL,
  ref TEXT,
  payload TEXT,
  meta TEXT,
  state TEXT NOT NULL,
  unsure INTEGER NOT NULL DEFAULT 0,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at REAL NOT NULL,
  created_at REAL NOT NULL,
  sent_at REAL,
  result TEXT,
  error TEXT
);
CREATE INDEX IF NOT EXISTS outbox_open ON outbox (sink, state, channel, seq);
CREATE INDEX IF NOT EXISTS outbox_ref ON outbox (ref, op, state);
CREATE TABLE IF NOT EXISTS outbox_kv (
  key TEXT PRIMARY KEY, value TEXT NOT NULL
);
"""

OPEN = ("pending", "sending")
STATES = ("pending", "sending", "sent", "failed", "superseded", "digested")


@dataclass(frozen=True)
class OutboxRow:
    seq: int
    id: str
    sink: str
    channel: str
    op: str
    ref: str | None
    payload: Any
    meta: dict[str, Any]
    state: str
    unsure: bool
    attempts: int
    next_attempt_at: float
    created_at: float
    sent_at: float | None
    result: Any
    error: str | None


_COLS = ("seq, id, sink, channel, op, ref, payload, meta, state, unsure, attempts, next_attempt_at, created_at,"
         " sent_at, result, error")


def _row(r: tuple[Any, ...]) -> OutboxRow:
    return OutboxRow(r[0], r[1], r[2], r[3], r[4], r[5], orjson.loads(r[6]) if r[6] is not None else None,
                     orjson.loads(r[7]) if r[7] else {}, r[8], bool(r[9]), r[10], r[11], r[12], r[13],
                     orjson.loads(r[14]) if r[14] is not None else None, r[15])


class Outbox:
    """The outbox file. Safe to share between threads (one connection, one re-entrant lock).

    Writes are committed with ``synchronous=FULL``: once ``enqueue`` (or the ``transaction`` it
    runs in) returns, the row survives a crash or power loss. Raises NotifyError when the file
    cannot be written; a sink's ``flush`` lets that propagate so the source is not committed.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._depth = 0
        self.db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=30)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(SCHEMA)
        # Rows that were in flight when the last process stopped: maybe sent, maybe not.
        self.db.execute("UPDATE outbox SET state='pending', unsure=1 WHERE state='sending'")

    # --- transactions -----------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Hold the lock and run the block in one transaction (nested blocks join the outer one)."""
        with self._lock:
            outer = self._depth == 0
            try:
                if outer:
                    self.db.execute("BEGIN IMMEDIATE")
                self._depth += 1
                try:
                    yield self.db
                finally:
                    self._depth -= 1
                if outer:
                    self.db.execute("COMMIT")
            except sqlite3.Error as e:
                if outer:
                    self._rollback()
                raise NotifyError(f"outbox {self.path}: {e}") from e
            except BaseException:
                if outer:
                    self._rollback()
                raise

    def _rollback(self) -> None:
        with suppress(sqlite3.Error):
            self.db.execute("ROLLBACK")

    # --- writes -----------------------------------------------------------------------------

    def enqueue(self, sink: str, id: str, channel: str, op: str, *, now: float, ref: str | None = None,
                payload: Any = None, meta: dict[str, Any] | None = None, not_before: float | None = None) -> bool:
        """Add a row unless one with this ``id`` exists; True when it was added."""
        with self.transaction() as db:
            cur = db.execute(
                "INSERT OR IGNORE INTO outbox (id, sink, channel, op, ref, payload, meta, state, next_attempt_at,"
                " created_at) VALUES (?,?,?,?,?,?,?,'pending',?,?)",
                (id, sink, channel, op, ref, None if payload is None else orjson.dumps(payload).decode(),
                 orjson.dumps(meta).decode() if meta else None, not_before if not_before is not None else now, now))
            return cur.rowcount > 0

    def claim(self, id: str) -> None:
        """Mark a row as in flight, just before its request goes out."""
        with self.transaction() as db:
            db.execute("UPDATE outbox SET state='sending', attempts=attempts+1 WHERE id=?", (id,))

    def mark_sent(self, id: str, *, now: float, result: Any = None) -> None:
        with self.transaction() as db:
            db.execute("UPDATE outbox SET state='sent', unsure=0, sent_at=?, result=?, error=NULL WHERE id=?",
                       (now, None if result is None else orjson.dumps(result).decode(), id))

    def retry(self, id: str, *, at: float, error: str, unsure: bool = False) -> None:
        """Back to pending, not before ``at``. ``unsure``: the last attempt may have been delivered."""
        with self.transaction() as db:
            db.execute("UPDATE outbox SET state='pending', next_attempt_at=?, error=?, unsure=max(unsure, ?)"
                       " WHERE id=?", (at, error[:500], int(unsure), id))

    def fail(self, id: str, *, error: str) -> None:
        with self.transaction() as db:
            db.execute("UPDATE outbox SET state='failed', error=? WHERE id=?", (error[:500], id))

    def set_state(self, ids: list[str], state: str) -> None:
        if state not in STATES:
            raise ValueError(state)
        with self.transaction() as db:
            db.executemany("UPDATE outbox SET state=? WHERE id=?", [(state, i) for i in ids])

    def requeue_failed(self, sink: str, *, now: float) -> int:
        """Send failed rows again (after the cause was fixed, e.g. the bot was invited to a channel)."""
        with self.transaction() as db:
            return db.execute("UPDATE outbox SET state='pending', next_attempt_at=?, error=NULL"
                              " WHERE sink=? AND state='failed'", (now, sink)).rowcount

    # --- reads ------------------------------------------------------------------------------

    def row(self, id: str) -> OutboxRow | None:
        with self._lock:
            r = self.db.execute(f"SELECT {_COLS} FROM outbox WHERE id=?", (id,)).fetchone()
        return _row(r) if r else None

    def open_rows(self, sink: str, channel: str | None = None, *, op: str | None = None,
                  ref: str | None = None) -> list[OutboxRow]:
        """Pending and in-flight rows, oldest first."""
        sql = f"SELECT {_COLS} FROM outbox WHERE sink=? AND state IN ('pending','sending')"
        params: list[Any] = [sink]
        for col, val in (("channel", channel), ("op", op), ("ref", ref)):
            if val is not None:
                sql += f" AND {col}=?"
                params.append(val)
        with self._lock:
            return [_row(r) for r in self.db.execute(sql + " ORDER BY seq", params)]

    def rows(self, sink: str, *, state: str | None = None, ref: str | None = None) -> list[OutboxRow]:
        sql = f"SELECT {_COLS} FROM outbox WHERE sink=?"
        params: list[Any] = [sink]
        if state is not None:
            sql += " AND state=?"
            params.append(state)
        if ref is not None:
            sql += " AND ref=?"
            params.append(ref)
        with self._lock:
            return [_row(r) for r in self.db.execute(sql + " ORDER BY seq", params)]

    def channels(self, sink: str) -> list[str]:
        """Channels with rows to deliver, in the order their oldest row was written."""
        with self._lock:
            return [r[0] for r in self.db.execute(
                "SELECT channel, min(seq) FROM outbox WHERE sink=? AND state IN ('pending','sending')"
                " GROUP BY channel ORDER BY 2", (sink,))]

    def counts(self, sink: str) -> dict[str, int]:
        with self._lock:
            return dict(self.db.execute("SELECT state, count(*) FROM outbox WHERE sink=? GROUP BY state", (sink,)))

    # --- small key/value state (channel ids, keys) -----------------------------------------

    def get(self, key: str) -> str | None:
        with self._lock:
            r = self.db.execute("SELECT value FROM outbox_kv WHERE key=?", (key,)).fetchone()
        return r[0] if r else None

    def put(self, key: str, value: str) -> None:
        with self.transaction() as db:
            db.execute("INSERT INTO outbox_kv (key, value) VALUES (?,?) ON CONFLICT(key) DO UPDATE SET"
                       " value=excluded.value", (key, value))

    def close(self) -> None:
        with self._lock:
            self.db.close()
