"""Rule state as data: per rule and partition, versioned, checkpointed by what changed.

docs/design/decisions.md, section 4. A stateful rule keeps its groups in a ``Groups`` map (an LRU
capped at ``max_keys``) that records which groups changed since the last checkpoint. A checkpoint
writes only those (and deletes the evicted or finished ones), so its cost follows the change, not
the size of the state. Nothing is pickled: values are plain JSON through a small tagged codec
(datetimes, tuples, sets, deques and maps with non-string keys are tagged), which decodes into
data and never runs code, whoever wrote the store.

Stored rows (``StateRows`` port, implemented by both stores):
    namespace  = "<rule id>/<partition>"   (partition -1: files and the embedded bus)
    key ""     -> {"v": 2, "kind": ..., "fp": <fingerprint>, "evicted": n}
    key <json> -> <the group's state>
A rule whose fingerprint (kind and the settings that shape its state: grouping, windows...) differs
from the stored one starts fresh, with a warning, instead of misreading the old state.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any, Protocol

import orjson

STATE_VERSION = 2
META_KEY = ""


class StateRows(Protocol):
    """Where rule state lives (both stores implement it).

    ``write_state`` is called at a checkpoint, right after the source committed: the upserts and
    deletes of every namespace in one call, applied atomically where the store can (SQLite: one
    transaction). Raises StoreError/StoreUnavailableError; the pipeline retries at the next
    checkpoint and keeps the changes pending (they are not lost).
    """

    def write_state(self, upserts: list[tuple[str, str, bytes]], deletes: list[tuple[str, str]]) -> None: ...

    def read_state(self, namespace: str) -> Iterator[tuple[str, bytes]]:
        """Every (key, value) of a namespace; called when a rule's partition is restored."""
        ...

    def drop_state(self, namespace: str) -> None:
        """Forget a namespace (a rule whose grouping changed; a partition that moved away)."""
        ...


# --- the codec ------------------------------------------------------------------------------

def encode(v: Any) -> Any:
    """Plain data (JSON-ready) for a state value."""
    if v is None or isinstance(v, (str, bool, int, float)):
        return v
    if isinstance(v, datetime):
        return {"$t": int(v.timestamp() * 1_000_000)}
    if isinstance(v, timedelta):
        return {"$td": v.total_seconds()}
    if isinstance(v, Enum):
        return encode(v.value)
    if isinstance(v, list):
        return [encode(x) for x in v]
    if isinstance(v, tuple):
        return {"$tu": [encode(x) for x in v]}
    if isinstance(v, deque):
        return {"$dq": [encode(x) for x in v], "max": v.maxlen}
    if isinstance(v, (set, frozenset)):
        return {"$s": [encode(x) for x in v]}
    if isinstance(v, dict):
        if all(isinstance(k, str) and not k.startswith("$") for k in v):
            return {k: encode(x) for k, x in v.items()}
        return {"$d": [[encode(k), encode(x)] for k, x in v.items()]}
    raise TypeError(f"rule state holds a {type(v).__name__}, which the state codec does not carry")


def decode(v: Any) -> Any:
    if isinstance(v, list):
        return [decode(x) for x in v]
    if not isinstance(v, dict):
        return v
    if len(v) <= 2:
        if "$t" in v:
            return datetime.fromtimestamp(v["$t"] / 1_000_000, tz=UTC)
        if "$tu" in v:
            return tuple(decode(x) for x in v["$tu"])
        if "$dq" in v:
            return deque((decode(x) for x in v["$dq"]), v.get("max"))
        if "$s" in v:
            return {decode(x) for x in v["$s"]}
        if "$d" in v:
            return {_hashable(decode(k)): decode(x) for k, x in v["$d"]}
        if "$td" in v:
            return timedelta(seconds=v["$td"])
    return {k: decode(x) for k, x in v.items()}


def _hashable(v: Any) -> Any:
    return tuple(_hashable(x) for x in v) if isinstance(v, list) else v


def dumps(v: Any) -> bytes:
    return orjson.dumps(encode(v))


def loads(b: bytes | str) -> Any:
    return decode(orjson.loads(b))


def key_text(key: Any) -> str:
    """A group key (a tuple) as the row key."""
    return orjson.dumps(encode(key)).decode()


def key_from_text(text: str) -> Any:
    return _hashable(decode(orjson.loads(text)))


# --- the map --------------------------------------------------------------------------------

class Groups(OrderedDict[Any, Any]):
    """LRU map of group key -> state, capped at ``cap`` entries, that knows what changed.

    Every write (``touch``, item assignment) marks the key dirty; removals (eviction, ``pop``,
    ``del``) mark it dirty too, and a dirty key no longer present is a delete at the next
    checkpoint. Rules mutate a group's state in place after ``touch``, which is why ``touch``
    marks the key even when it only reads.
    """

    def __init__(self, cap: int) -> None:
        super().__init__()
        self.cap = cap
        self.evicted = 0
        self.dirty: set[Any] = set()
        self.all_dirty = False  # after a reset: every stored row must go

    def touch(self, key: Any, factory: Callable[[], Any]) -> Any:
        st = self.get(key)
        self.dirty.add(key)
        if st is None:
            st = factory()
            OrderedDict.__setitem__(self, key, st)
            if len(self) > self.cap:
                old, _ = OrderedDict.popitem(self, last=False)
                self.dirty.add(old)
                self.evicted += 1
        else:
            self.move_to_end(key)
        return st

    def __setitem__(self, key: Any, value: Any) -> None:
        self.dirty.add(key)
        OrderedDict.__setitem__(self, key, value)

    def __delitem__(self, key: Any) -> None:
        self.dirty.add(key)
        OrderedDict.__delitem__(self, key)

    def pop(self, key: Any, *default: Any) -> Any:
        self.dirty.add(key)
        return OrderedDict.pop(self, key, *default)

    def clear(self) -> None:
        OrderedDict.clear(self)
        self.dirty.clear()
        self.all_dirty = True

    def changes(self) -> tuple[list[tuple[str, bytes]], list[str], bool]:
        """(upserts, deletes, drop everything first) since the last call; resets the record."""
        ups: list[tuple[str, bytes]] = []
        dels: list[str] = []
        for k in self.dirty:
            if k in self:
                ups.append((key_text(k), dumps(OrderedDict.__getitem__(self, k))))
            else:
                dels.append(key_text(k))
        self.dirty.clear()
        drop, self.all_dirty = self.all_dirty, False
        return ups, dels, drop

    def load(self, rows: Iterable[tuple[str, bytes]]) -> int:
        """Take back stored groups (the meta row is the caller's). Returns how many."""
        n = 0
        for k, v in rows:
            if k == META_KEY:
                continue
            OrderedDict.__setitem__(self, key_from_text(k), loads(v))
            n += 1
        self.dirty.clear()
        self.all_dirty = False
        return n


# --- fingerprints ---------------------------------------------------------------------------

_NOT_STATE = {"id", "title", "match", "severity", "description", "risk_score", "tags", "mitre", "personal_data",
              "dedup_fields", "suppress", "summary", "source", "tests", "max_keys", "ctx", "sigma_id", "sigma_name",
              "false_positives", "references", "logsource", "log_types", "unknown_user", "requires",
              "resolver", "lateness"}


def fingerprint(rule: Any) -> str:
    """A hash of the settings that shape a rule's state: when it changes, the old state is not read."""
    parts = [rule.kind]
    if dataclasses.is_dataclass(rule):
        for f in dataclasses.fields(rule):
            if f.name in _NOT_STATE or f.name.startswith("_"):
                continue
            parts.append(f"{f.name}={_fp(getattr(rule, f.name))}")
    return hashlib.blake2b("\x00".join(parts).encode(), digest_size=8).hexdigest()


def _fp(v: Any) -> str:
    if callable(v) and not isinstance(v, type):
        return "fn"
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return "{" + ",".join(f"{f.name}:{_fp(getattr(v, f.name))}" for f in dataclasses.fields(v)) + "}"
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(_fp(x) for x in v) + "]"
    if isinstance(v, (set, frozenset)):  # string hashes differ per process: sort, never repr
        return "{" + ",".join(sorted(_fp(x) for x in v)) + "}"
    if isinstance(v, dict):
        return "{" + ",".join(sorted(f"{_fp(k)}:{_fp(x)}" for k, x in v.items())) + "}"
    if v is None or isinstance(v, (str, int, float, bool, timedelta, Enum)):
        return repr(v)
    return type(v).__name__  # an object (a context, a compiled pattern): its identity is not state shape
