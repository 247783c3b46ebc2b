"""Tamper evidence: every stored record is chained, per writer and per batch, in the store and
outside it, so that ``access-audit verify`` finds every record altered, deleted or inserted
behind the application's back.

The scheme
----------
- A record's **leaf** is ``blake2b-128("aa-chain-v1" \\0 kind \\0 id \\0 canonical JSON)`` of the
  document exactly as the store keeps it (sorted keys). Kinds: ``event``, ``dead_letter``,
  ``alert`` (each *version*: a counter update or an acknowledgement chains the new document),
  ``self_audit`` (``ChainedStore.write_self_audit``: every record of the self-audit), and any other
  kind a module appends: ``case`` (``breach/repo.py``: each version of a case document, id
  the case id, and each row of its append-only trail, id ``<case>#<seq>``).
- A **writer** is one ``ChainedStore`` (one worker process, one CLI run): it has its own id
  and its own chain, so N writers never coordinate. Each batch the writer stores becomes one
  **entry** ``{writer, seq, prev, at, kind, items: [[id, leaf, epoch seconds], ...]}`` whose
  ``hash`` covers everything in it and ``prev`` is the hash of the writer's previous entry;
  ``mac`` is an HMAC-SHA256 of the hash with a key the store does not hold.
- Entries live in the store (SQLite table ``chain``; Elasticsearch index ``<prefix>-chain``),
  and every entry's ``(writer, seq, hash, mac)`` is appended to an **anchor** file outside it.
- Verification is by record set, not by batch boundary: a record is fine when its stored leaf is
  one of the leaves chained for its id (events, dead letters) or the latest chained version (an
  alert). So replays that cut batches differently, a record chained twice by two workers after a
  rebalance, or a batch chained and then retried after a crash all verify.
- Events are chained *before* they are written (write-ahead): a crash in between leaves a
  chained record that the replay then stores; never a stored record the chain does not know.
- Retention deletes whole days (or everything before a cutoff) and appends a ``retention``
  entry ``{cls, day | before, count}``: records of a deleted period are expected to be gone.

Threat model (who can edit what)
--------------------------------
Detected: anyone with write access to the store but not to the chain key and the anchor (a DBA,
an Elasticsearch admin, someone who copies and edits ``events.db``) who alters, deletes or
inserts records, alters, deletes or forges chain entries (no key: the MAC fails), truncates a
writer's chain (the anchor lists its entries), or deletes a period without the retention entry.
Not detected: someone who holds the key *and* rewrites the anchor (the application host itself).
Keep the key out of the store (``ACCESS_AUDIT_CHAIN_KEY_FILE`` on a secret mount) and ship the
anchor to append-only storage (``chattr +a``, WORM bucket, a syslog collector). In the embedded
default both sit in the data directory next to ``events.db``: that catches edits of the database
file, not an attacker who owns the whole data directory.

An alert verifies when it holds any version that was chained for it: a version is chained before
it is written, so a crash between the two leaves the older, also chained, version in place. The
price: putting an alert back to an older version it really had is not reported (a status or a
counter it never had is).

Erasure (Art. 17, ``store/erasure.py``) rewrites a subject's events with their personal data
made unreadable. It chains the erased documents first, in an ``erasure`` entry (``of``: the
record kind; the request id and a count, never the subject): from then on only the latest erased
version of each of those records verifies, so putting the personal data back is reported as
``altered``. Any other document rewritten after chaining is, by design, reported as altered.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import itertools
import logging
import os
import secrets
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import orjson

from access_audit.core.alerts import Alert, keep_lifecycle
from access_audit.core.events import AccessEvent
from access_audit.core.records import DeadLetter

log = logging.getLogger(__name__)

VERSION = b"aa-chain-v1"
EPOCH_DAY = date(1970, 1, 1).toordinal()

# --- retention hook (docs/design/decisions.md §5) ------------------------------------------------

_DAY_DELETED: list[Callable[[str, date, int], None]] = []


def subscribe_day_deleted(fn: Callable[[str, date, int], None]) -> Callable[[], None]:
    """Call ``fn(cls, day, count)`` after retention deleted ``day`` of data class ``cls``; returns
    the unsubscribe function. The chain subscribes itself when a ``ChainedStore`` is built."""
    _DAY_DELETED.append(fn)
    return lambda: _DAY_DELETED.remove(fn) if fn in _DAY_DELETED else None


def on_day_deleted(cls: str, day: date, count: int) -> None:
    """The hook retention calls after ``delete_day(cls, day)`` returned ``count``. A subscriber that
    fails raises: the deletion is then not recorded, and verify will report it."""
    for fn in list(_DAY_DELETED):
        fn(cls, day, count)


# --- leaves ---------------------------------------------------------------------------------------

def canonical(doc: Any) -> bytes:
    return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)


def leaf(kind: str, rid: str, doc: Any) -> str:
    h = hashlib.blake2b(digest_size=16)
    h.update(VERSION + b"\x00" + kind.encode() + b"\x00" + rid.encode() + b"\x00")
    h.update(canonical(doc))
    return h.hexdigest()


def dead_letter_doc(rid: str, reason: str, stage: str, source: Any, origin: Any, log_type: Any,
                    raw: bytes) -> dict[str, Any]:
    """The part of a dead letter both stores keep alike (what its leaf covers)."""
    return {"id": rid, "reason": reason, "stage": stage, "source": source, "origin": origin, "log_type": log_type,
            "raw_b64": base64.b64encode(raw).decode("ascii")}


def _dl_id(d: DeadLetter) -> str:
    return hashlib.blake2b(f"{d.origin}\x00{d.stage}".encode() + d.raw, digest_size=16).hexdigest()


def _lifecycle_of(doc: dict[str, Any]) -> tuple[Any, Any]:
    """(status, history) of an alert document: what people change and ``keep_lifecycle`` keeps."""
    return doc.get("status"), (doc.get("context") or {}).get("history") or None


def _ts(doc: dict[str, Any], key: str) -> int:
    v = doc.get(key)
    if not isinstance(v, str):
        return 0
    try:
        return int(datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return 0


def _entry_hash(e: dict[str, Any]) -> str:
    body = {k: v for k, v in e.items() if k not in ("hash", "mac")}
    return hashlib.blake2b(VERSION + b"\x00entry\x00" + canonical(body), digest_size=32).hexdigest()


# --- where entries are kept -------------------------------------------------------------------------

class SqliteLog:
    """Entries in a ``chain`` table of a SQLite database: the event store's, or the breach
    repository's (``breach.db``: a case change and its entry commit in one transaction)."""

    def __init__(self, store: Any) -> None:
        self.store = store
        with store._lock:
            store.db.execute("CREATE TABLE IF NOT EXISTS chain (writer TEXT NOT NULL, seq INTEGER NOT NULL,"
                             " at_us INTEGER NOT NULL, kind TEXT NOT NULL, entry TEXT NOT NULL,"
                             " PRIMARY KEY (writer, seq))")

    def put(self, e: dict[str, Any]) -> None:
        import sqlite3

        with self.store._lock:
            try:
                self.store.db.execute("INSERT OR REPLACE INTO chain (writer, seq, at_us, kind, entry)"
                                      " VALUES (?,?,?,?,?)",
                                      (e["writer"], e["seq"], int(e["at"] * 1e6), e["kind"], canonical(e).decode()))
            except sqlite3.Error as err:
                if hasattr(self.store, "_error"):
                    raise self.store._error("the chain entry", err) from err
                raise

    def entries(self) -> Iterator[dict[str, Any]]:
        with self.store._lock:
            rows = self.store.db.execute("SELECT entry FROM chain ORDER BY writer, seq").fetchall()
        for (text,) in rows:
            yield orjson.loads(text)


class _EsLog:
    def __init__(self, store: Any) -> None:
        self.store = store
        self.index = f"{store.prefix}-chain"
        r = store._call("create the chain index", store.es.options(ignore_status=400).indices.create,
                        index=self.index, settings={"index": {"number_of_shards": 1}},
                        mappings={"dynamic": False, "properties": {
                            "writer": {"type": "keyword"}, "seq": {"type": "long"}, "kind": {"type": "keyword"},
                            "at": {"type": "double"}, "entry": {"type": "keyword", "index": False,
                                                                "doc_values": False}}})
        if r.meta.status == 400 and r.body.get("error", {}).get("type") != "resource_already_exists_exception":
            from access_audit.core.errors import StoreError

            raise StoreError(f"elasticsearch: cannot create {self.index}: {r.body.get('error')}")

    def put(self, e: dict[str, Any]) -> None:
        self.store._call("write the chain entry", self.store.es.index, index=self.index, id=f"{e['writer']}/{e['seq']}",
                         document={"writer": e["writer"], "seq": e["seq"], "kind": e["kind"], "at": e["at"],
                                   "entry": canonical(e).decode()})

    def entries(self) -> Iterator[dict[str, Any]]:
        s = self.store
        s._call("refresh", s.es.indices.refresh, index=self.index, ignore_unavailable=True)
        for h in s._paged(self.index, {"match_all": {}}, [{"writer": "asc"}, {"seq": "asc"}], 1 << 40):
            yield orjson.loads(h["_source"]["entry"])


def _log_for(store: Any) -> Any:
    from access_audit.store.sqlite import SqliteStore

    if isinstance(store, SqliteStore):
        return SqliteLog(store)
    return _EsLog(store)


# --- the chain --------------------------------------------------------------------------------------

def load_key(path: Path) -> bytes:
    """The MAC key; created (random, mode 0600) when the file does not exist yet."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(secrets.token_hex(32).encode())
    return path.read_bytes().strip()


class Chain:
    """One writer's chain. ``append`` is called once per stored batch; thread-safe."""

    def __init__(self, entries: Any, key: bytes, anchor: Path, *, writer: str | None = None,
                 clock: Callable[[], float] | None = None) -> None:
        self.log = entries
        self.key = key
        self.anchor = anchor
        self.writer = writer or f"{os.uname().nodename}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.seq = 0
        self.prev = ""
        self._clock = clock or (lambda: datetime.now(UTC).timestamp())
        self._lock = threading.Lock()

    def mac(self, h: str) -> str:
        return hmac.new(self.key, h.encode(), hashlib.sha256).hexdigest()

    def append(self, kind: str, items: list[list[Any]], **extra: Any) -> dict[str, Any]:
        """Chain one batch: ``items`` are ``[id, leaf, epoch seconds]``. Stored in the store first,
        then anchored; raises (StoreUnavailableError...) when the store cannot take it, and then
        the writer's position does not move, so the retry reuses the same seq."""
        with self._lock:
            e: dict[str, Any] = {"v": 1, "writer": self.writer, "seq": self.seq, "prev": self.prev,
                                 "at": self._clock(), "kind": kind, "items": items, **extra}
            e["hash"] = _entry_hash(e)
            e["mac"] = self.mac(e["hash"])
            self.log.put(e)
            line = canonical({"writer": e["writer"], "seq": e["seq"], "hash": e["hash"], "mac": e["mac"]}) + b"\n"
            self.anchor.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.anchor, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            try:
                os.write(fd, line)  # one write of one line: atomic with O_APPEND
            finally:
                os.close(fd)
            self.seq += 1
            self.prev = e["hash"]
            return e

    def record_deletion(self, cls: str, *, day: date | None = None, before: datetime | None = None,
                        count: int = -1) -> None:
        extra: dict[str, Any] = {"cls": cls, "count": count}
        if day is not None:
            extra["day"] = day.isoformat()
        if before is not None:
            extra["before"] = int(before.timestamp())
        self.append("retention", [], **extra)


# --- the wrapper ------------------------------------------------------------------------------------

class ChainedStore:
    """An EventStore that chains what it stores. Everything else is passed to the wrapped store.

    ``write_events`` chains the batch's events the store does not hold yet, then writes (a replay
    chains nothing); ``write_dead_letters`` likewise; ``write_alerts`` writes, reads back what the
    store now keeps (after ``keep_lifecycle``, versioning) and chains those versions.
    """

    def __init__(self, inner: Any, chain: Chain) -> None:
        self.inner = inner
        self.chain = chain
        self._unsubscribe = subscribe_day_deleted(self._day_deleted)

    @classmethod
    def wrap(cls, inner: Any, key_file: Path, anchor: Path, writer: str | None = None) -> ChainedStore:
        return cls(inner, Chain(_log_for(inner), load_key(key_file), anchor, writer=writer))

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)  # AttributeError when the store has no such thing
        if name in ("delete_day", "delete_events_older_than", "delete_indices_older_than"):
            return getattr(self, "_" + name)
        return attr

    def write_events(self, events: list[AccessEvent]) -> int:
        if not events:
            return int(self.inner.write_events(events))
        have = self.inner.existing_ids([e.id for e in events])
        docs = [ev.to_doc() for ev in events]  # made once: the leaf covers the document the store gets
        items = [[ev.id, leaf("event", ev.id, doc), int(ev.timestamp.timestamp())]
                 for ev, doc in zip(events, docs, strict=True) if ev.id not in have]
        if items:
            self.chain.append("event", items)
        return int(self.inner.write_events(events, docs=docs))

    def write_dead_letters(self, letters: list[DeadLetter]) -> None:
        if letters:
            items = []
            for d in letters:
                rid = _dl_id(d)
                items.append([rid, leaf("dead_letter", rid, dead_letter_doc(rid, d.reason, d.stage, d.source,
                                                                            d.origin, d.log_type, d.raw)),
                              int(d.received_at.timestamp())])
            self.chain.append("dead_letter", items)
        self.inner.write_dead_letters(letters)

    def write_self_audit(self, records: list[dict[str, Any]]) -> None:
        """Chain the self-audit records (kind ``self_audit``) before writing them: the self-audit is
        append-only in the store (SQLite triggers, ``op_type=create``), and an edit or delete made
        behind those (a dropped trigger, a re-indexed day) is found by ``verify`` like any other."""
        if records:
            self.chain.append("self_audit", [[r["id"], leaf("self_audit", r["id"], r), _ts(r, "@timestamp")]
                                             for r in records])
        self.inner.write_self_audit(records)

    def write_alerts(self, alerts: list[Alert], **kw: Any) -> Any:
        """Chain each alert version before writing it (as the store will keep it: ``keep_lifecycle``
        for pipeline writes), then chain what the store actually kept if that differs (a refused
        lower counter, a concurrent writer): a crash in between leaves a chained version, never an
        unchained one."""
        if not alerts:
            return self.inner.write_alerts(alerts, **kw)
        ids = [a.id for a in alerts]
        # A store that keeps exactly the document it is given, with the stored status and history
        # (SQLite), tells those two cheaply: the version it kept differs from ours only where they
        # changed in between. Other stores (Elasticsearch refuses a lower counter) are read whole.
        light = getattr(self.inner, "_alert_lifecycles", None)
        before = light(ids) if light is not None else self.inner._alert_docs(ids)
        ahead: dict[str, str] = {}
        kept: dict[str, tuple[Any, Any]] = {}
        items = []
        for a in alerts:
            doc = a.to_doc()
            if not kw.get("lifecycle"):
                doc = keep_lifecycle(doc, before.get(a.id))
            ahead[a.id] = leaf("alert", a.id, doc)
            kept[a.id] = _lifecycle_of(doc)
            items.append([a.id, ahead[a.id], _ts(doc, "first_seen")])
        self.chain.append("alert", items)
        res = self.inner.write_alerts(alerts, **kw)
        if light is not None:
            moved = [aid for aid, doc in light(ids).items() if _lifecycle_of(doc) != kept.get(aid)]
            after = self.inner._alert_docs(moved) if moved else {}
        else:
            after = self.inner._alert_docs(ids)
        late = []
        for aid, doc in after.items():
            h = leaf("alert", aid, doc)
            if h != ahead.get(aid):
                late.append([aid, h, _ts(doc, "first_seen")])
        if late:
            self.chain.append("alert", late)
        return res

    # Deletions: wrapped only where the store has them (callers test with hasattr).
    def _delete_day(self, cls: str, day: date) -> int:
        n = int(self.inner.delete_day(cls, day))
        self.chain.record_deletion(cls, day=day, count=n)
        return n

    def _delete_events_older_than(self, days: int, now: datetime) -> int:
        from datetime import timedelta

        n = int(self.inner.delete_events_older_than(days, now))
        self.chain.record_deletion("events", before=now - timedelta(days=days), count=n)
        return n

    def _delete_indices_older_than(self, days: int, now: datetime) -> list[str]:
        names: list[str] = self.inner.delete_indices_older_than(days, now)
        for name in names:
            m = self.inner._daily.fullmatch(name)
            if m:
                self.chain.record_deletion("events", day=date(int(m[1]), int(m[2]), int(m[3])))
        return names

    def _day_deleted(self, cls: str, day: date, count: int) -> None:
        self.chain.record_deletion(cls, day=day, count=count)

    def close(self) -> None:
        self._unsubscribe()
        self.inner.close()


# --- verification -----------------------------------------------------------------------------------

@dataclass
class Finding:
    problem: str  # altered | deleted | inserted | chain_altered | chain_missing | chain_forged
    kind: str
    id: str
    where: str  # the record's place in the store
    chain: str = ""  # the chain entry (writer/seq) that covers it
    detail: str = ""

    def to_json(self) -> dict[str, str]:
        return {k: v for k, v in self.__dict__.items() if v}


@dataclass
class Report:
    entries: int = 0
    writers: int = 0
    records: dict[str, int] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    unanchored: int = 0

    @property
    def ok(self) -> bool:
        return not self.findings

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "entries": self.entries, "writers": self.writers, "records": self.records,
                "unanchored_entries": self.unanchored, "findings": [f.to_json() for f in self.findings]}


def _read_anchor(path: Path) -> dict[tuple[str, int], dict[str, Any]]:
    out: dict[tuple[str, int], dict[str, Any]] = {}
    if not path.exists():
        return out
    for line in path.read_bytes().splitlines():
        try:
            a = orjson.loads(line)
            out[(a["writer"], int(a["seq"]))] = a
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            continue  # a torn last line (crash mid-write) carries no claim
    return out


def _stored(store: Any, since: int | None) -> Iterator[tuple[str, str, str, Any, int]]:
    """(kind, id, place, document as its leaf covers it, epoch seconds) of every stored record."""
    from access_audit.store.sqlite import SqliteStore

    if isinstance(store, SqliteStore):
        with store._lock:
            ev = store.db.execute("SELECT rowid, id, doc, ts_us FROM events"
                                  + (" WHERE ts_us >= ?" if since else ""),
                                  (since * 1_000_000,) if since else ()).fetchall()
            dl = store.db.execute("SELECT rowid, id, reason, stage, source, origin, log_type, raw, received_us"
                                  " FROM dead_letters").fetchall()
            al = store.db.execute("SELECT rowid, id, doc FROM alerts").fetchall()
            sa = store.db.execute("SELECT rowid, id, doc FROM self_audit"
                                  + (" WHERE ts_us >= ?" if since else ""),
                                  (since * 1_000_000,) if since else ()).fetchall()
        for rowid, rid, doc, ts in ev:
            yield "event", rid, f"events rowid {rowid}", orjson.loads(doc), ts // 1_000_000
        for rowid, rid, reason, stage, source, origin, lt, raw, ts in dl:
            yield ("dead_letter", rid, f"dead_letters rowid {rowid}",
                   dead_letter_doc(rid, reason, stage, source, origin, lt, bytes(raw)), ts // 1_000_000)
        for rowid, rid, doc in al:
            d = orjson.loads(doc)
            yield "alert", rid, f"alerts rowid {rowid}", d, _ts(d, "first_seen")
        for rowid, rid, doc in sa:
            d = orjson.loads(doc)
            yield "self_audit", rid, f"self_audit rowid {rowid}", d, _ts(d, "@timestamp")
        return
    store.refresh()
    q: dict[str, Any] = {"match_all": {}}
    if since:
        q = {"range": {"@timestamp": {"gte": datetime.fromtimestamp(since, UTC).isoformat()}}}
    for h in _scan(store, store.events_pattern, q):
        src = h["_source"]
        yield "event", h["_id"], f"{h['_index']}/{h['_id']}", src, _ts(src, "@timestamp")
    for h in _scan(store, store.dead_letters_index, {"match_all": {}}):
        s = h["_source"]
        yield ("dead_letter", h["_id"], f"{h['_index']}/{h['_id']}",
               dead_letter_doc(h["_id"], s.get("reason"), s.get("stage"), s.get("source"), s.get("origin"),
                               s.get("log_type"), base64.b64decode(s.get("raw_b64") or "")), _ts(s, "@timestamp"))
    for h in _scan(store, store.alerts_index, {"match_all": {}}):
        yield "alert", h["_id"], f"{h['_index']}/{h['_id']}", h["_source"], _ts(h["_source"], "first_seen")
    for h in _scan(store, store.self_audit_pattern, q):
        yield "self_audit", h["_id"], f"{h['_index']}/{h['_id']}", h["_source"], _ts(h["_source"], "@timestamp")


def _scan(store: Any, index: str, query: dict[str, Any]) -> Iterable[dict[str, Any]]:
    """Every hit of ``query`` in ``index`` (a pattern is fine), with the scroll API: unlike
    search_after it needs no sort field, so documents inserted without our fields are found too."""
    es = store.es
    r = store._call("scan", es.search, index=index, query=query, size=5000, scroll="2m", sort=["_doc"],
                    ignore_unavailable=True, allow_no_indices=True)
    sid = r.get("_scroll_id")
    try:
        while True:
            hits = r["hits"]["hits"]
            if not hits:
                return
            yield from hits
            r = store._call("scan", es.scroll, scroll_id=sid, scroll="2m")
            sid = r.get("_scroll_id")
    finally:
        if sid:
            with contextlib.suppress(Exception):  # best effort: the scroll expires on its own
                es.clear_scroll(scroll_id=sid)


def verify(store: Any, key: bytes, anchor: Path, *, since: datetime | None = None, cases: Any = None) -> Report:
    """Walk every writer's chain and every stored record; report each problem with its place.

    ``since`` limits the record checks to records of that time or later (events by @timestamp,
    the others by their own time); the chain itself is always checked whole. ``cases`` is the
    breach repository (``breach/repo.py``): its chain and its cases are checked too.
    """
    rep = Report()
    logs = [_log_for(store)] + ([SqliteLog(cases)] if cases is not None else [])
    anchored = _read_anchor(anchor)
    cut = int(since.timestamp()) if since else None
    by_writer: dict[str, dict[int, dict[str, Any]]] = {}
    for e in (e for lg in logs for e in lg.entries()):
        by_writer.setdefault(str(e.get("writer")), {})[int(e.get("seq", -1))] = e
    rep.writers = len(by_writer | {w: {} for w, _ in anchored})
    expected: dict[tuple[str, str], dict[str, str]] = {}  # (kind, id) -> leaf -> place
    deleted_days: dict[str, set[int]] = {}
    deleted_before: dict[str, int] = {}
    deleted_ids: dict[str, set[str]] = {}  # cls -> ids retention deleted by name (breach cases)
    erased: dict[tuple[str, str], tuple[float, str, str, int]] = {}  # (kind, id) -> the latest erasure
    for w, ents in by_writer.items():
        prev = ""
        for seq in range(max(ents) + 1 if ents else 0):
            place = f"{w}/{seq}"
            e = ents.get(seq)
            if e is None:
                rep.findings.append(Finding("chain_missing", "chain", place, "chain", place,
                                            "an entry of this writer's chain is gone"))
                prev = anchored.get((w, seq), {}).get("hash", "")
                continue
            rep.entries += 1
            h = _entry_hash(e)
            good_mac = hmac.compare_digest(hmac.new(key, h.encode(), hashlib.sha256).hexdigest(), str(e.get("mac")))
            a = anchored.get((w, seq))
            if h != e.get("hash") or (a is not None and a.get("hash") != h):
                rep.findings.append(Finding("chain_altered", "chain", place, "chain", place,
                                            "the entry does not hash to its recorded or anchored hash"))
            elif not good_mac:
                rep.findings.append(Finding("chain_forged", "chain", place, "chain", place,
                                            "the entry's MAC is not ours: written without the chain key"))
                continue  # claims nothing
            elif e.get("prev") != prev:
                rep.findings.append(Finding("chain_altered", "chain", place, "chain", place,
                                            "the entry does not link to the previous one"))
            if a is None:
                rep.unanchored += 1
            prev = str(e.get("hash"))
            kind = str(e.get("kind"))
            if kind == "erasure":  # erased versions replace what was chained before (store/erasure.py)
                for rid, lf, ts in e.get("items") or []:
                    k = (str(e.get("of")), rid)
                    if (cut is None or ts >= cut) and float(e.get("at", 0)) >= erased.get(k, (-1.0,))[0]:
                        erased[k] = (float(e.get("at", 0)), lf, place, ts)
                continue
            if kind == "retention":
                cls = str(e.get("cls"))
                if "day" in e:
                    deleted_days.setdefault(cls, set()).add(date.fromisoformat(e["day"]).toordinal() - EPOCH_DAY)
                if "before" in e:
                    deleted_before[cls] = max(deleted_before.get(cls, 0), int(e["before"]))
                deleted_ids.setdefault(cls, set()).update(str(i) for i in e.get("ids") or [])
                continue
            for rid, lf, ts in e.get("items") or []:
                if cut is not None and ts < cut:
                    continue
                expected.setdefault((kind, rid), {})[lf] = place
                expected[(kind, rid)].setdefault("\x00ts", str(ts))
        for seq in sorted(s for (ww, s) in anchored if ww == w):
            if seq not in ents and (not ents or seq > max(ents)):
                rep.findings.append(Finding("chain_missing", "chain", f"{w}/{seq}", "chain", f"{w}/{seq}",
                                            "the anchor lists an entry the store no longer has (truncated chain)"))
    for w in {ww for ww, _ in anchored} - set(by_writer):
        rep.findings.append(Finding("chain_missing", "chain", w, "chain", w,
                                    "the anchor lists a writer whose whole chain is gone"))

    for k, (_, lf, place, ts) in erased.items():  # only the erased version verifies: no way back
        expected[k] = {lf: place, "\x00ts": str(ts)}
    seen: set[tuple[str, str]] = set()
    stored = _stored(store, cut)
    if cases is not None:
        stored = itertools.chain(stored, cases.chained_records())
    for kind, rid, where, doc, ts in stored:
        if cut is not None and ts < cut:
            continue
        rep.records[kind] = rep.records.get(kind, 0) + 1
        k = (kind, rid)
        exp = expected.get(k)
        lf = leaf(kind, rid, doc)
        if exp is None:
            rep.findings.append(Finding("inserted", kind, rid, where, detail="no chain entry covers this record"))
            continue
        seen.add(k)
        if lf in exp:
            continue  # an alert may hold any chained version (see the module docstring)
        rep.findings.append(Finding("altered", kind, rid, where, next(v for x, v in exp.items() if x != "\x00ts"),
                                    "the stored document does not match what was chained"))
    cls_of = {"event": "events", "dead_letter": "dead_letters", "alert": "alerts", "case": "cases"}
    for (kind, rid), exp in expected.items():
        if (kind, rid) in seen:
            continue
        ts = int(exp.get("\x00ts", "0"))
        cls = cls_of.get(kind, kind)
        if (ts < deleted_before.get(cls, 0) or (ts // 86400) in deleted_days.get(cls, set())
                or rid.split("#", 1)[0] in deleted_ids.get(cls, ())):
            continue  # deleted by retention, and the chain says so
        place = next(v for x, v in exp.items() if x != "\x00ts")
        rep.findings.append(Finding("deleted", kind, rid, f"day {datetime.fromtimestamp(ts, UTC):%Y-%m-%d}", place,
                                    "chained, but no longer in the store"))
    return rep
