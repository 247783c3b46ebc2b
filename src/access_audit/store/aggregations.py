"""What the stores' aggregations share: which fields can be counted, the histogram's intervals,
and filling the empty buckets, so that SqliteStore and ElasticsearchStore give identical results.

``aggregate(query, field, size)`` counts events per value of ``field`` (a list field counts each
distinct value once per event), most frequent first, ties by value; events without the field are
not counted. ``histogram(query, interval)`` counts events per fixed interval of ``@timestamp``,
aligned to the Unix epoch in UTC, with empty buckets filled in between the first and the last
(or over ``since``/``until`` when the query has them).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from access_audit.core.errors import QueryError
from access_audit.core.fields import FIELD_TYPES, FREE_TEXT, field_class, known_field
from access_audit.store.query import IP_FIELDS, PseudonymRefusedError, Query

MAX_BUCKETS = 5000
MAX_TERMS = 10_000
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_INTERVAL = re.compile(r"^(\d{1,6})(s|m|h|d|w)$")
_NOT_COUNTABLE = {"message", "event.original"}  # free text: searched, never aggregated


def check_terms_field(field_name: str, size: int) -> None:
    """Raise QueryError unless ``field_name`` can be aggregated: a known keyword, enum, IP or integer
    field (``labels.*`` included). Dates go to ``histogram``; floats, booleans and free text are refused."""
    if not known_field(field_name):
        raise QueryError(f"unknown field {field_name!r}")
    if not 1 <= size <= MAX_TERMS:
        raise QueryError(f"size must be between 1 and {MAX_TERMS} (got {size})")
    if field_name in _NOT_COUNTABLE:
        raise QueryError(f"{field_name} is free text: it can be searched, not counted")
    if field_name in IP_FIELDS:
        return
    t = FIELD_TYPES.get(field_name)  # None: an open map (labels.*), keywords
    if t is None or t is int or (isinstance(t, type) and issubclass(t, str)):
        return
    kind = "a date (use the histogram)" if t is datetime else "an object" if t == "object" else \
        f"of type {getattr(t, '__name__', t)}"
    raise QueryError(f"cannot count values of {field_name}: it is {kind}")


def check_terms_field_for_pseudonyms(field_name: str, role: str = "this role") -> None:
    """For a role that sees pseudonyms: free-text fields (URL path and query, referrer, labels such as
    purposes) are not counted, their values would name people; personal fields are counted, and
    their buckets are shown as pseudonyms. Raises PseudonymRefusedError."""
    if field_class(field_name) == FREE_TEXT:
        raise PseudonymRefusedError(f"{role} sees pseudonyms: {field_name} is free text, it cannot be counted")


def interval_seconds(text: str) -> int:
    """'30s', '5m', '1h', '1d', '1w' -> seconds. Raises QueryError otherwise."""
    m = _INTERVAL.match(text.strip())
    if not m or int(m[1]) == 0:
        raise QueryError(f"invalid interval {text!r}: use e.g. 30s, 5m, 1h, 1d or 1w")
    return int(m[1]) * UNITS[m[2]]


def bucket_start(t: datetime, seconds: int) -> datetime:
    epoch_us = (t.astimezone(UTC) - _EPOCH) // timedelta(microseconds=1)
    step = seconds * 1_000_000
    return _EPOCH + timedelta(microseconds=epoch_us - epoch_us % step)


def check_span(query: Query, seconds: int) -> None:
    """Refuse a time range that would need more than MAX_BUCKETS buckets (before querying)."""
    if query.since and query.until and (query.until - query.since).total_seconds() / seconds > MAX_BUCKETS:
        raise QueryError(f"interval too small for the time range: more than {MAX_BUCKETS} buckets")


def fill(counts: dict[datetime, int], query: Query, seconds: int) -> list[tuple[datetime, int]]:
    """Every bucket from the first to the last (widened to since/until), empty ones as 0."""
    if not counts and not (query.since and query.until):
        return []
    first = min(counts) if counts else bucket_start(query.since, seconds)  # type: ignore[arg-type]
    last = max(counts) if counts else first
    if query.since:
        first = min(first, bucket_start(query.since, seconds))
    if query.until:
        end = bucket_start(query.until - timedelta(microseconds=1), seconds)
        last = max(last, end) if end >= first else last
    n = int((last - first).total_seconds() // seconds) + 1
    if n > MAX_BUCKETS:
        raise QueryError(f"interval too small for the time range: {n} buckets (at most {MAX_BUCKETS})")
    step = timedelta(seconds=seconds)
    return [(first + i * step, counts.get(first + i * step, 0)) for i in range(n)]


def top(pairs: list[tuple[Any, int]], size: int) -> list[tuple[Any, int]]:
    """Most frequent first, ties by value ascending (the order of both stores)."""
    return sorted(pairs, key=lambda kv: (-kv[1], kv[0]))[:size]


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
