"""Erasure of a data subject (GDPR Art. 17) by pseudonymisation, in both stores, chain intact.

What is erased: every stored event in which the subject's value appears in an identifying field
(``user.*``, ``user.target.*``, ``resource.subject_ids``, ``related.user``). In those events:

- the subject's side of the event becomes unreadable: their identity fields (``user.*`` when they
  acted, ``user.target.*`` when they were acted on), and, when they acted, where they came from
  (``source.address``/``domain`` tokenised; ``source.ip`` and its ``related.ip`` entry dropped, as
  an address field holds no token; the geo location but the country); their entry in
  ``resource.subject_ids`` and ``related.user``;
- every free-text field (``message``, ``event.reason``, URLs, labels) and the raw record
  (``event.original``), which may name them, is erased whole;
- the other people of the event (the administrator who changed the subject's account) stay named:
  an audit trail keeps who did what to whom, only the whom is erased.

Each erased value becomes ``erased-<16 hex>``: an HMAC under a random key made for this erasure and
never stored (the per-subject key is destroyed at once), so the subject's events still read as
"one person did these things" but nothing leads back to them. The event ids stay (alerts and the
chain name them). An id is a hash of the raw record: someone who can rebuild the rest of a line and
guesses a name can test the guess against an id (documented residual risk).

Rule-state rows that name the subject (a baseline of their logins, a group keyed by their name)
are dropped: the rules forget them.

The chain (``store/chain.py``): the erased documents are chained in an ``erasure`` entry (MAC'd
like every entry) *before* the store is rewritten; from then on ``verify`` accepts only the erased
versions of those events, so putting the personal data back is reported as ``altered``, and an
erasure interrupted between the two steps is reported until it is run again. The entry names
the request and counts, never the subject. The caller records the erasure in the self-audit
(``access-audit erase`` does, without the subject's value).

Not erased here: alerts (their ``user``/``source_ip`` and titles), dead letters (raw lines no
parser took) and breach cases. They have their own retention; see docs/reliability.md.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson

from access_audit.core.fields import FREE_TEXT, field_class

#: where a data subject is named: (path, how the subject is involved)
IDENTIFYING = {"user.name": "actor", "user.email": "actor", "user.id": "actor", "user.full_name": "actor",
               "user.target.name": "target", "user.target.email": "target", "user.target.id": "target"}
LISTS = ("resource.subject_ids", "related.user")
_ACTOR = ("user.name", "user.email", "user.id", "user.full_name", "source.ip", "source.address", "source.domain",
          "source.geo", "related.ip")
_TARGET = ("user.target.name", "user.target.email", "user.target.id")
ERASED = "[erased]"


@dataclass
class Erasure:
    """What an erasure did (or would do: ``dry_run``)."""

    request: str
    events: int = 0
    places: list[str] = field(default_factory=list)  # events rowid N / <index>/<id>
    chain_entry: str = ""
    state_rows: int = 0  # rule-state rows that named the subject, dropped

    def to_json(self) -> dict[str, Any]:
        return {"request": self.request, "events": self.events, "chain_entry": self.chain_entry,
                "state_rows": self.state_rows}


def _get(doc: dict[str, Any], path: str) -> Any:
    cur: Any = doc
    for part in path.split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


def _set(doc: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    cur = doc
    for part in parts[:-1]:
        nxt = cur.get(part)
        if not isinstance(nxt, dict):
            return
        cur = nxt
    if parts[-1] in cur and cur[parts[-1]] is not None:
        cur[parts[-1]] = value


def _same(a: Any, subject: str) -> bool:
    return isinstance(a, str) and a.casefold() == subject.casefold()


def involvement(doc: dict[str, Any], subject: str) -> set[str]:
    """How ``subject`` appears in an event document: {"actor", "target", "listed"} (empty: not)."""
    out = {role for path, role in IDENTIFYING.items() if _same(_get(doc, path), subject)}
    for path in LISTS:
        v = _get(doc, path)
        if isinstance(v, list) and any(_same(x, subject) for x in v):
            out.add("listed")
    return out


def _free_text_paths(doc: Any, prefix: str = "") -> list[str]:
    out = []
    if isinstance(doc, dict):
        for k, v in doc.items():
            p = f"{prefix}{k}"
            if isinstance(v, dict):
                out += _free_text_paths(v, p + ".")
            elif field_class(p) == FREE_TEXT or p == "event.original":
                out.append(p)
    return out


def erase_doc(doc: dict[str, Any], subject: str, key: bytes) -> dict[str, Any]:
    """The event document with the subject's personal data made unreadable (see the module doc)."""
    roles = involvement(doc, subject)
    out = copy.deepcopy(doc)
    if not roles:
        return out

    def token(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: token(x) for k, x in v.items()}
        if v is None:
            return None
        return "erased-" + hmac.new(key, str(v).casefold().encode(), hashlib.sha256).hexdigest()[:16]

    paths = (_ACTOR if "actor" in roles else ()) + (_TARGET if "target" in roles else ())
    ip = _get(out, "source.ip") if "actor" in roles else None
    for p in paths:
        v = _get(out, p)
        if v is None:
            continue
        if p == "source.geo" and isinstance(v, dict):  # where they were: the country stays
            _set(out, p, {k: x for k, x in v.items() if k in ("country_iso_code", "country_name", "internal")})
        elif p == "source.ip":
            _set(out, p, None)  # an address field (Elasticsearch type ip) holds no token: dropped
        elif p == "related.ip" and isinstance(v, list):
            _set(out, p, [x for x in v if x != ip])
        elif isinstance(v, list):
            _set(out, p, [token(x) for x in v])
        else:
            _set(out, p, token(v))
    for p in LISTS:
        v = _get(out, p)
        if isinstance(v, list):
            _set(out, p, [token(x) if _same(x, subject) else x for x in v])
    for p in _free_text_paths(out):
        _set(out, p, ERASED)
    return out


def erase_subject(store: Any, subject: str, *, request: str | None = None, dry_run: bool = False) -> Erasure:
    """Erase ``subject`` from the events of ``store`` (a ``ChainedStore``: the erasure is chained).

    Called by ``access-audit erase``; the caller records it in the self-audit. Idempotent: a
    second run finds the subject nowhere and changes nothing. Raises what the store raises; an
    erasure that failed half way is completed by running it again.
    """
    from access_audit.store.chain import ChainedStore, leaf

    if not subject.strip():
        raise ValueError("the data subject is empty")
    if not isinstance(store, ChainedStore):
        raise TypeError("erase_subject needs the chained store (open_store), so that verify still passes")
    inner = store.inner
    res = Erasure(request or uuid.uuid4().hex)
    found = _find(inner, subject)
    key = secrets.token_bytes(32)  # this subject's key: used for this erasure, then gone
    rewritten = []
    for place, rid, doc, ts, where in found:
        if not involvement(doc, subject):
            continue
        rewritten.append((place, rid, erase_doc(doc, subject, key), ts, where))
    del key
    res.events = len(rewritten)
    res.places = [p for p, *_ in rewritten]
    if dry_run:
        return res
    if rewritten:
        items = [[rid, leaf("event", rid, doc), ts] for _, rid, doc, ts, _ in rewritten]
        e = store.chain.append("erasure", items, of="event", request=res.request, count=len(items))
        res.chain_entry = f"{e['writer']}/{e['seq']}"
        _rewrite(inner, [(rid, doc, where) for _, rid, doc, _, where in rewritten])
    res.state_rows = _forget_state(inner, subject)
    return res


def _names(data: Any, subject: str) -> bool:
    if isinstance(data, str):
        return _same(data, subject)
    if isinstance(data, dict):
        return any(_names(v, subject) for v in data.values())
    if isinstance(data, list):
        return any(_names(v, subject) for v in data)
    return False


def _state_names(key: str, value: bytes, subject: str) -> bool:
    """Whether a rule-state row (``<rule>/<partition>/<group key JSON>``, decisions §4) names the subject."""
    group = key.split("/", 2)[-1]
    for text in (group, value):
        try:
            if _names(orjson.loads(text), subject):
                return True
        except orjson.JSONDecodeError:
            continue
    return False


def _forget_state(inner: Any, subject: str) -> int:
    """Drop the rule-state rows that name the subject (a baseline of their logins, a group keyed by
    their name): the rules forget them. A running worker that sees them again starts afresh."""
    from access_audit.store.sqlite import SqliteStore

    rows: list[tuple[str, str]] = []
    if isinstance(inner, SqliteStore):
        like = f"%{subject}%"
        with inner._lock:
            found = inner.db.execute("SELECT ns, key, value FROM rule_state WHERE key LIKE ? OR CAST(value AS TEXT)"
                                     " LIKE ?", (like, like)).fetchall()
        rows = [(ns, key) for ns, key, value in found if _state_names(key, bytes(value), subject)]
    else:
        from access_audit.store.chain import _scan

        inner._call("refresh state", inner.es.indices.refresh, index=inner.state_index)
        for h in _scan(inner, inner.state_index, {"match_all": {}}):  # rare, and bounded by the state's size
            src = h["_source"]
            if "ns" in src and _state_names(str(src.get("key", "")), str(src.get("value", "")).encode(), subject):
                rows.append((src["ns"], src["key"]))
    if rows:
        if isinstance(inner, SqliteStore):
            with inner._lock:
                inner.db.execute("PRAGMA secure_delete=ON")
            try:
                inner.write_state([], rows)
                with inner._lock:
                    inner.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                with inner._lock:
                    inner.db.execute("PRAGMA secure_delete=OFF")
        else:
            inner.write_state([], rows)
    return len(rows)


def _find(inner: Any, subject: str) -> list[tuple[str, str, dict[str, Any], int, Any]]:
    """Candidate events: (place, id, document, epoch seconds, where to write it back)."""
    from access_audit.store.sqlite import SqliteStore

    out = []
    if isinstance(inner, SqliteStore):
        like = f"%{subject}%"
        with inner._lock:
            rows = inner.db.execute("SELECT rowid, id, doc, ts_us FROM events WHERE user_name = ? COLLATE NOCASE"
                                    " OR doc LIKE ?", (subject, like)).fetchall()
        for rowid, rid, text, ts in rows:
            out.append((f"events rowid {rowid}", rid, orjson.loads(text), ts // 1_000_000, rowid))
        return out
    from access_audit.store.chain import _scan, _ts

    fields = [*IDENTIFYING, *LISTS]
    q = {"bool": {"should": [{"term": {f: {"value": subject, "case_insensitive": True}}} for f in fields],
                  "minimum_should_match": 1}}
    inner.refresh()
    for h in _scan(inner, inner.events_pattern, q):
        src = h["_source"]
        out.append((f"{h['_index']}/{h['_id']}", h["_id"], src, _ts(src, "@timestamp"), h["_index"]))
    return out


def _rewrite(inner: Any, docs: list[tuple[str, dict[str, Any], Any]]) -> None:
    from access_audit.store.sqlite import SqliteStore

    if isinstance(inner, SqliteStore):
        import sqlite3

        from access_audit.store.sqlite import ip_key

        # ip_key follows source_ip: an erased address must not stay behind in the CIDR index
        rows = [(_get(d, "user.name"), _get(d, "source.ip"), ip_key(_get(d, "source.ip")), orjson.dumps(d).decode(),
                 rowid) for _, d, rowid in docs]
        with inner._lock:
            try:
                # secure_delete zeroes the freed bytes of the old documents; the checkpoint moves
                # the new pages into the database file and empties the write-ahead log.
                inner.db.execute("PRAGMA secure_delete=ON")
                inner.db.execute("BEGIN")
                inner.db.executemany(
                    "UPDATE events SET user_name = ?, source_ip = ?, ip_key = ?, doc = ? WHERE rowid = ?", rows)
                inner.db.execute("COMMIT")
                inner.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error as e:
                inner._rollback()
                raise inner._error("events", e) from e
            finally:
                inner.db.execute("PRAGMA secure_delete=OFF")
        return
    from access_audit.core.errors import StoreError

    body: list[Any] = []
    for rid, d, index in docs:
        body += [{"index": {"_index": index, "_id": rid}}, d]
    for i in range(0, len(body), 1000):
        items = inner._bulk_items(body[i:i + 1000], "erase events")
        bad = [it["index"] for it in items if it["index"]["status"] not in (200, 201)]
        if bad:
            raise StoreError(f"elasticsearch refused {len(bad)} erased event(s), e.g. {bad[0].get('_id')}: "
                             f"{bad[0].get('error')}")
    inner.refresh()
    # The replaced documents linger in Lucene segments as deleted until a merge: expunge them.
    indices = sorted({index for _, _, index in docs})
    inner._call("expunge erased documents", inner.es.indices.forcemerge, index=",".join(indices),
                only_expunge_deletes=True)


__all__ = ["Erasure", "erase_doc", "erase_subject", "involvement"]
