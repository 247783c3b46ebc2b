"""aggregate() and histogram() give the same results on SqliteStore and on a real Elasticsearch
(``scripts/services start elasticsearch``), including list fields, IP fields, integers, labels,
ties, empty buckets and the exact fallback when a terms aggregation could be inexact."""

from __future__ import annotations

import itertools
import os
import random
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from access_audit.core.errors import QueryError
from access_audit.core.events import (
    AccessEvent,
    Endpoint,
    EventInfo,
    Http,
    HttpResponse,
    Outcome,
    Resource,
    User,
    event_id,
)
from access_audit.store.query import Query, parse_query
from access_audit.store.sqlite import SqliteStore

ES_URL = os.environ.get("ACCESS_AUDIT_ELASTICSEARCH_URL", "http://127.0.0.1:19200")
BASE = datetime(2026, 11, 20, 22, 0, tzinfo=UTC)


def events(n: int = 150) -> list[AccessEvent]:
    """Spread over three UTC days (three daily indices), with ties in counts on purpose."""
    rnd = random.Random(11)
    out = []
    for i in range(n):
        user = rnd.choice(["alice", "bob", "carol", "dave", "émile", None])
        ip = rnd.choice(["10.1.2.3", "203.0.113.9", "2001:db8::1", "198.51.100.7", None])
        ev = AccessEvent(
            timestamp=BASE + timedelta(minutes=17 * i, microseconds=rnd.choice([0, 1, 999_999])),
            event=EventInfo(id=event_id(f"agg:{i}", "synthetic", b"x"), dataset=rnd.choice(["crm", "web"]),
                            action=rnd.choice(["read", "export"]), outcome=rnd.choice(list(Outcome)),
                            category=rnd.sample(["web", "file", "iam"], k=rnd.randint(0, 3))),
            user=User(name=user) if user else None,
            source=Endpoint(ip=ip) if ip else None,
            http=Http(response=HttpResponse(status_code=rnd.choice([200, 200, 403, 500]))),
            resource=Resource(name=rnd.choice(["customers", "payroll", "wiki", None]),
                              subject_ids=rnd.sample(["c-1", "c-2", "c-3", "c-4"], k=rnd.randint(0, 3))),
            labels=rnd.choice([{}, {"purpose": "claim handling"}, {"purpose": "fraud check"}]),
        )
        out.append(ev.fill_related())
    return out


@pytest.fixture(scope="module")
def data() -> list[AccessEvent]:
    return events()


@pytest.fixture
def sqlite(tmp_path: Path, data: list[AccessEvent]) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "events.db")
    s.write_events(data)
    yield s
    s.close()


@pytest.fixture
def es(data: list[AccessEvent], es_url: str) -> Iterator[Any]:
    from access_audit.store.elasticsearch import ElasticsearchStore

    s = ElasticsearchStore(es_url, prefix=f"aa-agg-{uuid4().hex[:8]}")
    s.setup()
    s.write_events(data)
    s.refresh()
    yield s
    s.es.options(ignore_status=404).indices.delete(index=f"{s.prefix}-*", expand_wildcards="all")
    s.es.options(ignore_status=404).indices.delete_index_template(name=f"{s.prefix}-events")
    s.close()


def expected_terms(data: list[AccessEvent], field: str, q: Query, size: int) -> list[tuple[Any, int]]:
    """Counted by hand from the models: the meaning both stores must implement."""
    from access_audit.core.events import get_field

    c: Counter[Any] = Counter()
    for ev in data:
        if q.since and ev.timestamp < q.since:
            continue
        v = get_field(ev, tuple(field.split(".")))
        if field.startswith("labels."):
            v = ev.labels.get(field.split(".", 1)[1])
        for x in set(v) if isinstance(v, list) else [v]:
            if x is not None:
                c[x.value if hasattr(x, "value") else x] += 1
    return sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))[:size]


FIELDS = ["user.name", "source.ip", "related.ip", "resource.name", "resource.subject_ids", "event.category",
          "event.outcome", "http.response.status_code", "labels.purpose", "event.dataset"]


def test_sqlite_terms_match_a_hand_count(sqlite, data):
    for f in FIELDS:
        for size in (1, 3, 100):
            assert sqlite.aggregate(Query(), f, size) == expected_terms(data, f, Query(), size), f
    since = BASE + timedelta(days=1)
    assert sqlite.aggregate(Query(since=since), "user.name", 10) == expected_terms(data, "user.name",
                                                                                 Query(since=since), 10)


def test_sqlite_histogram_fills_empty_buckets(sqlite, data):
    h = sqlite.histogram(Query(), "1h")
    assert sum(n for _, n in h) == len(data)
    assert all(b - a == timedelta(hours=1) for (a, _), (b, _) in itertools.pairwise(h))
    assert h[0][0] == BASE and h[-1][0] == (data[-1].timestamp.replace(minute=0, second=0, microsecond=0))
    assert any(n == 0 for _, n in sqlite.histogram(Query(), "5m"))
    # since/until widen the range; the buckets are epoch-aligned
    q = Query(since=BASE - timedelta(hours=2, minutes=30), until=BASE + timedelta(hours=1))
    assert sqlite.histogram(q, "1h") == [(BASE - timedelta(hours=3), 0), (BASE - timedelta(hours=2), 0),
                                         (BASE - timedelta(hours=1), 0), (BASE, 4)]


@pytest.mark.parametrize(("field", "size", "message"), [
    ("nope.field", 10, "unknown field"), ("message", 10, "free text"), ("@timestamp", 10, "histogram"),
    ("authentication.mfa", 10, "bool"), ("user.name", 0, "size"), ("user", 10, "object"),
])
def test_refused_fields(sqlite, field, size, message):
    with pytest.raises(QueryError, match=message):
        sqlite.aggregate(Query(), field, size)


@pytest.mark.parametrize("interval", ["0h", "1y", "h", "-1h", "1.5h"])
def test_refused_intervals(sqlite, interval):
    with pytest.raises(QueryError, match="interval"):
        sqlite.histogram(Query(), interval)


def test_too_many_buckets_is_refused_before_querying(sqlite):
    with pytest.raises(QueryError, match="buckets"):
        sqlite.histogram(Query(since=BASE - timedelta(days=400), until=BASE), "1m")


QUERIES = ["", "event.outcome:failure", "NOT source.ip:10.0.0.0/8", "resource.subject_ids:c-2",
           "user.name:a* OR labels.purpose:*"]


@pytest.mark.integration
def test_same_terms_and_histograms_on_both_stores(sqlite, es):
    for text in QUERIES:
        for since in (None, BASE + timedelta(hours=20)):
            q = Query(expr=parse_query(text), since=since, limit=1, after=("2026-11-21T00:00:00+00:00", "x"))
            for f in FIELDS:
                for size in (2, 50):
                    assert es.aggregate(q, f, size) == sqlite.aggregate(q, f, size), (text, f, size)
            for interval in ("30m", "1h", "1d", "1w"):
                assert es.histogram(q, interval) == sqlite.histogram(q, interval), (text, interval)


@pytest.mark.integration
def test_inexact_terms_fall_back_to_an_exact_count(sqlite, es, monkeypatch):
    import access_audit.store.elasticsearch as es_module

    es.terms_shard_size = 1  # each daily index proposes one value: the terms result may be wrong
    monkeypatch.setattr(es_module, "MAX_PAGE", 2)  # and the composite aggregation pages
    for f in ("user.name", "resource.subject_ids", "http.response.status_code"):
        assert es.aggregate(Query(), f, 3) == sqlite.aggregate(Query(), f, 3), f
