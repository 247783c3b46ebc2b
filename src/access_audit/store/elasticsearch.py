"""The production store: Elasticsearch, one index per day of events, behind the EventStore port.

Indices (``<prefix>`` defaults to ``access-audit``)::

    <prefix>-events-YYYY.MM.DD   events by their @timestamp (UTC day); composable template <prefix>-events
    <prefix>-alerts              alerts by alert id
    <prefix>-dead-letters        records that could not be accepted, with their reason
    <prefix>-state               a small key/value store (rule state, cursors)

Plain indices, no data streams or ILM: retention deletes whole daily indices
(``delete_indices_older_than``), which works on every distribution, including the
integ-test build that ``scripts/services`` runs.

The event mapping is explicit and generated from ``core.fields``, so it cannot drift from the
model. Results match ``SqliteStore`` for the same data and query: same order (@timestamp, then
event id), same meaning of every Term op, search_after paging on (timestamp, id). Where the two
cannot agree exactly, the comment at ``_term`` says so.

Writes are idempotent: events are created with their deterministic id as ``_id`` (a replay
gets 409 per document, which counts as "already there"); dead letters get the same content
hash as in SQLite; alerts are versioned by their counter.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import ipaddress
import json
import logging
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import orjson

from access_audit.core.alerts import Alert, keep_lifecycle
from access_audit.core.clock import Clock, SystemClock
from access_audit.core.errors import ConfigError, StoreError, StoreUnavailableError
from access_audit.core.events import AccessEvent
from access_audit.core.fields import FIELD_TYPES, OPEN_PREFIXES
from access_audit.core.records import DeadLetter
from access_audit.store import aggregations as agg
from access_audit.store.query import IP_FIELDS, And, Expr, MatchAll, Not, Or, Query, Term

try:
    from elasticsearch import ApiError, ConnectionTimeout, Elasticsearch
    from elasticsearch import ConnectionError as EsConnectionError
except ImportError as e:  # pragma: no cover - a declared dependency, guarded for slim installs
    raise ConfigError("store=elasticsearch needs the client: pip install 'elasticsearch>=8.19,<9'") from e

if TYPE_CHECKING:
    from access_audit.settings import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")

KEYWORD_MAX = 8191  # characters; 4 bytes each stays under Lucene's 32766-byte term limit
GEO_POINTS = {"source.geo.location", "destination.geo.location"}
ALWAYS_PRESENT = {"@timestamp", "event"}  # to_doc always writes them; empty maps (labels, related) are left out
TEMPLATE_PRIORITY = 500
MAX_PAGE = 10_000  # index.max_result_window
LONG_MIN, LONG_MAX = -(1 << 63), (1 << 63) - 1
BULK_MAX_BYTES = 8 << 20
BULK_MAX_DOCS = 5000
# Per-document 400s that will fail the same way on every retry: the document goes to the dead
# letters. Any other 4xx on an item (index closed, forbidden, no auto-create...) is a
# configuration problem of the whole store and raises StoreError instead of dead-lettering
# every event.
DOCUMENT_ERRORS = {"document_parsing_exception", "mapper_parsing_exception", "strict_dynamic_mapping_exception",
                   "illegal_argument_exception", "x_content_parse_exception", "mapper_exception"}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# --- mappings -------------------------------------------------------------------------------

def _keyword(**extra: Any) -> dict[str, Any]:
    return {"type": "keyword", "ignore_above": KEYWORD_MAX, **extra}


def _leaf(path: str, t: Any) -> dict[str, Any]:
    if path in IP_FIELDS:
        # ip for CIDR terms; the .keyword sub-field keeps the string as written, so eq and prefix
        # ("source.ip:10.1.*") compare strings exactly like SQLite does.
        return {"type": "ip", "fields": {"keyword": {"type": "keyword", "ignore_above": 64}}}
    if path in ("message", "event.original"):
        return _keyword(doc_values=False)  # searched (wildcard), never sorted or aggregated
    if t is bool:
        return {"type": "boolean"}
    if t is int:
        return {"type": "long"}
    if t is float:
        return {"type": "double"}
    if t is datetime:
        # date_nanos, not date: SQLite keeps microseconds, and events of the same millisecond
        # must still sort by time before id. Covers 1970-2262; events before 1990 are rejected.
        return {"type": "date_nanos"}
    return _keyword()  # str and str enums (event.outcome)


def event_mappings() -> dict[str, Any]:
    """The explicit mapping of ``<prefix>-events-*``, generated from ``core.fields.FIELD_TYPES``.

    ``dynamic: false`` at the root: a field the mapping does not know (a newer model than the
    index template of the day) is kept in ``_source`` and returned, just not searchable until
    the next daily index. ``strict`` would instead reject every such event for the rest of the
    day. ``labels`` and ``cloud.account`` are the open maps of the model: their string values
    become keywords through a dynamic template, and ``subobjects: false`` lets keys like
    ``app`` and ``app.kubernetes.io/name`` live side by side instead of colliding.
    """
    root: dict[str, Any] = {}
    open_paths = {p.rstrip(".") for p in OPEN_PREFIXES}

    def node(path: str) -> dict[str, Any]:
        props = root
        parts = path.split(".")
        for part in parts[:-1]:
            props = props.setdefault(part, {"properties": {}}).setdefault("properties", {})
        return props

    for path in sorted(FIELD_TYPES, key=lambda p: p.count(".")):
        t = FIELD_TYPES[path]
        if any(path.startswith(g + ".") for g in GEO_POINTS):
            continue
        name = path.rsplit(".", 1)[-1]
        props = node(path)
        if path in GEO_POINTS:
            props[name] = {"type": "geo_point"}
        elif path in open_paths:
            props[name] = {"type": "object", "dynamic": True, "subobjects": False}
        elif t == "object":
            props.setdefault(name, {"properties": {}})
        else:
            props[name] = _leaf(path, t)
    return {
        "dynamic": False,
        "dynamic_templates": [
            {f"{p.replace('.', '_')}_as_keyword": {"path_match": f"{p}.*", "match_mapping_type": "string",
                                                   "mapping": {"type": "keyword", "ignore_above": 1024}}}
            for p in sorted(open_paths)
        ],
        "properties": root,
    }


ALERT_MAPPINGS: dict[str, Any] = {
    "dynamic": False,
    "properties": {
        **{k: _keyword() for k in ("id", "rule_id", "title", "severity", "status", "dedup_key", "event_ids",
                                   "user", "source_ip", "host", "resource", "data_categories", "mitre", "tags",
                                   "log_types")},
        "description": {"type": "text"},
        "query": {"type": "keyword", "index": False, "doc_values": False},
        "risk_score": {"type": "integer"},
        "count": {"type": "long"},
        "personal_data": {"type": "boolean"},
        **{k: {"type": "date_nanos"} for k in ("first_seen", "last_seen", "created_at")},
        "group": {"type": "object", "enabled": False},
        "context": {"type": "object", "enabled": False},
    },
}

DEAD_LETTER_MAPPINGS: dict[str, Any] = {
    "dynamic": False,
    "properties": {
        "@timestamp": {"type": "date_nanos"},
        **{k: _keyword() for k in ("id", "reason", "stage", "source", "origin", "log_type")},
        "raw_b64": {"type": "binary"},
        "raw_text": {"type": "text"},
        "extra": {"type": "object", "enabled": False},
    },
}

STATE_MAPPINGS: dict[str, Any] = {
    "dynamic": False,
    "properties": {"key": _keyword(), "ns": _keyword(), "value_b64": {"type": "binary"},
                   "value": {"type": "keyword", "index": False, "doc_values": False},
                   "updated_at": {"type": "date"}},
}


@dataclass(frozen=True, slots=True)
class _Op:
    """One bulk ``create``: the document and its NDJSON lines, serialised once (also for retries)."""

    index: str
    id: str
    doc: dict[str, Any]
    source: Any  # the AccessEvent or DeadLetter it came from
    payload: bytes

    @classmethod
    def create(cls, index: str, id_: str, doc: dict[str, Any], source: Any) -> _Op:
        action = orjson.dumps({"create": {"_index": index, "_id": id_}})
        return cls(index, id_, doc, source, action + b"\n" + _dumps(doc) + b"\n")


# --- the store ------------------------------------------------------------------------------

def dead_letter_id(d: DeadLetter) -> str:
    """Same content hash as SqliteStore: one dead letter per origin, stage and raw bytes."""
    return hashlib.blake2b(f"{d.origin}\x00{d.stage}".encode() + d.raw, digest_size=16).hexdigest()


class ElasticsearchStore:
    """EventStore on Elasticsearch 8.x. Thread-safe (the client is).

    Call ``setup()`` once at start (``app.open_store`` does): it creates or updates the events
    template and creates the other indices. Writes are near-real-time: call ``refresh()`` when
    a search must see what was just written (tests, the CLI after an import).
    """

    def __init__(self, url: str = "http://127.0.0.1:9200", *, prefix: str = "access-audit",
                 username: str | None = None, password: str | None = None, api_key: str | None = None,
                 ca_certs: Path | str | None = None, request_timeout: float = 30.0, max_retries: int = 2,
                 attempts: int = 4, backoff_s: float = 0.5, clock: Clock | None = None,
                 client: Elasticsearch | None = None) -> None:
        if not re.fullmatch(r"[a-z0-9][a-z0-9_.-]*", prefix):
            raise ConfigError(f"invalid Elasticsearch index prefix {prefix!r}: use lowercase letters, digits, -_.")
        self.url = re.sub(r"//[^/@]*@", "//", url)  # for messages: without credentials
        self.prefix = prefix
        self.attempts = max(1, attempts)
        self.backoff_s = backoff_s
        self.clock = clock or SystemClock()
        self.events_pattern = f"{prefix}-events-*"
        self.alerts_index = f"{prefix}-alerts"
        self.dead_letters_index = f"{prefix}-dead-letters"
        self.state_index = f"{prefix}-state"
        self.self_audit_pattern = f"{prefix}-self-audit-*"
        self._daily = re.compile(re.escape(prefix) + r"-events-(\d{4})\.(\d{2})\.(\d{2})")
        auth: dict[str, Any] = {}
        if username:
            auth["basic_auth"] = (username, password or "")
        if api_key:
            auth["api_key"] = api_key
        if ca_certs:
            auth["ca_certs"] = str(ca_certs)
        # A timeout is not retried here: the pipeline retries the whole batch (idempotent).
        self.es = client or Elasticsearch(url, request_timeout=request_timeout, max_retries=max_retries,
                                          retry_on_timeout=False, **auth)
        self._maybe_created: dict[str, None] = {}  # alert ids a failed write may have created (ordered)

    @classmethod
    def from_settings(cls, settings: Settings, **kw: Any) -> ElasticsearchStore:
        def secret(s: Any) -> str | None:
            return s.get_secret_value() if s is not None else None

        return cls(settings.elasticsearch_url, prefix=settings.elasticsearch_index_prefix,
                   username=settings.elasticsearch_username, password=secret(settings.elasticsearch_password),
                   api_key=secret(settings.elasticsearch_api_key), ca_certs=settings.elasticsearch_ca_certs, **kw)

    def event_index(self, ts: datetime) -> str:
        """The daily index of an event time (UTC day)."""
        return f"{self.prefix}-events-{ts.astimezone(UTC):%Y.%m.%d}"

    # --- errors ---------------------------------------------------------------------------

    def _call(self, what: str, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        """Run one client call; transport failures and 429/5xx become StoreUnavailableError."""
        try:
            return fn(*args, **kw)
        except (EsConnectionError, ConnectionTimeout) as e:
            raise StoreUnavailableError(f"elasticsearch {self.url}: cannot {what}: {type(e).__name__}: "
                                        f"{e.message}") from e
        except ApiError as e:
            status = e.meta.status
            if status == 429 or status >= 500:
                raise StoreUnavailableError(f"elasticsearch {self.url}: cannot {what}: {status} {e.message}") from e
            raise StoreError(f"elasticsearch {self.url}: cannot {what}: {status} {e.message}: {e.info}") from e

    # --- lifecycle ------------------------------------------------------------------------

    def setup(self) -> None:
        """Create the events template (or update it when the model changed) and the other indices.

        Idempotent and safe to run from several workers at once. Raises StoreUnavailableError
        when the cluster cannot be reached.
        """
        mappings = event_mappings()
        digest = hashlib.blake2b(orjson.dumps(mappings, option=orjson.OPT_SORT_KEYS), digest_size=8).hexdigest()
        name = f"{self.prefix}-events"
        cur = self._call("read the events template", self.es.options(ignore_status=404).indices.get_index_template,
                         name=name)
        have = next((t["index_template"].get("_meta", {}).get("mapping_hash")
                     for t in cur.body.get("index_templates", [])), None) if cur.meta.status == 200 else None
        if have != digest:
            self._call("create the events template", self.es.indices.put_index_template, name=name,
                       index_patterns=[self.events_pattern], priority=TEMPLATE_PRIORITY,
                       meta={"managed_by": "access-audit", "mapping_hash": digest},
                       template={"settings": {"index": {"number_of_shards": 1, "codec": "best_compression"}},
                                 "mappings": mappings})
            log.info("elasticsearch: %s template %s", "updated" if have else "created", name)
        for index, m in ((self.alerts_index, ALERT_MAPPINGS), (self.dead_letters_index, DEAD_LETTER_MAPPINGS),
                         (self.state_index, STATE_MAPPINGS)):
            r = self._call(f"create {index}", self.es.options(ignore_status=400).indices.create, index=index,
                           settings={"index": {"number_of_shards": 1}}, mappings=m)
            if r.meta.status == 400 and r.body.get("error", {}).get("type") != "resource_already_exists_exception":
                raise StoreError(f"elasticsearch: cannot create {index}: {r.body.get('error')}")
        # An index made by an older version lacks the newer fields (rule state's "ns"): add them.
        self._call("update the state mapping", self.es.indices.put_mapping, index=self.state_index,
                   properties=STATE_MAPPINGS["properties"])
        self._call("create the self-audit template", self.es.indices.put_index_template,
                   name=f"{self.prefix}-self-audit", index_patterns=[self.self_audit_pattern],
                   priority=TEMPLATE_PRIORITY, meta={"managed_by": "access-audit"},
                   template={"settings": {"index": {"number_of_shards": 1}}, "mappings": SELF_AUDIT_MAPPINGS})
        # A fresh index answers 503 until its shard is allocated: wait for it here, not in the first read.
        self._call("wait for the indices", self.es.cluster.health,
                   index=[self.alerts_index, self.dead_letters_index, self.state_index],
                   wait_for_status="yellow", timeout="30s")

    def refresh(self) -> None:
        """Make everything written so far visible to search."""
        self._call("refresh", self.es.indices.refresh, index=f"{self.prefix}-*", ignore_unavailable=True,
                   allow_no_indices=True)

    def close(self) -> None:
        self.es.close()

    # --- writes ---------------------------------------------------------------------------

    def write_events(self, events: list[AccessEvent], docs: list[dict[str, Any]] | None = None) -> int:
        """Create each event in its daily index with its id as ``_id``; return how many were new.

        409 (already there) is a replay, not an error. Items refused with 429/5xx are retried with
        backoff; if they still fail, StoreUnavailableError (the pipeline retries the batch and does
        not commit). Items the mapping refuses (400) go to the dead letters with the reason, stage
        ``store``. Other item errors raise StoreError.
        """
        ops = [_Op.create(self.event_index(ev.timestamp), ev.id, docs[i] if docs is not None else ev.to_doc(), ev)
               for i, ev in enumerate(events)]
        created, rejected = self._bulk_create(ops, "events")
        if rejected:
            now = self.clock.now()
            letters = []
            for op, err in rejected:
                assert isinstance(op.source, AccessEvent)
                log.warning("elasticsearch refused event %s for %s: %s", op.id, op.index, _reason(err))
                letters.append(_store_dead_letter(op.source, op.index, op.doc, err, now))
            self.write_dead_letters(letters)
        return created

    def write_dead_letters(self, letters: list[DeadLetter]) -> None:
        ops = []
        for d in letters:
            did = dead_letter_id(d)
            ops.append(_Op.create(self.dead_letters_index, did, {**d.to_doc(), "id": did}, d))
        _, rejected = self._bulk_create(ops, "dead letters")
        if rejected:
            op, err = rejected[0]
            raise StoreError(f"elasticsearch refused {len(rejected)} dead letter(s), e.g. {op.doc['origin']}: "
                             f"{_reason(err)}")

    def write_alerts(self, alerts: list[Alert], *, lifecycle: bool = False) -> set[str]:
        """Index the latest alert document, versioned by its counter (``version_type=external_gte``).

        No scripts needed (the integ-test build has no Painless): a document with a lower count
        than the stored one is refused with 409 and ignored, so the counter can only grow; an
        equal count (a status change) replaces the document. Pipeline writes keep the stored
        status and history (``keep_lifecycle``); ``lifecycle=True`` writes replace them. Returns
        the ids this call created (answered 201), so a count of new alerts agrees with the index.

        A call that fails after Elasticsearch may have done the work (a timeout: the answer was
        lost) remembers the ids that were not stored before it; the next call that finds them
        stored counts them as created, so the retried batch counts each new alert once.
        """
        created: set[str] = set()
        docs = [a.to_doc() for a in alerts]
        absent: list[str] = []
        if alerts and not lifecycle:
            stored = self._alert_docs([a.id for a in alerts])
            docs = [keep_lifecycle(d, stored.get(d["id"])) for d in docs]
            absent = [a.id for a in alerts if a.id not in stored]
        try:
            self._write_alerts(alerts, docs, created)
        except StoreUnavailableError:
            for aid in absent:
                if aid not in created:
                    self._maybe_created[aid] = None
            while len(self._maybe_created) > 100_000:  # bounded: the oldest guesses go first
                self._maybe_created.pop(next(iter(self._maybe_created)))
            raise
        return created

    def _write_alerts(self, alerts: list[Alert], docs: list[dict[str, Any]], created: set[str]) -> None:
        pending = [(a.id, a.count, d) for a, d in zip(alerts, docs, strict=True)]
        for attempt in range(self.attempts):
            if not pending:
                return
            body: list[dict[str, Any]] = []
            for aid, count, doc in pending:
                body += [{"index": {"_index": self.alerts_index, "_id": aid, "version": max(1, count),
                                    "version_type": "external_gte"}}, doc]
            items = self._bulk_items(body, "write alerts")
            retry = []
            for (aid, count, doc), item in zip(pending, items, strict=True):
                r = item["index"]
                status = r["status"]
                if status in (200, 201, 409):
                    if status == 201 or (aid in self._maybe_created and aid not in created):
                        created.add(aid)  # a 200/409 for a remembered id: our lost answer created it
                    self._maybe_created.pop(aid, None)
                    continue
                if status == 429 or status >= 500:
                    retry.append((aid, count, doc))
                else:
                    raise StoreError(f"elasticsearch refused alert {aid}: {_reason(r.get('error'))}")
            pending = retry
            if pending and attempt + 1 < self.attempts:
                time.sleep(self.backoff_s * 2 ** attempt)
        if pending:
            raise StoreUnavailableError(f"elasticsearch {self.url}: {len(pending)} alert(s) still refused after "
                                        f"{self.attempts} attempts (429/5xx)")

    def _alert_docs(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        res = self._call("read alerts", self.es.mget, index=self.alerts_index, ids=ids)
        return {d["_id"]: d["_source"] for d in res["docs"] if d.get("found")}

    def alert(self, alert_id: str) -> Alert | None:
        doc = self._alert_docs([alert_id]).get(alert_id)
        return Alert.model_validate(doc) if doc else None

    def _bulk_items(self, body: list[Any], what: str) -> list[dict[str, Any]]:
        return list(self._call(what, self.es.bulk, operations=body)["items"])

    def _bulk_create(self, ops: list[_Op], what: str) -> tuple[int, list[tuple[_Op, dict[str, Any]]]]:
        """``create`` each op (idempotent by id). Returns (how many were created, refused documents)."""
        created = 0
        rejected: list[tuple[_Op, dict[str, Any]]] = []
        pending = ops
        for attempt in range(self.attempts):
            if not pending:
                break
            retry: list[_Op] = []
            for chunk in _chunks(pending):
                try:
                    items = self._bulk_items([op.payload for op in chunk], f"write {what}")
                except StoreUnavailableError as e:
                    if attempt + 1 == self.attempts or not isinstance(e.__cause__, ApiError):
                        raise  # unreachable or timed out: the pipeline waits and retries the batch
                    retry.extend(chunk)  # the whole request was refused with 429/5xx: retry it here
                    continue
                for op, item in zip(chunk, items, strict=True):
                    r = item["create"]
                    status = r["status"]
                    if status == 201:
                        created += 1
                    elif status == 409:
                        pass  # already there: a replay
                    elif status == 429 or status >= 500:
                        retry.append(op)
                    elif status == 400 and r.get("error", {}).get("type") in DOCUMENT_ERRORS:
                        rejected.append((op, r["error"]))
                    else:
                        raise StoreError(f"elasticsearch refused {what} in {op.index}: {status} "
                                         f"{_reason(r.get('error'))}")
            pending = retry
            if pending and attempt + 1 < self.attempts:
                log.warning("elasticsearch: %d %s refused with 429/5xx, retrying", len(pending), what)
                time.sleep(self.backoff_s * 2 ** attempt)
        if pending:
            raise StoreUnavailableError(f"elasticsearch {self.url}: {len(pending)} {what} still refused after "
                                        f"{self.attempts} attempts (429/5xx)")
        return created, rejected

    # --- key/value state ------------------------------------------------------------------

    def _state_id(self, key: str) -> str:
        return key if len(key.encode()) <= 256 else "h:" + hashlib.blake2b(key.encode(), digest_size=16).hexdigest()

    def get_state(self, key: str) -> bytes | None:
        r = self._call("read state", self.es.options(ignore_status=404).get, index=self.state_index,
                       id=self._state_id(key))
        if r.meta.status == 404 or not r.body.get("found"):
            return None
        return base64.b64decode(r.body["_source"]["value_b64"])

    def put_state(self, key: str, value: bytes) -> None:
        self._call("write state", self.es.index, index=self.state_index, id=self._state_id(key),
                   document={"key": key, "value_b64": base64.b64encode(value).decode("ascii"),
                             "updated_at": self.clock.now().isoformat()})

    # --- rule state (detect.state.StateRows) ------------------------------------------------

    def _row_id(self, ns: str, key: str) -> str:
        return "r:" + hashlib.blake2b(f"{ns}\x00{key}".encode(), digest_size=16).hexdigest()

    def write_state(self, upserts: list[tuple[str, str, bytes]], deletes: list[tuple[str, str]]) -> None:
        """One checkpoint's changed rows in bulk requests; raises StoreUnavailableError if any is refused
        (the caller keeps the rows pending and writes them again)."""
        now = self.clock.now().isoformat()
        body: list[Any] = []
        for ns, key in deletes:
            body.append({"delete": {"_index": self.state_index, "_id": self._row_id(ns, key)}})
        for ns, key, value in upserts:
            body.append({"index": {"_index": self.state_index, "_id": self._row_id(ns, key)}})
            body.append({"ns": ns, "key": key, "value": value.decode(), "updated_at": now})
        for i in range(0, len(body), 4000):
            items = self._bulk_items(body[i:i + 4000], "write rule state")
            bad = [it for it in items for op in it.values() if op.get("status", 200) >= 300
                   and not (op.get("status") == 404 and "delete" in it)]
            if bad:
                raise StoreUnavailableError(f"elasticsearch {self.url}: {len(bad)} rule state rows refused")

    def alerts_by_ids(self, ids: list[str]) -> dict[str, Alert]:
        out: dict[str, Alert] = {}
        for i in range(0, len(ids), 1000):
            r = self._call("read alerts", self.es.mget, index=self.alerts_index, ids=ids[i:i + 1000])
            for d in r["docs"]:
                if d.get("found"):
                    out[d["_id"]] = Alert.model_validate(d["_source"])
        return out

    def read_state(self, namespace: str) -> Iterator[tuple[str, bytes]]:
        self._call("refresh state", self.es.indices.refresh, index=self.state_index)
        sort = [{"key": {"order": "asc"}}]
        for h in self._paged(self.state_index, {"term": {"ns": namespace}}, sort, 10_000_000):
            src = h["_source"]
            yield src["key"], src["value"].encode()

    def state_namespaces(self) -> dict[str, tuple[int, int]]:
        """Rule state per namespace: (rows, bytes of the stored values) — for ``status``."""
        self._call("refresh state", self.es.indices.refresh, index=self.state_index)
        out: dict[str, tuple[int, int]] = {}
        r = self._call("count rule state", self.es.search, index=self.state_index, size=0,
                       aggs={"ns": {"terms": {"field": "ns", "size": 10_000}}})
        for b in r["aggregations"]["ns"]["buckets"]:
            out[b["key"]] = (int(b["doc_count"]), 0)
        return out

    def drop_state(self, namespace: str) -> None:
        # Search and bulk-delete by id: _delete_by_query lives in the reindex module, which a
        # minimal Elasticsearch (the integ-test distribution) does not have.
        self._call("refresh state", self.es.indices.refresh, index=self.state_index)
        hits = self._paged(self.state_index, {"term": {"ns": namespace}}, [{"key": {"order": "asc"}}], 10_000_000)
        body = [{"delete": {"_index": self.state_index, "_id": h["_id"]}} for h in hits]
        for i in range(0, len(body), 4000):
            self._bulk_items(body[i:i + 4000], "drop rule state")

    # --- reads ----------------------------------------------------------------------------

    def search(self, query: Query) -> list[AccessEvent]:
        """Events matching ``query`` in (@timestamp, event id) order, paged with search_after.

        Near-real-time: what was written less than a refresh interval (1 s) ago may be missing
        unless ``refresh()`` was called. Raises StoreUnavailableError when the node is unreachable.
        """
        order = "desc" if query.order == "desc" else "asc"
        sort = [{"@timestamp": {"order": order, "numeric_type": "date_nanos"}}, {"event.id": {"order": order}}]
        after = [_nanos(query.after[0]), query.after[1]] if query.after else None
        hits = self._paged(self.events_pattern, self._filter(query, with_after=False), sort, query.limit, after)
        return [AccessEvent.from_doc(h["_source"]) for h in hits]

    def existing_ids(self, ids: list[str]) -> set[str]:
        """Which of these event ids are stored already (one ids query over the daily indices)."""
        found: set[str] = set()
        for i in range(0, len(ids), 5000):
            chunk = ids[i:i + 5000]
            r = self._call("look up event ids", self.es.search, index=self.events_pattern,
                           query={"ids": {"values": chunk}}, size=len(chunk), source=False,
                           ignore_unavailable=True, allow_no_indices=True)
            found.update(h["_id"] for h in r["hits"]["hits"])
        return found

    def count(self, query: Query) -> int:
        """How many events match ``query`` (since/until/after included; limit ignored)."""
        r = self._call("count events", self.es.count, index=self.events_pattern, query=self._filter(query),
                       ignore_unavailable=True, allow_no_indices=True)
        return int(r["count"])

    #: per-shard candidates of a terms aggregation; when a result may be inexact (several daily
    #: indices, more distinct values than this), the values are counted exactly with a composite
    #: aggregation instead.
    terms_shard_size = 5000

    def aggregate(self, query: Query, field: str, size: int = 10) -> list[tuple[Any, int]]:
        """Same as ``SqliteStore.aggregate``: the ``size`` most frequent values of ``field``, exact."""
        agg.check_terms_field(field, size)
        f = f"{field}.keyword" if field in IP_FIELDS else field
        flt = self._filter(query, with_after=False)
        opts = {"size": 0, "track_total_hits": False, "ignore_unavailable": True, "allow_no_indices": True}
        r = self._call("count values", self.es.search, index=self.events_pattern, query=flt, **opts, aggs={
            "top": {"terms": {"field": f, "size": size, "shard_size": max(size, self.terms_shard_size),
                              "order": [{"_count": "desc"}, {"_key": "asc"}]}}})
        top = (r.body.get("aggregations") or {}).get("top", {})
        if not top.get("doc_count_error_upper_bound"):
            return [(b["key"], b["doc_count"]) for b in top.get("buckets", [])]
        pairs: list[tuple[Any, int]] = []  # every value, counted exactly, paged
        after: dict[str, Any] | None = None
        while True:
            comp: dict[str, Any] = {"size": MAX_PAGE, "sources": [{"k": {"terms": {"field": f}}}]}
            if after:
                comp["after"] = after
            r = self._call("count values", self.es.search, index=self.events_pattern, query=flt, **opts,
                           aggs={"all": {"composite": comp}})
            res = (r.body.get("aggregations") or {}).get("all", {})
            pairs += [(b["key"]["k"], b["doc_count"]) for b in res.get("buckets", [])]
            after = res.get("after_key")
            if not after or len(res.get("buckets", [])) < MAX_PAGE:
                return agg.top(pairs, size)

    def histogram(self, query: Query, interval: str) -> list[tuple[datetime, int]]:
        """Same as ``SqliteStore.histogram``: events per fixed interval, epoch-aligned UTC buckets."""
        secs = agg.interval_seconds(interval)
        agg.check_span(query, secs)
        r = self._call("count per interval", self.es.search, index=self.events_pattern, size=0,
                       track_total_hits=False, ignore_unavailable=True, allow_no_indices=True,
                       query=self._filter(query, with_after=False), aggs={
                           "h": {"date_histogram": {"field": "@timestamp", "fixed_interval": f"{secs}s",
                                                    "min_doc_count": 1}}})
        buckets = (r.body.get("aggregations") or {}).get("h", {}).get("buckets", [])
        return agg.fill({_EPOCH + timedelta(milliseconds=b["key"]): b["doc_count"] for b in buckets}, query, secs)

    def _filter(self, query: Query, *, with_after: bool = True) -> dict[str, Any]:
        must: list[dict[str, Any]] = [_dsl(query.expr)]
        rng: dict[str, Any] = {}
        if query.since:
            rng["gte"] = _iso(query.since)
        if query.until:
            rng["lt"] = _iso(query.until)
        if rng:
            must.append({"range": {"@timestamp": rng}})
        if with_after and query.after:
            ts, eid = query.after
            cmp = "lt" if query.order == "desc" else "gt"
            t = _iso(_parse_ts(ts))
            must.append(_or([{"range": {"@timestamp": {cmp: t}}},
                             {"bool": {"filter": [{"term": {"@timestamp": t}}, {"range": {"event.id": {cmp: eid}}}]}}]))
        return {"bool": {"filter": must}}

    def _paged(self, index: str, query: dict[str, Any], sort: list[Any], limit: int,
               after: list[Any] | None = None) -> list[dict[str, Any]]:
        """Up to ``limit`` hits in ``sort`` order, paging with search_after past the 10k window."""
        out: list[dict[str, Any]] = []
        remaining = max(0, int(limit))
        while remaining > 0:
            kw: dict[str, Any] = {"search_after": after} if after else {}
            r = self._call("search", self.es.search, index=index, query=query, sort=sort,
                           size=min(remaining, MAX_PAGE), track_total_hits=False, ignore_unavailable=True,
                           allow_no_indices=True, **kw)
            hits = r["hits"]["hits"]
            out += hits
            if len(hits) < min(remaining, MAX_PAGE):
                break
            remaining -= len(hits)
            after = hits[-1]["sort"]
        return out

    def alerts(self, *, rule_id: str | None = None, limit: int = 100) -> list[Alert]:
        q: dict[str, Any] = {"term": {"rule_id": rule_id}} if rule_id else {"match_all": {}}
        sort = [{"last_seen": {"order": "desc"}}, {"id": {"order": "asc"}}]
        return [Alert.model_validate(h["_source"]) for h in self._paged(self.alerts_index, q, sort, limit)]

    def dead_letters(self, limit: int = 100) -> list[dict[str, Any]]:
        return [{"id": did, **d.to_row()} for did, d in self.dead_letter_records(limit)]

    def dead_letter_records(self, limit: int = 100) -> list[tuple[str, DeadLetter]]:
        """(id, dead letter with its exact raw bytes), oldest first: for show and replay."""
        sort = [{"@timestamp": {"order": "asc"}}, {"origin": {"order": "asc"}}, {"id": {"order": "asc"}}]
        out = []
        for h in self._paged(self.dead_letters_index, {"match_all": {}}, sort, limit):
            s = h["_source"]
            out.append((h["_id"], DeadLetter(raw=base64.b64decode(s["raw_b64"]), reason=s["reason"],
                                             source=s.get("source") or "", origin=s.get("origin") or "",
                                             log_type=s.get("log_type"), stage=s["stage"],
                                             received_at=_parse_ts(s["@timestamp"]))))
        return out

    def stats(self) -> dict[str, Any]:
        """Same shape as ``SqliteStore.stats()``, from terms aggregations."""
        opts = {"size": 0, "ignore_unavailable": True, "allow_no_indices": True}
        ev = self._call("read stats", self.es.search, index=self.events_pattern, **opts, aggs={
            "by": {"terms": {"field": "event.dataset", "missing": "?", "size": 10_000}}})
        dl = self._call("read stats", self.es.search, index=self.dead_letters_index, **opts, aggs={
            "by": {"terms": {"field": "log_type", "missing": "unknown", "size": 10_000}},
            "reasons": {"terms": {"field": "reason", "size": 10}}})
        al = self._call("read stats", self.es.search, index=self.alerts_index, **opts, aggs={
            "by": {"terms": {"field": "rule_id", "size": 10_000, "order": {"_key": "asc"}},
                   "aggs": {"events": {"sum": {"field": "count"}}}}})
        by_type = _buckets(ev)
        dl_type = _buckets(dl)
        reasons = [{"reason": b["key"], "count": b["doc_count"]}
                   for b in (dl.body.get("aggregations") or {}).get("reasons", {}).get("buckets", [])]
        rules = {b["key"]: {"alerts": b["doc_count"], "events": int(b["events"]["value"])}
                 for b in (al.body.get("aggregations") or {}).get("by", {}).get("buckets", [])}
        return {
            "events": {"total": sum(by_type.values()), "by_log_type": by_type},
            "dead_letters": {"total": sum(dl_type.values()), "by_log_type": dl_type, "top_reasons": reasons},
            "alerts": {"total": sum(v["alerts"] for v in rules.values()), "by_rule": rules},
        }

    # --- the self-audit: who read what (apart from the access events, append-only) ----------

    def self_audit_index(self, day: date) -> str:
        return f"{self.prefix}-self-audit-{day:%Y.%m.%d}"

    def write_self_audit(self, records: list[dict[str, Any]]) -> None:
        """Append self-audit records to daily ``<prefix>-self-audit-YYYY.MM.DD`` indices, apart from
        the event indices (so event retention and event queries never reach them). Created with
        ``op_type=create`` only: a record is never overwritten. Raises StoreError/StoreUnavailableError."""
        for r in records:
            day = datetime.fromisoformat(r["@timestamp"]).astimezone(UTC).date()
            self._call("write the self-audit", self.es.create, index=self.self_audit_index(day), id=r["id"],
                       document=r)

    def self_audit(self, *, since: datetime | None = None, until: datetime | None = None,
                   actor: str | None = None, subject_id: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Self-audit records, newest first; ``subject_id``: those whose query named that subject."""
        flt: list[dict[str, Any]] = []
        rng = {**({"gte": _iso(since)} if since else {}), **({"lt": _iso(until)} if until else {})}
        if rng:
            flt.append({"range": {"@timestamp": rng}})
        if actor:
            flt.append({"term": {"actor": actor}})
        if subject_id:
            flt.append({"term": {"subject_ids": subject_id}})
        hits = self._paged(self.self_audit_pattern, {"bool": {"filter": flt}},
                           [{"@timestamp": {"order": "desc"}},
                            {"seq": {"order": "desc", "unmapped_type": "long"}}, {"id": {"order": "desc"}}], limit)
        return [h["_source"] for h in hits]

    # --- retention port (docs/design/decisions.md section 5) ---------------------------------

    def _audit_retention_days(self, cls: str) -> list[date]:
        """The UTC days that hold records of data class ``cls`` (one index per day), oldest first."""
        _self_audit_only(cls)
        r = self._call("list self-audit indices", self.es.indices.get, index=self.self_audit_pattern,
                       allow_no_indices=True, ignore_unavailable=True, expand_wildcards="open,closed")
        pat = re.compile(re.escape(self.prefix) + r"-self-audit-(\d{4})\.(\d{2})\.(\d{2})")
        days = []
        for name in r.body:
            m = pat.fullmatch(name)
            if m:
                with contextlib.suppress(ValueError):
                    days.append(date(int(m[1]), int(m[2]), int(m[3])))
        return sorted(days)

    def _audit_count_day(self, cls: str, day: date) -> int:
        _self_audit_only(cls)
        r = self._call("count the self-audit", self.es.options(ignore_status=404).count,
                       index=self.self_audit_index(day))
        return int(r.body.get("count", 0)) if r.meta.status == 200 else 0

    def _audit_delete_day(self, cls: str, day: date) -> int:
        """Delete one whole UTC day of ``cls`` (its daily index, by exact name); return how many records went."""
        n = self.count_day(cls, day)
        self._call("delete a self-audit day", self.es.options(ignore_status=404).indices.delete,
                   index=self.self_audit_index(day))
        return n

    # --- retention ------------------------------------------------------------------------

    def event_indices(self) -> list[str]:
        """Names of the daily event indices, sorted."""
        r = self._call("list event indices", self.es.indices.get, index=self.events_pattern,
                       allow_no_indices=True, ignore_unavailable=True, expand_wildcards="open,closed")
        return sorted(n for n in r.body if self._daily.fullmatch(n))

    def delete_indices_older_than(self, days: int, now: datetime) -> list[str]:
        """Delete the daily event indices whose whole day lies before ``now - days``; return their names.

        An index for day D holds events of [D, D+1): it goes once D+1 <= now - days, so no event
        younger than the retention period is deleted. Alerts, dead letters and state are kept.
        Indices are deleted by exact name (works with ``action.destructive_requires_name``).
        """
        if days < 1:
            raise ValueError(f"retention must be at least 1 day (got {days})")
        if now.tzinfo is None:
            now = now.replace(tzinfo=UTC)
        cutoff = now.astimezone(UTC) - timedelta(days=days)
        old = []
        for name in self.event_indices():
            m = self._daily.fullmatch(name)
            assert m is not None
            try:
                day = datetime(int(m[1]), int(m[2]), int(m[3]), tzinfo=UTC)
            except ValueError:
                continue
            if day + timedelta(days=1) <= cutoff:
                old.append(name)
        for i in range(0, len(old), 50):
            batch = old[i:i + 50]
            self._call("delete old event indices", self.es.indices.delete, index=",".join(batch))
            log.info("retention: deleted %s", ", ".join(batch))
        return old

    # --- retention by whole UTC days and legal holds (access_audit.retention) --------------

    #: data classes kept in one index, and the time field that dates a record. Events have a
    #: daily index each (a day is deleted by deleting its index: a held index is kept whole);
    #: ``self_audit`` is read from ``<prefix>-self-audit*`` when such indices exist.
    RETENTION_FIELDS: ClassVar[dict[str, str]] = {"dead_letters": "@timestamp", "alerts": "last_seen",
                                                  "self_audit": "@timestamp"}

    @property
    def holds_index(self) -> str:
        return f"{self.prefix}-legal-holds"

    def _retention_index(self, cls: str) -> str:
        if cls == "dead_letters":
            return self.dead_letters_index
        if cls == "alerts":
            return self.alerts_index
        if cls == "self_audit":
            return f"{self.prefix}-self-audit*"
        raise ValueError(f"unknown data class {cls!r}")

    def _day_of_index(self, name: str) -> date | None:
        m = self._daily.fullmatch(name)
        if m is None:
            return None
        try:
            return date(int(m[1]), int(m[2]), int(m[3]))
        except ValueError:
            return None

    def retention_days(self, cls: str) -> list[date]:
        """The UTC days holding records of ``cls``, oldest first (events: one per daily index)."""
        if cls == "self_audit":  # its own daily indices, append-only (api.audit)
            return self._audit_retention_days(cls)
        if cls == "events":
            return sorted(d for n in self.event_indices() if (d := self._day_of_index(n)) is not None)
        index, fld = self._retention_index(cls), self.RETENTION_FIELDS[cls]
        r = self._call(f"list {cls} days", self.es.search, index=index, size=0, ignore_unavailable=True,
                       allow_no_indices=True, aggs={"d": {"date_histogram": {
                           "field": fld, "calendar_interval": "day", "time_zone": "UTC", "min_doc_count": 1}}})
        buckets = (r.body.get("aggregations") or {}).get("d", {}).get("buckets", [])
        return [datetime.fromtimestamp(b["key"] / 1000, tz=UTC).date() for b in buckets]

    def _day_query(self, cls: str, day: date) -> dict[str, Any]:
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        return {"range": {self.RETENTION_FIELDS[cls]: {"gte": _iso(start), "lt": _iso(start + timedelta(days=1))}}}

    def count_day(self, cls: str, day: date) -> int:
        if cls == "self_audit":  # its own daily indices, append-only (api.audit)
            return self._audit_count_day(cls, day)
        if cls == "events":
            index = f"{self.prefix}-events-{day:%Y.%m.%d}"
            r = self._call("count a day", self.es.count, index=index, ignore_unavailable=True, allow_no_indices=True)
        else:
            r = self._call("count a day", self.es.count, index=self._retention_index(cls),
                           query=self._day_query(cls, day), ignore_unavailable=True, allow_no_indices=True)
        return int(r.body["count"])

    def delete_day(self, cls: str, day: date) -> int:
        """Events: delete the day's index (by exact name) and return how many events it held;
        other classes: delete-by-query on the day's range, refreshed, waiting for completion."""
        if cls == "self_audit":  # its own daily indices, append-only (api.audit)
            return self._audit_delete_day(cls, day)
        n = self.count_day(cls, day)
        if cls == "events":
            index = f"{self.prefix}-events-{day:%Y.%m.%d}"
            self._call("delete a daily index", self.es.options(ignore_status=404).indices.delete, index=index)
            log.info("retention: deleted %s (%d events)", index, n)
            return n
        # search + bulk delete by id, not _delete_by_query: that needs the reindex module, which
        # minimal distributions (the integration-test build) do not ship
        index, deleted = self._retention_index(cls), 0
        while True:
            r = self._call(f"find {cls} of a day", self.es.search, index=index, query=self._day_query(cls, day),
                           size=1000, source=False, ignore_unavailable=True, allow_no_indices=True)
            hits = r.body["hits"]["hits"]
            if not hits:
                return deleted
            body = [{"delete": {"_index": h["_index"], "_id": h["_id"]}} for h in hits]
            res = self._call(f"delete {cls} of a day", self.es.bulk, operations=body, refresh=True)
            deleted += sum(1 for it in res.body["items"] if it["delete"].get("result") == "deleted")
            bad = [it["delete"] for it in res.body["items"] if it["delete"].get("status", 200) >= 300
                   and it["delete"].get("status") != 404]
            if bad:
                raise StoreError(f"elasticsearch refused to delete {cls} of {day}: {bad[0].get('error')}")

    def legal_holds(self) -> list[dict[str, Any]]:
        """The stored legal holds (``access_audit.retention.LegalHold.to_doc()``), by id."""
        r = self._call("read legal holds", self.es.options(ignore_status=404).search, index=self.holds_index,
                       size=10_000, query={"match_all": {}}, sort=[{"id": "asc"}])
        if r.meta.status == 404:
            return []
        return [dict(h["_source"]) for h in r.body["hits"]["hits"]]

    def put_legal_hold(self, hold: dict[str, Any]) -> None:
        """Insert or replace a legal hold by its ``id`` (visible to search at once)."""
        self._call("create the legal holds index", self.es.options(ignore_status=400).indices.create,
                   index=self.holds_index, settings={"index": {"number_of_shards": 1}},
                   mappings={"dynamic": False, "properties": {"id": _keyword(), "since": {"type": "date"},
                                                               "until": {"type": "date"},
                                                               "expires": {"type": "date"}}})
        self._call("write a legal hold", self.es.index, index=self.holds_index, id=str(hold["id"]), document=hold,
                   refresh="wait_for")


def _self_audit_only(cls: str) -> None:
    if cls != "self_audit":  # the other classes: access_audit.retention (issue 15)
        raise ValueError(f"unknown data class {cls!r} for this store method")


SELF_AUDIT_MAPPINGS: dict[str, Any] = {
    "dynamic": True,
    "dynamic_templates": [{"strings": {"match_mapping_type": "string",
                                       "mapping": {"type": "keyword", "ignore_above": KEYWORD_MAX}}}],
    "properties": {"@timestamp": {"type": "date_nanos"}, "id": {"type": "keyword"}, "hits": {"type": "long"},
                   "seq": {"type": "long"},
                   "status": {"type": "integer"}},
}


# --- query translation ----------------------------------------------------------------------

MATCH_NONE: dict[str, Any] = {"match_none": {}}


def _or(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"bool": {"should": items, "minimum_should_match": 1}}


def _dsl(e: Expr) -> dict[str, Any]:
    if isinstance(e, MatchAll):
        return {"match_all": {}}
    if isinstance(e, And):
        return {"bool": {"filter": [_dsl(x) for x in e.items]}}
    if isinstance(e, Or):
        return _or([_dsl(x) for x in e.items])
    if isinstance(e, Not):
        return {"bool": {"must_not": [_dsl(e.item)]}}
    assert isinstance(e, Term)
    return _term(e)


def _ftype(field_name: str) -> Any:
    if field_name in IP_FIELDS:
        return "ip"
    t = FIELD_TYPES.get(field_name)
    return str if t is None else t  # labels.* and cloud.account.* are keywords


def _term(e: Term) -> dict[str, Any]:
    """One Term as Elasticsearch DSL, with the meaning SqliteStore gives it.

    - eq: exact, case-sensitive; numbers and booleans converted like SQLite does (``"true"``,
      ``"1"``, ``"yes"`` are true). IP fields compare the string as written (``.keyword``).
    - prefix: keyword ``prefix``; on integers the decimal-string prefix as ranges
      (``http.response.status_code:5*`` = 5, 50-59, 500-599...); on IPs the string prefix.
    - cidr: a term with the CIDR on the ``ip`` field.
    - text: case-insensitive substring of ``message`` or ``event.original`` (wildcard with
      ``*`` ``?`` ``\\`` escaped). User text is never a query_string.

    Known differences, all on queries that make little sense: comparing a text field with a
    number (SQLite mixes text and numeric ordering), prefix on dates, booleans and geo
    coordinates (no match here), ``@timestamp:<exact time>`` (matches here, never in SQLite),
    and strings longer than 8191 characters, which are stored but not indexed.
    """
    f = e.field
    if e.op == "text":
        needle = "*" + re.sub(r"([\\*?])", r"\\\1", str(e.value)) + "*"
        return _or([{"wildcard": {k: {"value": needle, "case_insensitive": True}}}
                    for k in ("message", "event.original")])
    t = _ftype(f)
    if e.op == "exists":
        return {"match_all": {}} if f in ALWAYS_PRESENT else {"exists": {"field": f}}
    if e.op == "cidr":
        try:
            ipaddress.ip_network(str(e.value), strict=False)
        except ValueError:
            return MATCH_NONE
        return {"term": {f: str(e.value)}}
    if e.op == "eq":
        if t == "ip":
            return {"term": {f"{f}.keyword": str(e.value)}}
        v = _typed(t, e.value)
        return MATCH_NONE if v is None else {"term": {f: v}}
    if e.op == "prefix":
        p = str(e.value)
        if t == "ip":
            return {"prefix": {f"{f}.keyword": p}}
        if t is int:
            return _int_prefix(f, p)
        if t in (bool, float, datetime) or t == "object":
            return MATCH_NONE
        return {"prefix": {f: p}}
    # gt / gte / lt / lte
    op = e.op
    if t is datetime:
        try:
            return {"range": {f: {op: _iso(_parse_ts(str(e.value)))}}}
        except ValueError:
            return MATCH_NONE
    if t is bool:
        try:
            x = float(e.value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return MATCH_NONE
        ok = [b for b in (False, True) if _cmp(op, int(b), x)]
        return {"terms": {f: ok}} if ok else MATCH_NONE
    if t in (int, float):
        try:
            x = float(e.value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return MATCH_NONE
        if t is int and not LONG_MIN <= x <= LONG_MAX:
            return {"match_all": {}} if (x < 0) == (op in ("gt", "gte")) else MATCH_NONE
        return {"range": {f: {op: int(x) if x.is_integer() else x}}}
    if t == "object":
        return MATCH_NONE
    v = e.value
    text = repr(float(v)) if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v)
    return {"range": {f"{f}.keyword" if t == "ip" else f: {op: text}}}


def _cmp(op: str, a: float, b: float) -> bool:
    return {"gt": a > b, "gte": a >= b, "lt": a < b, "lte": a <= b}[op]


def _typed(t: Any, value: Any) -> Any:
    """A query value converted to the field's type, as SqliteStore converts it; None = cannot match."""
    if t is bool:
        return str(value).lower() in ("true", "1", "yes")
    if t is int:
        try:
            v = int(value)
        except (TypeError, ValueError):
            return None
        return v if LONG_MIN <= v <= LONG_MAX else None
    if t is float:
        try:
            return float(value)
        except (TypeError, ValueError):
            return None
    if t is datetime:
        try:
            return _iso(_parse_ts(str(value)))
        except ValueError:
            return None
    if t == "object":
        return None
    return str(value)


def _int_prefix(f: str, p: str) -> dict[str, Any]:
    """Integers whose decimal string starts with ``p``, as ranges (SQLite: substr(value) = p)."""
    neg = p.startswith("-")
    digits = p[1:] if neg else p
    if neg and not digits:
        return {"range": {f: {"lt": 0}}}
    if not digits.isdigit() or not digits.isascii():
        return MATCH_NONE
    if digits.startswith("0"):
        return {"term": {f: 0}} if digits == "0" and not neg else MATCH_NONE
    d = int(digits)
    ranges = []
    scale = 1
    while d * scale <= LONG_MAX:
        lo, hi = d * scale, min(d * scale + scale - 1, LONG_MAX)
        ranges.append({"range": {f: {"gte": -hi, "lte": -lo} if neg else {"gte": lo, "lte": hi}}})
        scale *= 10
    return _or(ranges) if ranges else MATCH_NONE


def _parse_ts(s: str) -> datetime:
    dt = datetime.fromisoformat(s.strip().replace("Z", "+00:00"))
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _iso(dt: datetime) -> str:
    """A time for a date query, with all nine fraction digits: Elasticsearch fills missing digits
    with 9s for gt/lte/term (it rounds a bare ``09:00:00`` up to ``09:00:00.999999999``)."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    dt = dt.astimezone(UTC)
    return f"{dt:%Y-%m-%dT%H:%M:%S}.{dt.microsecond:06d}000Z"


def _nanos(ts: str) -> int:
    """Sort value of a date_nanos field for search_after: exact integer nanoseconds."""
    return (_parse_ts(ts) - _EPOCH) // timedelta(microseconds=1) * 1000


def _buckets(r: Any) -> dict[str, int]:
    return {b["key"]: b["doc_count"] for b in (r.body.get("aggregations") or {}).get("by", {}).get("buckets", [])}


def _chunks(ops: list[_Op]) -> Iterator[list[_Op]]:
    """Bulk requests of at most BULK_MAX_DOCS documents and BULK_MAX_BYTES."""
    chunk: list[_Op] = []
    size = 0
    for op in ops:
        n = len(op.payload)
        if chunk and (len(chunk) >= BULK_MAX_DOCS or size + n > BULK_MAX_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(op)
        size += n
    if chunk:
        yield chunk


def _dumps(doc: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(doc)
    except orjson.JSONEncodeError:  # e.g. a file name with undecodable bytes (lone surrogates)
        return json.dumps(doc, ensure_ascii=True).encode()


def _reason(err: dict[str, Any] | None) -> str:
    if not err:
        return "unknown error"
    out = f"{err.get('type')}: {err.get('reason')}"
    cause = err.get("caused_by")
    if cause:
        out += f" (caused by {cause.get('type')}: {cause.get('reason')})"
    return out[:2000]


def _store_dead_letter(ev: AccessEvent, index: str, doc: dict[str, Any], err: dict[str, Any],
                       now: datetime) -> DeadLetter:
    origin = ev.log_origin or f"event:{ev.id}"
    raw = (ev.event.original if ev.event.original is not None else orjson.dumps(doc).decode()).encode()
    return DeadLetter(raw=raw, reason=f"elasticsearch refused the event: {_reason(err)}",
                      source=origin.rsplit(":", 1)[0] if ev.log_origin and ":" in origin else origin,
                      origin=origin, log_type=ev.event.dataset, stage="store", received_at=now,
                      extra={"event_id": ev.id, "index": index, "error_type": err.get("type"), "event": doc})
