"""Stateful and context-aware rule kinds beyond match/threshold/sequence.

- ``value_count``: distinct values of a field per group in a window (password spraying: one
  address, many users; mass reads: one user, many data subjects).
- ``new_terms``: a value never seen for this key within the history (new country for a user).
- ``anomaly``: per-entity baselines of activity per time bucket (median of active buckets, with
  a warm-up and a minimum volume): a user reading fifty times their normal number of records.
- ``geo_velocity``: impossible travel between consecutive located events of one user.
- ``dormant``: an account active again after a long silence.
- ``off_hours``: access outside the user's working hours, in the user's own time zone.
- ``policy``: need-to-know (role not allowed for the resource's data), suspended or terminated
  accounts, privileged access without the justification the resource requires.

All windows run on event time. State is bounded (LRU caps per rule, counted evictions) and can be
snapshotted and restored so a restarted worker keeps its baselines.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from statistics import median
from typing import Any, ClassVar

from access_audit.core.events import AccessEvent
from access_audit.core.fields import Accessor, accessor
from access_audit.detect.rules import MAX_EVIDENCE, Detection, GroupState, Rule, _Groups, _hashable, _weight

Key = tuple[Any, ...]


@dataclass
class DetectContext:
    """What context-aware rules consult: the identity directory and the resource catalogue."""

    directory: Any = None  # access_audit.enrich.directory.IdentityDirectory
    catalogue: Any = None  # access_audit.enrich.catalogue.ResourceCatalogue


class _Stateful(GroupState, Rule):
    """Base for kinds with per-key state in an LRU map."""

    def _init_state(self) -> None:
        self._groups = _Groups(self.max_keys)

    def _key(self, ev: AccessEvent, paths: list[Accessor]) -> Key | None:
        key = tuple(_hashable(p(ev)) for p in paths)
        return None if any(k is None or k == () for k in key) else key


def _paths(fields: list[str]) -> list[Accessor]:
    return [accessor(f) for f in fields]


@dataclass(eq=False)
class ValueCountRule(_Stateful):
    """``count`` distinct values of ``value_field`` per group within ``window`` of event time.

    Order-insensitive within the allowed lateness (issue 11): the group's events are kept sorted
    by event time (for ``window`` + ``lateness`` behind the newest), and the rule fires at the
    earliest event at which ``window`` of event time ending there holds ``count`` distinct values,
    whichever event arrived last. The firing opens a *burst*: from the start of that window, it
    goes on while events keep coming within ``window`` of its latest one; each value of the burst
    not yet counted adds one to the open alert, in whatever order it arrives (a late event of the
    burst counts into it, an event that fills a gap extends it). After a quiet ``window`` the group
    counts afresh. So one burst gives one alert whose count is the burst's distinct values.
    """

    kind: ClassVar[str] = "value_count"
    group_by: list[str] = field(default_factory=list)
    value_field: str = "user.name"
    count: int = 10
    window: timedelta = timedelta(minutes=10)
    weight_field: tuple[str, ...] | None = None
    lateness: timedelta = timedelta(minutes=15)  # allowed lateness (settings, per log type)
    MAX_WINDOW_EVENTS: ClassVar[int] = 100_000
    REPLAY: ClassVar[timedelta] = timedelta(hours=6)

    def __post_init__(self) -> None:
        self._init_state()
        self._gpaths = _paths(self.group_by)
        self._vpath = accessor(self.value_field)

    def evaluate(self, ev: AccessEvent) -> list[Detection]:
        if not self.match(ev):
            return []
        key = self._key(ev, self._gpaths)
        raw = self._vpath(ev)
        values = raw if isinstance(raw, list) else [raw]
        hvals = [_hashable(v) for v in values if v is not None and v != ""]
        if key is None or not hvals:
            return []
        st: dict[str, Any] = self._groups.touch(key, _value_count_state)
        if "p" not in st:  # a state of the in-order scheme: count afresh
            st = _value_count_state()
            self._groups[key] = st
        ts = ev.timestamp
        newest = st["max"] = ts if st["max"] is None else max(st["max"], ts)
        # Kept for the allowed lateness, and at least for REPLAY: a backlog read from several
        # partitions at once arrives hours out of order (one partition's batch runs ahead of the
        # others'), and its events must still meet the ones they belong with.
        horizon = newest - self.window - max(self.lateness, self.REPLAY)
        bursts: list[list[Any]] = st["b"]  # [start, end, fired at, counted values]
        bursts[:] = [b for b in bursts if b[1] + self.window >= horizon]  # closed for good
        group = dict(zip(self.group_by, key, strict=True))
        for b in bursts:
            if b[0] <= ts <= b[1] + self.window:
                return self._fold(b, st, ts, hvals, ev, group)
        if ts < horizon:
            return self._too_late(st, ts, hvals, ev, group)
        pending: list[tuple[datetime, tuple[Any, ...], str, int]] = st["p"]
        entry = (ts, tuple(hvals), ev.id, _weight(ev, self.weight_field))
        seen: dict[Any, datetime] = st["v"]  # value -> its latest time among the waiting events
        if not pending or ts >= pending[-1][0]:
            # In time order (the common case): only the window ending here can fire, and the
            # latest time of each value says how many distinct ones it holds, without a scan.
            pending.append(entry)
            for v in hvals:
                seen[v] = ts
            lo = ts - self.window
            if len(seen) >= self.count:
                for v in [v for v, t in seen.items() if t < lo]:
                    del seen[v]
            fired = (bisect.bisect_left(pending, lo, key=_first), len(pending) - 1) \
                if len(seen) >= self.count else None
        else:
            bisect.insort(pending, entry, key=_first)
            for v in hvals:
                seen[v] = max(seen.get(v, ts), ts)
            fired = self._first_firing(pending, ts)
        if pending[0][0] < horizon or len(pending) > self.MAX_WINDOW_EVENTS:
            cut = max(bisect.bisect_left(pending, horizon, key=_first), len(pending) - self.MAX_WINDOW_EVENTS)
            del pending[:cut]
            if fired is not None:
                fired = (max(fired[0] - cut, 0), fired[1] - cut)
        if fired is None:
            return []
        lo_i, hi_i = fired
        window_part = pending[lo_i: hi_i + 1]
        f_ts = pending[hi_i][0]
        counted = {v for x in window_part for v in x[1]}
        burst = [f_ts - self.window, f_ts, f_ts, counted]
        del pending[lo_i: hi_i + 1]
        bursts.append(burst)
        extra = self._absorb(burst, pending)  # events already here that carry the burst on
        _reseen(st)
        evidence = [x[2] for x in window_part + extra][-MAX_EVIDENCE:]
        distinct = len(counted)
        return [Detection(self, f_ts, group, ev, evidence, count=distinct,
                          context={"distinct_field": self.value_field, "distinct": distinct,
                                   "records": sum(x[3] for x in window_part + extra),
                                   "window_start": window_part[0][0].isoformat(),
                                   "sample_values": [str(v) for v in list(counted)[:20]]})]

    def _too_late(self, st: dict[str, Any], ts: datetime, hvals: list[Any], ev: AccessEvent,
                  group: dict[str, Any]) -> list[Detection]:
        """An event later than the allowed lateness (a backlog replayed while newer events of the
        group already passed: partitions caught up at different speeds) is still evaluated, in a
        lane of its own that counts in arrival order, as the rule did before it knew lateness: the
        distinct values within ``window`` before each event; firing starts the lane afresh."""
        lane: dict[Any, datetime] = st.setdefault("late", {})
        for v in hvals:
            lane[v] = max(lane.get(v, ts), ts)
        lo = ts - self.window
        if len(lane) >= self.count:
            for v in [v for v, t in lane.items() if t < lo or t > ts + self.window]:
                del lane[v]
        if len(lane) < self.count:
            if len(lane) > 4 * self.count:  # bounded: keep the newest
                for v in sorted(lane, key=lane.__getitem__)[: len(lane) - 2 * self.count]:
                    del lane[v]
            return []
        distinct = len(lane)
        values = [str(v) for v in list(lane)[:20]]
        lane.clear()
        return [Detection(self, ts, group, ev, [ev.id], count=distinct,
                          context={"distinct_field": self.value_field, "distinct": distinct, "late": True,
                                   "sample_values": values})]

    def _fold(self, b: list[Any], st: dict[str, Any], ts: datetime, hvals: list[Any], ev: AccessEvent,
              group: dict[str, Any]) -> list[Detection]:
        """An event of an open burst: its new values count into the burst's alert (at the burst's
        detection time, so into the same alert), and the events it now reaches carry on too."""
        before = len(b[3])
        b[3].update(hvals)
        ids = [ev.id] if len(b[3]) > before else []
        b[1] = max(b[1], ts)
        taken = self._absorb(b, st["p"])
        if taken:
            _reseen(st)
        ids += [x[2] for x in taken]
        added = len(b[3]) - before
        if not added:
            return []
        return [Detection(self, b[2], group, ev, ids[-MAX_EVIDENCE:], count=added,
                          context={"distinct_field": self.value_field,
                                   "sample_values": [str(v) for v in hvals[:20]]})]

    def _absorb(self, b: list[Any], pending: list[tuple[datetime, tuple[Any, ...], str, int]]) -> list[Any]:
        """Move the waiting events the burst reaches (from its start, within ``window`` of its
        latest event, transitively) into it."""
        taken: list[Any] = []
        keep: list[Any] = []
        for x in pending:
            if b[0] <= x[0] <= b[1] + self.window:
                b[3].update(x[1])
                b[1] = max(b[1], x[0])
                taken.append(x)
            else:
                keep.append(x)
        if taken:
            pending[:] = keep
        return taken

    def _first_firing(self, pending: list[tuple[datetime, tuple[Any, ...], str, int]], ts: datetime
                      ) -> tuple[int, int] | None:
        """The earliest window (indices into ``pending``) that ends at an event and holds ``count``
        distinct values. Only windows that contain the new event (ending in [ts, ts + window])
        can have changed; earlier ones did not fire before, so they still do not."""
        n = len(pending)
        j = bisect.bisect_left(pending, ts, key=_first)
        end = ts + self.window
        lo = bisect.bisect_left(pending, ts - self.window, key=_first)
        counts: dict[Any, int] = {}
        i = lo
        for k in range(lo, n):
            t = pending[k][0]
            if t > end:
                break
            for v in pending[k][1]:
                counts[v] = counts.get(v, 0) + 1
            while pending[i][0] < t - self.window:
                for v in pending[i][1]:
                    c = counts[v] - 1
                    if c:
                        counts[v] = c
                    else:
                        del counts[v]
                i += 1
            if k >= j and len(counts) >= self.count:
                return i, k
        return None


def _reseen(st: dict[str, Any]) -> None:
    """Rebuild the latest time of each value from the events still waiting."""
    seen: dict[Any, datetime] = {}
    for t, vals, _, _ in st["p"]:
        for v in vals:
            seen[v] = t
    st["v"] = seen


def _first(x: tuple[Any, ...]) -> Any:
    return x[0]


def _value_count_state() -> dict[str, Any]:
    return {"p": [], "b": [], "v": {}, "max": None}


@dataclass(eq=False)
class NewTermsRule(_Stateful):
    kind: ClassVar[str] = "new_terms"
    key_fields: list[str] = field(default_factory=list)
    terms: list[str] = field(default_factory=list)
    history: timedelta = timedelta(days=90)
    learn: timedelta = timedelta(days=7)
    max_terms: int = 1000

    def __post_init__(self) -> None:
        self._init_state()
        self._kpaths = _paths(self.key_fields)
        self._tpaths = _paths(self.terms)

    def evaluate(self, ev: AccessEvent) -> list[Detection]:
        if not self.match(ev):
            return []
        key = self._key(ev, self._kpaths)
        term = self._key(ev, self._tpaths)
        if key is None or term is None:
            return []
        ts = ev.timestamp
        st: dict[str, Any] = self._groups.touch(key, lambda: {"first": ts, "terms": {}})
        terms: dict[Key, datetime] = st["terms"]
        last = terms.get(term)
        terms[term] = ts if last is None or ts > last else last
        if len(terms) > self.max_terms:
            oldest = min(terms, key=terms.__getitem__)
            del terms[oldest]
        if ts < st["first"]:
            st["first"] = ts
        learning = ts - st["first"] < self.learn
        is_new = last is None or ts - last > self.history
        if not is_new or learning:
            return []
        previous = sorted(((t, v) for v, t in terms.items() if v != term), reverse=True)[:5]
        return [Detection(self, ts, {**dict(zip(self.key_fields, key, strict=True)),
                                     **dict(zip(self.terms, term, strict=True))}, ev, [ev.id],
                          context={"known_terms": [list(v) if len(v) > 1 else v[0] for _, v in previous]})]


@dataclass(eq=False)
class AnomalyRule(_Stateful):
    kind: ClassVar[str] = "anomaly"
    entity: list[str] = field(default_factory=list)
    bucket: timedelta = timedelta(hours=1)
    weight_field: tuple[str, ...] | None = None
    history: timedelta = timedelta(days=14)
    warmup: timedelta = timedelta(days=3)
    min_active_buckets: int = 5
    min_count: float = 100
    factor: float = 10.0

    def __post_init__(self) -> None:
        self._init_state()
        self._epaths = _paths(self.entity)

    def evaluate(self, ev: AccessEvent) -> list[Detection]:
        if not self.match(ev):
            return []
        key = self._key(ev, self._epaths)
        if key is None:
            return []
        ts = ev.timestamp
        size = self.bucket.total_seconds()
        b = int(ts.timestamp() // size)
        st: dict[str, Any] = self._groups.touch(key, lambda: {"first": ts, "buckets": {}, "fired": set(),
                                                              "evidence": {}})
        buckets: dict[int, float] = st["buckets"]
        buckets[b] = buckets.get(b, 0.0) + _weight(ev, self.weight_field)
        ev_ids = st["evidence"].setdefault(b, [])
        if len(ev_ids) < MAX_EVIDENCE:
            ev_ids.append(ev.id)
        horizon = b - int(self.history.total_seconds() // size)
        for old in [k for k in buckets if k < horizon]:
            del buckets[old]
            st["evidence"].pop(old, None)
            st["fired"].discard(old)
        st["first"] = min(st["first"], ts)
        cur = buckets[b]
        if b in st["fired"] or cur < self.min_count or ts - st["first"] < self.warmup:
            return []
        past = [v for k, v in buckets.items() if k != b and k < b]
        if len(past) < self.min_active_buckets:
            return []
        base = median(past)
        if cur < self.factor * base:
            return []
        st["fired"].add(b)
        return [Detection(self, ts, dict(zip(self.entity, key, strict=True)), ev, list(ev_ids), count=int(cur),
                          context={"bucket_count": cur, "baseline_median": base, "ratio": round(cur / base, 1),
                                   "active_buckets": len(past)})]


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    r = 6371.0
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(math.sqrt(a))


@dataclass(eq=False)
class GeoVelocityRule(_Stateful):
    """Impossible travel between consecutive located events of one key (in event time).

    Order-insensitive within the allowed lateness (issue 11): the key's located events of the last
    ``lateness`` are kept sorted, so a late event is compared with its neighbours in time, the
    one before it and the one after it, as it would have been in time order (the pair it falls
    between was compared when the later one arrived; that comparison stands)."""

    kind: ClassVar[str] = "geo_velocity"
    key_fields: list[str] = field(default_factory=lambda: ["user.name"])
    max_speed_kmh: float = 900.0
    min_distance_km: float = 500.0
    lateness: timedelta = timedelta(minutes=15)  # allowed lateness (settings, per log type)
    MAX_KEPT: ClassVar[int] = 16  # located events kept per key (a burst of sign-ins keeps the newest)

    def __post_init__(self) -> None:
        self._init_state()
        self._kpaths = _paths(self.key_fields)

    def evaluate(self, ev: AccessEvent) -> list[Detection]:
        if not self.match(ev):
            return []
        geo = ev.source.geo if ev.source else None
        if geo is None or geo.location is None or geo.internal:
            return []
        key = self._key(ev, self._kpaths)
        if key is None:
            return []
        here = (ev.timestamp, geo.location.lat, geo.location.lon, geo.country_iso_code, ev.source.ip if ev.source
                else None, ev.id)
        kept = self._groups.touch(key, list)
        if isinstance(kept, tuple):  # the state of the in-order scheme: its one newest event
            kept = [kept]
            self._groups[key] = kept
        i = bisect.bisect_right(kept, here[0], key=_first)
        prev = kept[i - 1] if i else None
        after = kept[i] if i < len(kept) else None
        kept.insert(i, here)
        horizon = kept[-1][0] - self.lateness
        while len(kept) > 1 and (kept[1][0] < horizon or len(kept) > self.MAX_KEPT):  # keeps the one before
            kept.pop(0)
        group = dict(zip(self.key_fields, key, strict=True))
        out = []
        if prev is not None and (d := self._travel(prev, here, ev, ev.timestamp, group)):
            out.append(d)
        if after is not None and (d := self._travel(here, after, ev, after[0], group)):
            out.append(d)  # what time order would have raised when the later event arrived
        return out

    def _travel(self, a: tuple[Any, ...], b: tuple[Any, ...], ev: AccessEvent, at: datetime,
                group: dict[str, Any]) -> Detection | None:
        t0, lat0, lon0, c0, ip0, id0 = a
        dist = haversine_km(lat0, lon0, b[1], b[2])
        hours = abs((b[0] - t0).total_seconds()) / 3600
        speed = dist / hours if hours > 0 else math.inf
        if dist < self.min_distance_km or speed <= self.max_speed_kmh:
            return None
        return Detection(self, at, group, ev, [id0, b[5]],
                         context={"distance_km": round(dist), "hours": round(hours, 2),
                                  "speed_kmh": round(speed) if speed != math.inf else None,
                                  "from": {"country": c0, "ip": ip0, "at": t0.isoformat()},
                                  "to": {"country": b[3], "ip": b[4], "at": b[0].isoformat()}})


@dataclass(eq=False)
class DormantRule(_Stateful):
    kind: ClassVar[str] = "dormant"
    key_fields: list[str] = field(default_factory=lambda: ["user.name"])
    idle: timedelta = timedelta(days=30)

    def __post_init__(self) -> None:
        self._init_state()
        self._kpaths = _paths(self.key_fields)

    def evaluate(self, ev: AccessEvent) -> list[Detection]:
        if not self.match(ev):
            return []
        key = self._key(ev, self._kpaths)
        if key is None:
            return []
        last = self._groups.get(key)
        self._groups.touch(key, lambda: ev.timestamp)
        if last is None or ev.timestamp > last:
            self._groups[key] = ev.timestamp
        if last is None or ev.timestamp - last < self.idle:
            return []
        return [Detection(self, ev.timestamp, dict(zip(self.key_fields, key, strict=True)), ev, [ev.id],
                          context={"idle_days": round((ev.timestamp - last).total_seconds() / 86400, 1),
                                   "last_seen": last.isoformat()})]


@dataclass(eq=False)
class OffHoursRule(Rule):
    """Fires on access outside the actor's working hours (from the directory), in their time zone."""

    kind: ClassVar[str] = "off_hours"
    grace: timedelta = timedelta(minutes=30)
    ctx: DetectContext | None = None

    def bind(self, ctx: DetectContext) -> None:
        self.ctx = ctx

    def evaluate(self, ev: AccessEvent) -> list[Detection]:
        if self.ctx is None or self.ctx.directory is None or not self.match(ev) or ev.user is None:
            return []
        person = self.ctx.directory.get(ev.user.name)
        if person is None:
            return []
        ts = ev.timestamp
        if person.is_working_time(ts) or person.is_working_time(ts - self.grace) or \
                person.is_working_time(ts + self.grace):
            return []
        local = ts.astimezone(__import__("zoneinfo").ZoneInfo(person.timezone))
        return [Detection(self, ts, {"user.name": ev.user.name}, ev, [ev.id],
                          context={"local_time": local.isoformat(), "working_hours": person.working_hours,
                                   "working_days": person.working_days, "timezone": person.timezone})]


POLICY_CHECKS = ("need_to_know", "account_status", "justification")


@dataclass(eq=False)
class PolicyRule(Rule):
    """Access the organisation's policy does not allow (see POLICY_CHECKS)."""

    kind: ClassVar[str] = "policy"
    check: str = "need_to_know"
    unknown_user: str = "alert"  # alert | ignore, for need_to_know
    justification_field: tuple[str, ...] = ("labels", "justification")
    ctx: DetectContext | None = None

    def bind(self, ctx: DetectContext) -> None:
        self.ctx = ctx

    def evaluate(self, ev: AccessEvent) -> list[Detection]:
        if self.ctx is None or not self.match(ev):
            return []
        name = ev.user.name if ev.user else None
        person = self.ctx.directory.get(name) if self.ctx.directory is not None else None
        group = {"user.name": name}
        if self.check == "account_status":
            if person is None:
                return []
            status = person.status_at(ev.timestamp)
            if status == "active":
                return []
            return [Detection(self, ev.timestamp, group, ev, [ev.id],
                              context={"account_status": status, "status_since": str(person.status_since)})]
        cat = self.ctx.catalogue
        entry = cat.get(ev.labels.get("catalogue_id")) if cat is not None else None
        if entry is None:
            return []
        if self.check == "need_to_know":
            if entry.allowed_roles is None:
                return []
            if person is None:
                if self.unknown_user != "alert":
                    return []
                roles: list[str] = list(ev.user.roles) if ev.user else []
            else:
                roles = list(person.roles)
            if set(roles) & set(entry.allowed_roles):
                return []
            return [Detection(self, ev.timestamp, {**group, "resource": entry.id}, ev, [ev.id],
                              context={"roles": roles, "allowed_roles": entry.allowed_roles,
                                       "resource": entry.id, "data_categories": entry.data_categories,
                                       "known_user": person is not None})]
        if self.check == "justification":
            if not entry.requires_justification or accessor(".".join(self.justification_field))(ev):
                return []
            return [Detection(self, ev.timestamp, {**group, "resource": entry.id}, ev, [ev.id],
                              context={"resource": entry.id, "missing": ".".join(self.justification_field)})]
        return []


EXTRA_KINDS: dict[str, type[Rule]] = {
    "value_count": ValueCountRule, "new_terms": NewTermsRule, "anomaly": AnomalyRule,
    "geo_velocity": GeoVelocityRule, "dormant": DormantRule, "off_hours": OffHoursRule, "policy": PolicyRule,
}
