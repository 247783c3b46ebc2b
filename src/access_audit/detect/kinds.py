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

import math
from collections import deque
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

    Once it fires, the burst stays open while events of the group keep coming within ``window``
    of the latest one (in either direction of event time, so a late event of the burst belongs to
    it): each value not yet counted adds one to the open alert. The alert's count is the burst's
    distinct values whatever the arrival order (issue 11: arrival order within the allowed
    lateness does not change an alert). After a quiet ``window`` the group counts afresh.
    """

    kind: ClassVar[str] = "value_count"
    group_by: list[str] = field(default_factory=list)
    value_field: str = "user.name"
    count: int = 10
    window: timedelta = timedelta(minutes=10)
    weight_field: tuple[str, ...] | None = None
    MAX_WINDOW_EVENTS: ClassVar[int] = 100_000

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
        values = [v for v in values if v is not None and v != ""]
        if key is None or not values:
            return []
        st: dict[str, Any] = self._groups.touch(key, _value_count_state)
        ts = ev.timestamp
        fired: datetime | None = st.get("fired")
        if fired is not None:
            if abs(ts - fired) <= self.window:
                # The burst goes on (or an event of it arrives late): each value not yet counted
                # adds to the open alert, so the alert counts the burst's distinct values in any
                # arrival order, not whichever twelve happened to arrive first.
                st["fired"] = max(fired, ts)
                counted: set[Any] = st["fv"]
                new = [h for v in values if (h := _hashable(v)) not in counted]
                if not new:
                    return []
                counted.update(new)
                return [Detection(self, ts, dict(zip(self.group_by, key, strict=True)), ev, [ev.id],
                                  count=len(new), context={"distinct_field": self.value_field,
                                                           "sample_values": [str(v) for v in new[:20]]})]
            st["fired"] = None
            st["fv"] = set()
        lo = ts - self.window
        seen: dict[Any, datetime] = st["seen"]
        events: deque[tuple[datetime, str, int]] = st["events"]
        for v in values:
            seen[_hashable(v)] = ts
        events.append((ts, ev.id, _weight(ev, self.weight_field)))
        while events and events[0][0] < lo:  # evidence and record counts cover the window only
            events.popleft()
        if len(events) > self.MAX_WINDOW_EVENTS:
            events.popleft()
        if len(seen) >= self.count:
            stale = [v for v, t in seen.items() if t < lo]
            for v in stale:
                del seen[v]
        if len(seen) < self.count:
            if len(seen) > self.count * 4:  # bounded: drop the oldest values
                for v in sorted(seen, key=seen.__getitem__)[: len(seen) - self.count * 2]:
                    del seen[v]
            return []
        distinct = len(seen)
        evidence = [eid for _, eid, _ in events][-MAX_EVIDENCE:]
        det = Detection(self, ts, dict(zip(self.group_by, key, strict=True)), ev, evidence,
                        count=distinct, context={"distinct_field": self.value_field, "distinct": distinct,
                                                 "records": sum(w for _, _, w in events),
                                                 "window_start": events[0][0].isoformat(),
                                                 "sample_values": [str(v) for v in list(seen)[:20]]})
        st["fired"] = ts
        st["fv"] = set(seen)
        seen.clear()
        events.clear()
        return [det]


def _value_count_state() -> dict[str, Any]:
    return {"seen": {}, "events": deque(), "fired": None, "fv": set()}


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
    kind: ClassVar[str] = "geo_velocity"
    key_fields: list[str] = field(default_factory=lambda: ["user.name"])
    max_speed_kmh: float = 900.0
    min_distance_km: float = 500.0

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
        prev = self._groups.get(key)
        self._groups.touch(key, lambda: here)
        if prev is None or here[0] >= prev[0]:
            self._groups[key] = here
        if prev is None:
            return []
        t0, lat0, lon0, c0, ip0, id0 = prev
        dist = haversine_km(lat0, lon0, here[1], here[2])
        hours = abs((here[0] - t0).total_seconds()) / 3600
        speed = dist / hours if hours > 0 else math.inf
        if dist < self.min_distance_km or speed <= self.max_speed_kmh:
            return []
        return [Detection(self, ev.timestamp, dict(zip(self.key_fields, key, strict=True)), ev, [id0, ev.id],
                          context={"distance_km": round(dist), "hours": round(hours, 2),
                                   "speed_kmh": round(speed) if speed != math.inf else None,
                                   "from": {"country": c0, "ip": ip0, "at": t0.isoformat()},
                                   "to": {"country": here[3], "ip": here[4], "at": here[0].isoformat()}})]


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
