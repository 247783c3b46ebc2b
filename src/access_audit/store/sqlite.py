"""The embedded store: one SQLite file under the data directory, no server.

Events are keyed by their deterministic id (``INSERT OR IGNORE``), so a replay stores nothing
twice. Hot query fields have their own indexed columns; every other field is reached through
SQLite's JSON functions on the stored ECS document. Queries are always parameterised.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import logging
import os
import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

import orjson

from access_audit.core.alerts import Alert, keep_lifecycle
from access_audit.core.errors import StoreError
from access_audit.core.events import AccessEvent
from access_audit.core.fields import FIELD_TYPES, is_list_field
from access_audit.core.records import DeadLetter
from access_audit.store import aggregations as agg
from access_audit.store.query import And, Expr, MatchAll, Not, Or, Query, Term

log = logging.getLogger(__name__)


class StoreFullError(StoreError):
    """The embedded store's disk is full (SQLITE_FULL): the write was rolled back whole."""

#: The layout of the events table (kv ``meta.sqlite_layout``; a store without the record is layout 1).
#: 2 adds ``ip_key``: the source address as a sortable key (``ip_key``), indexed, so a CIDR query is
#: an index range instead of a scan of every row; and the user index carries the source address
#: (``events_user_ts_ip`` replaces ``events_user``), so "the source addresses of one user" is read
#: from the index alone instead of from each of the user's rows. ``SqliteStore`` upgrades a
#: layout-1 store when it opens it (``_upgrade``); tests/store/test_store_upgrade.py opens one
#: written by the old code.
LAYOUT = 2
LAYOUT_KEY = "meta.sqlite_layout"

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
  id TEXT PRIMARY KEY,
  ts_us INTEGER NOT NULL,
  dataset TEXT, action TEXT, outcome TEXT, user_name TEXT, source_ip TEXT, host_name TEXT, resource_name TEXT,
  doc TEXT NOT NULL,
  ip_key BLOB
);
CREATE INDEX IF NOT EXISTS events_ts ON events (ts_us, id);
CREATE INDEX IF NOT EXISTS events_user_ts_ip ON events (user_name, ts_us, source_ip);
CREATE INDEX IF NOT EXISTS events_ip ON events (source_ip, ts_us);
CREATE INDEX IF NOT EXISTS events_action ON events (action, ts_us);
CREATE INDEX IF NOT EXISTS events_resource ON events (resource_name, ts_us);
CREATE INDEX IF NOT EXISTS events_dataset ON events (dataset);
CREATE TABLE IF NOT EXISTS dead_letters (
  id TEXT PRIMARY KEY,
  received_us INTEGER NOT NULL,
  stage TEXT NOT NULL, reason TEXT NOT NULL, source TEXT, origin TEXT, log_type TEXT,
  raw BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS dead_letters_type ON dead_letters (log_type);
CREATE TABLE IF NOT EXISTS alerts (
  id TEXT PRIMARY KEY,
  rule_id TEXT NOT NULL, severity TEXT NOT NULL, status TEXT NOT NULL,
  first_seen_us INTEGER NOT NULL, last_seen_us INTEGER NOT NULL, count INTEGER NOT NULL,
  doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_rule ON alerts (rule_id, last_seen_us);
CREATE TABLE IF NOT EXISTS kv (
  key TEXT PRIMARY KEY, value BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS rule_state (
  ns TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL, PRIMARY KEY (ns, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS self_audit (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT UNIQUE NOT NULL,
  ts_us INTEGER NOT NULL,
  day TEXT NOT NULL,
  actor TEXT,
  doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS self_audit_ts ON self_audit (ts_us);
CREATE INDEX IF NOT EXISTS self_audit_day ON self_audit (day);
CREATE TABLE IF NOT EXISTS self_audit_deletable (day TEXT PRIMARY KEY);
CREATE TRIGGER IF NOT EXISTS self_audit_append_only BEFORE UPDATE ON self_audit
BEGIN SELECT RAISE(ABORT, 'the self-audit is append-only'); END;
CREATE TRIGGER IF NOT EXISTS self_audit_whole_days BEFORE DELETE ON self_audit
WHEN NOT EXISTS (SELECT 1 FROM self_audit_deletable WHERE day = OLD.day)
BEGIN SELECT RAISE(ABORT, 'the self-audit is append-only: only retention deletes, whole days'); END;
"""

COLUMNS = {
    "event.id": "id", "event.dataset": "dataset", "event.action": "action", "event.outcome": "outcome",
    "user.name": "user_name", "source.ip": "source_ip", "host.name": "host_name", "resource.name": "resource_name",
}


def _us(dt: datetime) -> int:
    return int(dt.timestamp() * 1_000_000)


def _from_us(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1_000_000, tz=UTC)


@lru_cache(maxsize=65536)
def ip_key(ip: Any) -> bytes | None:
    """A source address as a key that sorts by address: version byte, then the packed address
    (4 or 16 bytes). IPv4 and IPv6 stay apart, as they do for ``ipaddress`` (``::ffff:10.0.0.1``
    is not in ``10.0.0.0/8``), so a range of keys holds exactly the addresses ``cidr_match`` takes."""
    if not isinstance(ip, str):
        return None
    try:
        a = ipaddress.ip_address(ip)
    except ValueError:
        return None
    return bytes((a.version,)) + a.packed


def cidr_key_range(net: str) -> tuple[bytes, bytes] | None:
    """The first and last ``ip_key`` of a network, or None when ``net`` is not one."""
    try:
        n = _net(net)
    except (ValueError, TypeError):
        return None
    v = bytes((n.version,))
    return v + n.network_address.packed, v + n.broadcast_address.packed


def _cidr_match(ip: Any, net: str) -> int:
    if not isinstance(ip, str):
        return 0
    try:
        return int(ipaddress.ip_address(ip) in _net(net))
    except (ValueError, TypeError):
        return 0


@lru_cache(maxsize=256)
def _net(net: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(net, strict=False)


def _json_path(field_name: str) -> str:
    """The JSON path of a field, as the body of a SQL string literal: quotes doubled, because label
    keys come from the query text (``labels.<anything>``) and must never end the literal."""
    return ("$." + ".".join(f'"{p}"' for p in field_name.split("."))).replace("'", "''")


class SqliteStore:
    """EventStore on SQLite. Safe to share between threads (one connection, one lock)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        if not self.path.exists():  # personal data: readable by the service user only
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
        self.db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        # WAL: readers (the API, the CLI) never block the writer, and a batch is one append to the
        # log. synchronous=NORMAL: a commit is durable once the WAL is synced at checkpoints; a power
        # cut can lose the last batches but never corrupts the file, and the source replays them
        # (nothing is committed upstream before the store returns). A 64 MiB page cache and memory
        # temp store keep the index pages of a batch in memory; mmap lets reads skip a copy.
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA cache_size=-65536")
        self.db.execute("PRAGMA temp_store=MEMORY")
        self.db.execute("PRAGMA mmap_size=268435456")
        self.db.create_function("cidr_match", 2, _cidr_match, deterministic=True)
        self.db.create_function("ip_key", 1, ip_key, deterministic=True)
        self._upgrade()
        self.db.executescript(SCHEMA)
        self.db.execute("CREATE INDEX IF NOT EXISTS events_ip_key ON events (ip_key)")
        if self.db.execute("SELECT 1 FROM kv WHERE key = ?", (LAYOUT_KEY,)).fetchone() is None:
            self.db.execute("INSERT INTO kv (key, value) VALUES (?, ?)", (LAYOUT_KEY, str(LAYOUT).encode()))
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(OSError):
                os.chmod(f"{self.path}{suffix}", 0o600)

    def _upgrade(self) -> None:
        """Bring a store of an earlier layout to ``LAYOUT``, in one transaction (a crash leaves it
        as it was). Layout 1 -> 2: add ``ip_key`` and fill it from ``source_ip``, drop ``events_user``;
        the schema then makes the new indexes. A store of a later layout than this code knows is
        refused, not misread."""
        cols = {r[1] for r in self.db.execute("PRAGMA table_info(events)")}
        if not cols:
            return  # a new store: the schema makes layout 2
        has_kv = self.db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='kv'").fetchone()
        row = self.db.execute("SELECT value FROM kv WHERE key = ?", (LAYOUT_KEY,)).fetchone() if has_kv else None
        layout = int(row[0]) if row else 1
        if layout > LAYOUT:
            raise StoreError(f"sqlite: {self.path} has store layout {layout}, newer than this version of "
                             f"access-audit reads ({LAYOUT}): upgrade access-audit")
        if layout == LAYOUT and "ip_key" in cols:
            return
        n = self.db.execute("SELECT count(*) FROM events").fetchone()[0]
        log.warning("upgrading the store %s from layout %d to %d (%d events): a CIDR index on source.ip, "
                    "the user index with the source address",
                    self.path, layout, LAYOUT, n)
        try:
            self.db.execute("BEGIN IMMEDIATE")
            if "ip_key" not in cols:
                self.db.execute("ALTER TABLE events ADD COLUMN ip_key BLOB")
            self.db.execute("UPDATE events SET ip_key = ip_key(source_ip) WHERE source_ip IS NOT NULL")
            self.db.execute("DROP INDEX IF EXISTS events_user")  # the schema makes events_user_ts_ip
            self.db.execute("CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value BLOB NOT NULL)")
            self.db.execute("INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)", (LAYOUT_KEY, str(LAYOUT).encode()))
            self.db.execute("COMMIT")
        except sqlite3.Error as e:
            self._rollback()
            raise StoreError(f"sqlite: cannot upgrade {self.path} to layout {LAYOUT}: {e}") from e

    # --- writes ---------------------------------------------------------------------------

    def write_events(self, events: list[AccessEvent], docs: list[dict[str, Any]] | None = None) -> int:
        """``docs``: the events' documents when the caller made them already (the chain hashes
        the same documents it hands over, so each event is serialised once)."""
        rows = []
        for i, ev in enumerate(events):
            doc = docs[i] if docs is not None else ev.to_doc()
            ip = ev.source.ip if ev.source else None
            rows.append((
                ev.id, _us(ev.timestamp), ev.event.dataset, ev.event.action,
                ev.event.outcome.value if ev.event.outcome else None,
                ev.user.name if ev.user else None, ip,
                ev.host.name if ev.host else None, ev.resource.name if ev.resource else None,
                orjson.dumps(doc).decode(), ip_key(ip) if ip else None,
            ))
        with self._lock:
            try:
                before = self.db.total_changes
                self.db.execute("BEGIN")
                self.db.executemany(
                    "INSERT OR IGNORE INTO events (id, ts_us, dataset, action, outcome, user_name, source_ip,"
                    " host_name, resource_name, doc, ip_key) VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows)
                self.db.execute("COMMIT")
                return self.db.total_changes - before
            except sqlite3.Error as e:
                self._rollback()
                raise self._error("events", e) from e

    def existing_ids(self, ids: list[str]) -> set[str]:
        found: set[str] = set()
        with self._lock:
            for i in range(0, len(ids), 500):
                chunk = ids[i:i + 500]
                q = f"SELECT id FROM events WHERE id IN ({','.join('?' * len(chunk))})"
                found.update(r[0] for r in self.db.execute(q, chunk))
        return found

    def write_dead_letters(self, letters: list[DeadLetter]) -> None:
        if not letters:
            return
        rows = [(hashlib.blake2b(f"{d.origin}\x00{d.stage}".encode() + d.raw, digest_size=16).hexdigest(),
                 _us(d.received_at), d.stage, d.reason, d.source, d.origin, d.log_type, d.raw) for d in letters]
        with self._lock:
            try:
                self.db.execute("BEGIN")
                self.db.executemany(
                    "INSERT OR IGNORE INTO dead_letters (id, received_us, stage, reason, source, origin, log_type, raw)"
                    " VALUES (?,?,?,?,?,?,?,?)", rows)
                self.db.execute("COMMIT")
            except sqlite3.Error as e:
                self._rollback()
                raise self._error("dead letters", e) from e

    def write_alerts(self, alerts: list[Alert], *, lifecycle: bool = False) -> set[str]:
        """Insert or update alerts by id; return the ids this call created (not stored before): the
        one count of new alerts that agrees with the store by construction. Pipeline writes keep
        the stored status and history (see ``keep_lifecycle``); ``lifecycle=True`` writes are
        people's actions and replace them."""
        if not alerts:
            return set()
        docs = [a.to_doc() for a in alerts]
        with self._lock:
            stored = self._alert_lifecycles([a.id for a in alerts])
            created = {a.id for a in alerts} - set(stored)
            if not lifecycle:
                docs = [keep_lifecycle(d, stored.get(d["id"])) for d in docs]
            rows = [(d["id"], d["rule_id"], d["severity"], d["status"], _us(a.first_seen), _us(a.last_seen), d["count"],
                     orjson.dumps(d).decode()) for a, d in zip(alerts, docs, strict=True)]
            try:
                self.db.execute("BEGIN")
                self.db.executemany(
                    "INSERT INTO alerts (id, rule_id, severity, status, first_seen_us, last_seen_us, count, doc)"
                    " VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET status=excluded.status,"
                    " last_seen_us=max(alerts.last_seen_us, excluded.last_seen_us),"
                    " count=max(alerts.count, excluded.count), doc=excluded.doc", rows)
                self.db.execute("COMMIT")
            except sqlite3.Error as e:
                self._rollback()
                raise self._error("alerts", e) from e
        return created

    def _alert_docs(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            q = f"SELECT id, doc FROM alerts WHERE id IN ({','.join('?' * len(chunk))})"
            out.update((r[0], orjson.loads(r[1])) for r in self.db.execute(q, chunk))
        return out

    def _alert_lifecycles(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        """What ``keep_lifecycle`` reads of the stored alerts (status, history), without decoding
        whole documents: a pipeline write of 1,000 alerts read ~1,000 documents of several KB
        (evidence, context) in Python for two fields (profile of run, issue 10)."""
        out: dict[str, dict[str, Any]] = {}
        with self._lock:
            for i in range(0, len(ids), 500):
                chunk = ids[i:i + 500]
                q = (f"SELECT id, status, json_extract(doc, '$.context.history'), json_type(doc, '$.context.history')"
                     f" FROM alerts WHERE id IN ({','.join('?' * len(chunk))})")
                for aid, status, history, kind in self.db.execute(q, chunk):
                    doc: dict[str, Any] = {"status": status}
                    if history is not None:  # arrays and objects come back as JSON text, scalars as values
                        doc["context"] = {"history": orjson.loads(history) if kind in ("array", "object") else history}
                    out[aid] = doc
        return out

    def alerts_by_ids(self, ids: list[str]) -> dict[str, Alert]:
        with self._lock:
            docs = self._alert_docs(ids)
        return {i: Alert.model_validate(d) for i, d in docs.items()}

    def alert(self, alert_id: str) -> Alert | None:
        with self._lock:
            doc = self._alert_docs([alert_id]).get(alert_id)
        return Alert.model_validate(doc) if doc else None

    def _error(self, what: str, e: sqlite3.Error) -> StoreError:
        """A write failure as a StoreError; a full disk (SQLITE_FULL) as StoreFullError, which says
        that nothing of the batch was stored and that a rerun resumes."""
        if getattr(e, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "database or disk is full" in str(e):
            return StoreFullError(f"sqlite: the disk of {self.path} is full; cannot store {what}. Nothing of this "
                                  "batch was stored and the input was not acknowledged: free space (or move "
                                  "--data-dir) and run again; a replay stores nothing twice")
        return StoreError(f"sqlite: cannot store {what}: {e}")

    def _rollback(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.db.execute("ROLLBACK")

    def delete_events_older_than(self, days: int, now: datetime) -> int:
        """Retention (storage limitation): delete events older than ``days`` before ``now``;
        return how many. Alerts and dead letters are kept (they are the investigation record)."""
        if days < 1:
            raise ValueError("retention needs at least one day")
        cutoff = _us(now) - days * 86_400_000_000
        with self._lock:
            n = self.db.execute("DELETE FROM events WHERE ts_us < ?", (cutoff,)).rowcount
        return int(n)

    # --- retention by whole UTC days and legal holds (access_audit.retention) --------------

    #: data class -> (table, time column in epoch microseconds). ``self_audit`` is read when a
    #: ``self_audit`` table with an ``at_us`` column exists (the tamper-evidence work adds it).
    RETENTION_TABLES: ClassVar[dict[str, tuple[str, str]]] = {
        "events": ("events", "ts_us"), "dead_letters": ("dead_letters", "received_us"),
        "alerts": ("alerts", "last_seen_us"), "self_audit": ("self_audit", "at_us")}
    _DAY_US = 86_400_000_000

    def _retention_table(self, cls: str) -> tuple[str, str] | None:
        if cls not in self.RETENTION_TABLES:
            raise ValueError(f"unknown data class {cls!r}")
        table, col = self.RETENTION_TABLES[cls]
        with self._lock:
            cols = {r[1] for r in self.db.execute(f"PRAGMA table_info({table})")}
        return (table, col) if col in cols else None

    def retention_days(self, cls: str) -> list[date]:
        """The UTC days holding records of ``cls``, oldest first (one index seek per day)."""
        if cls == "self_audit":  # its own table, append-only (api.audit)
            return self._sa_retention_days(cls)
        t = self._retention_table(cls)
        if t is None:
            return []
        table, col = t
        days: list[date] = []
        with self._lock:
            nxt = self.db.execute(f"SELECT min({col}) FROM {table}").fetchone()[0]
            while nxt is not None:
                d = int(nxt) // self._DAY_US
                days.append(_from_us(d * self._DAY_US).date())
                nxt = self.db.execute(f"SELECT min({col}) FROM {table} WHERE {col} >= ?",
                                      ((d + 1) * self._DAY_US,)).fetchone()[0]
        return days

    def _day_range(self, day: date) -> tuple[int, int]:
        start = _us(datetime(day.year, day.month, day.day, tzinfo=UTC))
        return start, start + self._DAY_US

    def count_day(self, cls: str, day: date) -> int:
        if cls == "self_audit":  # its own table, append-only (api.audit)
            return self._sa_count_day(cls, day)
        t = self._retention_table(cls)
        if t is None:
            return 0
        table, col = t
        with self._lock:
            return int(self.db.execute(f"SELECT count(*) FROM {table} WHERE {col} >= ? AND {col} < ?",
                                       self._day_range(day)).fetchone()[0])

    def delete_day(self, cls: str, day: date) -> int:
        """Delete the records of ``cls`` in UTC day ``day`` in one transaction; return how many."""
        if cls == "self_audit":  # its own table, append-only (api.audit)
            return self._sa_delete_day(cls, day)
        t = self._retention_table(cls)
        if t is None:
            return 0
        table, col = t
        with self._lock:
            try:
                n = self.db.execute(f"DELETE FROM {table} WHERE {col} >= ? AND {col} < ?",
                                    self._day_range(day)).rowcount
            except sqlite3.Error as e:
                raise StoreError(f"sqlite: cannot delete {cls} of {day}: {e}") from e
        return int(n)

    def _holds_table(self) -> None:
        self.db.execute("CREATE TABLE IF NOT EXISTS legal_holds (id TEXT PRIMARY KEY, doc TEXT NOT NULL)")

    def legal_holds(self) -> list[dict[str, Any]]:
        """The stored legal holds (``access_audit.retention.LegalHold.to_doc()``), by id."""
        with self._lock:
            self._holds_table()
            return [orjson.loads(r[0]) for r in self.db.execute("SELECT doc FROM legal_holds ORDER BY id")]

    def put_legal_hold(self, hold: dict[str, Any]) -> None:
        """Insert or replace a legal hold by its ``id``."""
        with self._lock:
            self._holds_table()
            self.db.execute("INSERT INTO legal_holds (id, doc) VALUES (?, ?) ON CONFLICT(id) DO UPDATE SET"
                            " doc=excluded.doc", (str(hold["id"]), orjson.dumps(hold).decode()))

    # --- key/value state (rule state, outbox cursors) --------------------------------------

    def get_state(self, key: str) -> bytes | None:
        with self._lock:
            row = self.db.execute("SELECT value FROM kv WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def put_state(self, key: str, value: bytes) -> None:
        with self._lock:
            try:
                self.db.execute("INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET"
                                " value=excluded.value", (key, value))
            except sqlite3.Error as e:
                raise self._error("rule state", e) from e

    # --- rule state (detect.state.StateRows) ------------------------------------------------

    def write_state(self, upserts: list[tuple[str, str, bytes]], deletes: list[tuple[str, str]]) -> None:
        """One checkpoint's changed rows, in one transaction."""
        if not upserts and not deletes:
            return
        with self._lock:
            try:
                self.db.execute("BEGIN")
                if deletes:
                    self.db.executemany("DELETE FROM rule_state WHERE ns=? AND key=?", deletes)
                if upserts:
                    self.db.executemany("INSERT INTO rule_state (ns, key, value) VALUES (?,?,?) ON CONFLICT(ns, key)"
                                        " DO UPDATE SET value=excluded.value", upserts)
                self.db.execute("COMMIT")
            except sqlite3.Error as e:
                self._rollback()
                raise StoreError(f"sqlite: cannot write rule state: {e}") from e

    def read_state(self, namespace: str) -> Iterator[tuple[str, bytes]]:
        with self._lock:
            rows = self.db.execute("SELECT key, value FROM rule_state WHERE ns=?", (namespace,)).fetchall()
        yield from ((k, bytes(v)) for k, v in rows)

    def drop_state(self, namespace: str) -> None:
        with self._lock:
            self.db.execute("DELETE FROM rule_state WHERE ns=?", (namespace,))

    def state_namespaces(self) -> dict[str, tuple[int, int]]:
        """Rule state per namespace: (rows, bytes) — for ``status`` and the benchmark."""
        with self._lock:
            return {ns: (n, b) for ns, n, b in self.db.execute(
                "SELECT ns, count(*), sum(length(key) + length(value)) FROM rule_state GROUP BY ns")}

    # --- reads ----------------------------------------------------------------------------

    def search(self, query: Query) -> list[AccessEvent]:
        return [AccessEvent.from_doc(orjson.loads(d)) for d in self._select("doc", query)]

    def count(self, query: Query) -> int:
        where, params = self._where(query)
        with self._lock:
            return int(self.db.execute(f"SELECT count(*) FROM events WHERE {where}", params).fetchone()[0])

    def aggregate(self, query: Query, field: str, size: int = 10) -> list[tuple[Any, int]]:
        """The ``size`` most frequent values of ``field`` among the events matching ``query`` (its
        limit and cursor are ignored), as (value, events); see ``store.aggregations``."""
        agg.check_terms_field(field, size)
        where, params = self._where(_whole(query))
        expr, is_list = _field_sql(field)
        if is_list:
            sql = (f"SELECT j.value AS k, count(DISTINCT e.id) AS n FROM (SELECT id, doc FROM events WHERE {where})"
                   f" AS e, json_each(e.doc, '{_json_path(field)}') AS j WHERE j.value IS NOT NULL"
                   " GROUP BY k ORDER BY n DESC, k ASC LIMIT ?")
        else:
            sql = (f"SELECT {expr} AS k, count(*) AS n FROM events WHERE {where} AND {expr} IS NOT NULL"
                   " GROUP BY k ORDER BY n DESC, k ASC LIMIT ?")
        with self._lock:
            return [(r[0], int(r[1])) for r in self.db.execute(sql, [*params, size])]

    def histogram(self, query: Query, interval: str) -> list[tuple[datetime, int]]:
        """Events per fixed ``interval`` ('1h', '1d'...) of @timestamp, epoch-aligned UTC buckets,
        empty buckets filled (see ``store.aggregations``)."""
        secs = agg.interval_seconds(interval)
        agg.check_span(query, secs)
        where, params = self._where(_whole(query))
        step = secs * 1_000_000
        sql = f"SELECT (ts_us / ?) * ? AS b, count(*) FROM events WHERE {where} GROUP BY b ORDER BY b"
        with self._lock:
            rows = self.db.execute(sql, [step, step, *params]).fetchall()
        return agg.fill({_from_us(int(b)): int(n) for b, n in rows}, query, secs)

    def _where(self, query: Query) -> tuple[str, list[Any]]:
        params: list[Any] = []
        clauses = [_sql(query.expr, params)]
        if query.since:
            clauses.append("ts_us >= ?")
            params.append(_us(query.since))
        if query.until:
            clauses.append("ts_us < ?")
            params.append(_us(query.until))
        if query.after:
            ts, eid = query.after
            t = _us(datetime.fromisoformat(ts.replace("Z", "+00:00")))
            cmp = "<" if query.order == "desc" else ">"
            clauses.append(f"(ts_us {cmp} ? OR (ts_us = ? AND id {cmp} ?))")
            params += [t, t, eid]
        return " AND ".join(clauses), params

    def _select(self, cols: str, query: Query) -> list[Any]:
        where, params = self._where(query)
        order = "DESC" if query.order == "desc" else "ASC"
        sql = f"SELECT {cols} FROM events WHERE {where} ORDER BY ts_us {order}, id {order} LIMIT ?"
        with self._lock:
            return [r[0] for r in self.db.execute(sql, [*params, max(0, int(query.limit))])]

    def alerts(self, *, rule_id: str | None = None, limit: int = 100) -> list[Alert]:
        sql = "SELECT doc FROM alerts"
        params: list[Any] = []
        if rule_id:
            sql += " WHERE rule_id = ?"
            params.append(rule_id)
        sql += " ORDER BY last_seen_us DESC, id LIMIT ?"
        with self._lock:
            return [Alert.model_validate(orjson.loads(r[0])) for r in self.db.execute(sql, [*params, limit])]

    def dead_letters(self, limit: int = 100) -> list[dict[str, Any]]:
        return [{"id": did, **d.to_row()} for did, d in self.dead_letter_records(limit)]

    def dead_letter_records(self, limit: int = 100) -> list[tuple[str, DeadLetter]]:
        """(id, dead letter with its exact raw bytes), oldest first: for show and replay."""
        with self._lock:
            rows = self.db.execute(
                "SELECT id, received_us, stage, reason, source, origin, log_type, raw FROM dead_letters"
                " ORDER BY received_us, origin LIMIT ?", (limit,)).fetchall()
        return [(r[0], DeadLetter(raw=bytes(r[7]), reason=r[3], source=r[4], origin=r[5], log_type=r[6], stage=r[2],
                                  received_at=_from_us(r[1]))) for r in rows]

    def stats(self) -> dict[str, Any]:
        with self._lock:
            ev = dict(self.db.execute("SELECT coalesce(dataset, '?'), count(*) FROM events GROUP BY 1").fetchall())
            dl = dict(self.db.execute(
                "SELECT coalesce(log_type, 'unknown'), count(*) FROM dead_letters GROUP BY 1").fetchall())
            reasons = self.db.execute(
                "SELECT reason, count(*) FROM dead_letters GROUP BY 1 ORDER BY 2 DESC LIMIT 10").fetchall()
            al = {r[0]: {"alerts": r[1], "events": r[2]} for r in self.db.execute(
                "SELECT rule_id, count(*), sum(count) FROM alerts GROUP BY 1 ORDER BY 1")}
        return {
            "events": {"total": sum(ev.values()), "by_log_type": ev},
            "dead_letters": {"total": sum(dl.values()), "by_log_type": dl,
                             "top_reasons": [{"reason": r, "count": c} for r, c in reasons]},
            "alerts": {"total": sum(v["alerts"] for v in al.values()), "by_rule": al},
        }

    # --- the self-audit: who read what (apart from the access events, append-only) ----------

    def write_self_audit(self, records: list[dict[str, Any]]) -> None:
        """Append self-audit records (``access_audit.api.audit``): never updated, deleted by whole
        UTC days through retention only (triggers refuse anything else). Raises StoreError."""
        rows = []
        for r in records:
            ts = datetime.fromisoformat(r["@timestamp"])
            rows.append((r["id"], _us(ts), ts.astimezone(UTC).date().isoformat(), r.get("actor"),
                         orjson.dumps(r).decode()))
        with self._lock:
            try:
                self.db.execute("BEGIN")
                self.db.executemany("INSERT INTO self_audit (id, ts_us, day, actor, doc) VALUES (?,?,?,?,?)", rows)
                self.db.execute("COMMIT")
            except sqlite3.Error as e:
                self._rollback()
                raise StoreError(f"sqlite: cannot write the self-audit: {e}") from e

    def self_audit(self, *, since: datetime | None = None, until: datetime | None = None,
                   actor: str | None = None, subject_id: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Self-audit records, newest first; ``subject_id``: those whose query named that subject."""
        clauses: list[str] = ["1"]
        params: list[Any] = []
        if since:
            clauses.append("ts_us >= ?")
            params.append(_us(since))
        if until:
            clauses.append("ts_us < ?")
            params.append(_us(until))
        if actor:
            clauses.append("actor = ?")
            params.append(actor)
        if subject_id:
            clauses.append("EXISTS (SELECT 1 FROM json_each(doc, '$.subject_ids') WHERE value = ?)")
            params.append(subject_id)
        sql = f"SELECT doc FROM self_audit WHERE {' AND '.join(clauses)} ORDER BY ts_us DESC, seq DESC LIMIT ?"
        with self._lock:
            return [orjson.loads(r[0]) for r in self.db.execute(sql, [*params, max(0, int(limit))])]

    # --- retention port (docs/design/decisions.md section 5) ---------------------------------

    def _sa_retention_days(self, cls: str) -> list[date]:
        """The UTC days that hold records of data class ``cls``, oldest first."""
        _self_audit_only(cls)
        with self._lock:
            return [date.fromisoformat(r[0]) for r in self.db.execute(
                "SELECT DISTINCT day FROM self_audit ORDER BY day")]

    def _sa_count_day(self, cls: str, day: date) -> int:
        _self_audit_only(cls)
        with self._lock:
            return int(self.db.execute("SELECT count(*) FROM self_audit WHERE day = ?",
                                       (day.isoformat(),)).fetchone()[0])

    def _sa_delete_day(self, cls: str, day: date) -> int:
        """Delete one whole UTC day of ``cls``; return how many records went."""
        _self_audit_only(cls)
        with self._lock:
            try:
                self.db.execute("BEGIN")
                self.db.execute("INSERT OR IGNORE INTO self_audit_deletable (day) VALUES (?)", (day.isoformat(),))
                n = self.db.execute("DELETE FROM self_audit WHERE day = ?", (day.isoformat(),)).rowcount
                self.db.execute("DELETE FROM self_audit_deletable WHERE day = ?", (day.isoformat(),))
                self.db.execute("COMMIT")
            except sqlite3.Error as e:
                self._rollback()
                raise StoreError(f"sqlite: cannot delete {cls} of {day}: {e}") from e
        return int(n)

    def close(self) -> None:
        with self._lock:
            self.db.close()


def _self_audit_only(cls: str) -> None:
    if cls != "self_audit":  # the other classes: access_audit.retention (issue 15)
        raise ValueError(f"unknown data class {cls!r} for this store method")


def _whole(query: Query) -> Query:
    """The query without its page (limit, cursor): what an aggregation counts."""
    return Query(expr=query.expr, since=query.since, until=query.until, limit=0, order=query.order)


def _field_sql(field_name: str) -> tuple[str, bool]:
    """SQL expression for a field, and whether it is a list (needs json_each)."""
    if field_name == "@timestamp":
        return "ts_us", False
    col = COLUMNS.get(field_name)
    if col:
        return col, False
    return f"json_extract(doc, '{_json_path(field_name)}')", is_list_field(field_name)


def _param(field_name: str, value: Any) -> Any:
    t = FIELD_TYPES.get(field_name)
    if t is bool and isinstance(value, str):
        return 1 if value.lower() in ("true", "1", "yes") else 0
    if t in (int, float) and isinstance(value, str):
        try:
            return int(value) if t is int else float(value)
        except ValueError:
            return value
    return value


def _sql(e: Expr, params: list[Any]) -> str:
    if isinstance(e, MatchAll):
        return "1"
    if isinstance(e, And):
        return "(" + " AND ".join(_sql(x, params) for x in e.items) + ")"
    if isinstance(e, Or):
        return "(" + " OR ".join(_sql(x, params) for x in e.items) + ")"
    if isinstance(e, Not):
        return f"NOT coalesce({_sql(e.item, params)}, 0)"
    assert isinstance(e, Term)
    if e.op == "text":
        params += [str(e.value).lower(), str(e.value).lower()]
        return ("(instr(lower(coalesce(json_extract(doc, '$.message'), '')), ?) > 0"
                " OR instr(lower(coalesce(json_extract(doc, '$.event.original'), '')), ?) > 0)")
    expr, is_list = _field_sql(e.field)
    target = "value" if is_list else expr
    if e.field == "@timestamp" and e.op in ("gt", "gte", "lt", "lte"):
        value: Any = _us(datetime.fromisoformat(str(e.value)))
    else:
        value = _param(e.field, e.value)
    if e.op == "eq":
        cond = f"{target} = ?"
        params.append(value)
    elif e.op == "prefix":
        cond = f"substr({target}, 1, ?) = ?"
        params += [len(str(value)), str(value)]
    elif e.op == "cidr" and e.field == "source.ip":
        # the indexed key (layout 2): an index range holds exactly what cidr_match takes
        rng = cidr_key_range(str(value))
        if rng is None:
            return "0"  # not a network: cidr_match matches nothing either
        cond = "ip_key BETWEEN ? AND ?"
        params += list(rng)
    elif e.op == "cidr":
        cond = f"cidr_match({target}, ?)"
        params.append(value)
    elif e.op == "exists":
        cond = f"{target} IS NOT NULL"
    else:
        cond = f"{target} {dict(gt='>', gte='>=', lt='<', lte='<=')[e.op]} ?"
        params.append(value)
    if is_list:
        return f"EXISTS (SELECT 1 FROM json_each(doc, '{_json_path(e.field)}') WHERE {cond})"
    return cond
