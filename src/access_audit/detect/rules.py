"""Rule kinds: match, threshold, sequence.

A rule sees events one at a time (``evaluate``) and returns detections. Windows run on the
event's own timestamp, never the wall clock, so replaying an old log raises the same alerts as
seeing it live. Stateful kinds keep bounded state: at most ``max_keys`` groups (the least
recently seen are evicted and counted) and nothing older than the window.
"""

from __future__ import annotations

import bisect
import itertools
import re
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar

from access_audit.core.alerts import Severity
from access_audit.core.events import AccessEvent
from access_audit.core.fields import Accessor, accessor
from access_audit.detect.conditions import Predicate, yaml_text
from access_audit.detect.prefilter import IndexKey, Requirement
from access_audit.detect.state import Groups

_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h|d|w)\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
MAX_EVIDENCE = 50


def parse_duration(text: Any) -> timedelta:
    """'30s', '5m', '1h', '2d', '1w' -> timedelta. Raises ValueError with the accepted forms."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return timedelta(seconds=float(text))
    m = _DURATION.match(str(text))
    if not m:
        raise ValueError(f"invalid duration {text!r}: use a number and one of s, m, h, d, w (e.g. 5m)")
    return timedelta(seconds=int(m[1]) * _UNITS[m[2]])


@dataclass
class Detection:
    """A rule fired. ``timestamp`` is the event time of the event that completed the finding."""

    rule: Rule
    timestamp: datetime
    group: dict[str, Any]
    event: AccessEvent  # the event that triggered
    evidence: list[str]  # event ids, oldest first (capped)
    count: int = 1  # how many events make up this finding
    context: dict[str, Any] = field(default_factory=dict)  # kind-specific facts for the responder

    @property
    def dedup_key(self) -> str:
        fields = self.rule.dedup_fields or list(self.group)
        vals = []
        for f in fields:
            v = self.group.get(f)
            if v is None:
                v = accessor(f)(self.event)
            vals.append(f"{f}={v}")
        return "|".join(vals)


@dataclass(eq=False)
class Rule:
    """A compiled rule. Subclasses implement ``evaluate`` for their kind."""

    kind: ClassVar[str] = "match"

    id: str
    title: str
    match: Predicate
    severity: Severity = Severity.medium
    description: str = ""
    risk_score: int | None = None
    log_types: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    mitre: tuple[str, ...] = ()
    personal_data: bool = False
    dedup_fields: list[str] = field(default_factory=list)
    suppress: timedelta = timedelta(hours=1)
    summary: str | None = None
    source: str | None = None  # file:line of the rule
    tests: list[dict[str, Any]] = field(default_factory=list)
    max_keys: int = 100_000
    requires: Requirement = field(default_factory=dict)  # literal equalities ``match`` needs (dispatch)

    def evaluate(self, ev: AccessEvent) -> list[Detection]:
        if not self.match(ev):
            return []
        return [Detection(self, ev.timestamp, self.group_values(ev, self.dedup_fields), ev, [ev.id])]

    def group_values(self, ev: AccessEvent, fields: list[str]) -> dict[str, Any]:
        return {f: _hashable(accessor(f)(ev)) for f in fields}

    def index_key(self, name: str, values: frozenset[str]) -> IndexKey | None:
        """How the dispatch index reads the field ``name`` of ``requires`` (``ecs:<path>``)."""
        if not name.startswith("ecs:"):
            return None
        get = accessor(name[4:])

        def values_of(ev: AccessEvent) -> list[Any]:
            v = get(ev)
            if v is None:
                return []
            return v if isinstance(v, list) else [v]
        return IndexKey(name, values_of, values, yaml_text)

    def bind(self, ctx: Any) -> None:
        """Give the rule the detection context (directory, catalogue); most kinds need none."""

    # --- placement (scale-out: ``access_audit.handover``) -------------------------------------

    def partition_fields(self) -> list[str]:
        """The fields whose values place this rule's events on one partition, so that one worker
        sees every event of a key: a stateful rule's grouping; for a stateless rule the dedup
        fields, because its alerts fold by them. Empty: one partition holds them all."""
        return list(self.dedup_fields)

    def route_keys(self, ev: AccessEvent) -> list[tuple[Any, ...]]:
        """The keys under which this event must reach the rule (none: the rule cannot use it).

        Must agree with ``evaluate``: an event the rule would keep state for or fire on is routed."""
        if not self.match(ev):
            return []
        paths = self.__dict__.get("_rpaths")
        if paths is None:
            paths = self._rpaths = accessors(self.partition_fields())
        key = tuple(_hashable(p(ev)) for p in paths)
        if self.state_groups() is not None and any(k is None or k == () for k in key):
            return []  # a stateful rule keeps nothing for an event without its key
        return [key]

    def state_groups(self) -> Groups | None:
        """The rule's state map, checkpointed by the pipeline (None: a stateless rule)."""
        return None

    def reset(self) -> None:
        """Forget all state (used by the rule test runner between cases)."""

    def state_size(self) -> int:
        """Number of groups held in memory."""
        return 0

    def evicted(self) -> int:
        """Groups dropped because the state cap was reached (least recently seen first)."""
        return 0


def accessors(fields: list[str]) -> list[Accessor]:
    return [accessor(f) for f in fields]


def _hashable(v: Any) -> Any:
    if isinstance(v, list):
        return tuple(v)
    if hasattr(v, "value"):
        return v.value
    return v


def _weight(ev: AccessEvent, weight_field: tuple[str, ...] | None) -> int:
    if weight_field is None:
        return 1
    v = accessor(".".join(weight_field))(ev)
    try:
        return max(1, int(v)) if v is not None else 1
    except (TypeError, ValueError):
        return 1


_Groups = Groups  # the state map (detect.state); the old name stays for the kinds


class GroupState:
    """State of a rule kept per group key in a capped LRU map (``self._groups``)."""

    _groups: Groups

    def reset(self) -> None:
        self._groups.clear()
        self._groups.evicted = 0

    def state_size(self) -> int:
        return len(self._groups)

    def evicted(self) -> int:
        return self._groups.evicted

    def state_groups(self) -> Groups | None:
        return self._groups

    def partition_fields(self) -> list[str]:
        for name in ("group_by", "by", "key_fields", "entity"):
            v = getattr(self, name, None)
            if v is not None:
                return list(v)
        return []


@dataclass(eq=False)
class ThresholdRule(GroupState, Rule):
    """N (weighted) matching events per group within a window of event time.

    After firing, each further event of the group within ``window`` of the last one adds to the
    alert (a detection of count 1 that the alert stage folds in); after a quiet ``window`` the
    group counts afresh, and N more events fire again (folded into the same alert while its
    suppression window lasts).
    """

    kind: ClassVar[str] = "threshold"
    group_by: list[str] = field(default_factory=list)
    count: int = 10
    window: timedelta = timedelta(minutes=5)
    weight_field: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        self._groups = _Groups(self.max_keys)
        self._paths = accessors(self.group_by)

    def evaluate(self, ev: AccessEvent) -> list[Detection]:
        if not self.match(ev):
            return []
        key = tuple(_hashable(p(ev)) for p in self._paths)
        if any(k is None for k in key):
            return []
        st: dict[str, Any] = self._groups.touch(key, _threshold_state)
        if not isinstance(st, dict):  # a window stored before "fired" was kept: same meaning
            st = {"w": st, "fired": None}
            self._groups[key] = st
        ts = ev.timestamp
        weight = _weight(ev, self.weight_field)
        fired: datetime | None = st["fired"]
        if fired is not None:
            if abs(ts - fired) <= self.window:
                # the attack goes on: each further event counts into the open alert, so twelve
                # failed sign-ins make one alert with a count of twelve, in any arrival order
                st["fired"] = max(fired, ts)
                return [Detection(self, ts, dict(zip(self.group_by, key, strict=True)), ev, [ev.id], count=weight)]
            st["fired"] = None
        win: deque[tuple[datetime, int, str]] = st["w"]
        win.append((ts, weight, ev.id))
        lo = ts - self.window
        while win and win[0][0] < lo:
            win.popleft()
        total = sum(w for _, w, _ in win)
        if total < self.count:
            if len(win) > self.count:  # bounded: only the newest `count` entries can matter
                win.popleft()
            return []
        evidence = [i for _, _, i in win][-MAX_EVIDENCE:]
        win.clear()
        st["fired"] = ts
        return [Detection(self, ts, dict(zip(self.group_by, key, strict=True)), ev, evidence, count=total)]


def _threshold_state() -> dict[str, Any]:
    return {"w": deque(), "fired": None}



@dataclass
class Step:
    name: str
    match: Predicate
    min_count: int = 1
    by: list[str] | None = None  # this step's key fields, when they differ from the rule's ``by``


@dataclass(eq=False)
class SequenceRule(GroupState, Rule):
    """Steps in order by the same key within a window: e.g. N failures, then a success.

    A step's events count only once every earlier step is complete, so order is enforced; the
    final step completing fires the rule and resets the key.
    """

    kind: ClassVar[str] = "sequence"
    by: list[str] = field(default_factory=list)
    window: timedelta = timedelta(minutes=10)
    steps: list[Step] = field(default_factory=list)
    weight_field: tuple[str, ...] | None = None
    lateness: timedelta = timedelta(minutes=15)  # allowed lateness (settings, per log type)

    def __post_init__(self) -> None:
        self._groups = _Groups(self.max_keys)
        self._paths = accessors(self.by)
        self._step_paths = [accessors(st.by) if st.by else self._paths for st in self.steps]
        # Final-step events waiting for a late earlier step, by id: the alert shows its trigger.
        # Memory only (bounded), not rule state: after a restart such an alert shows the event
        # that completed it instead; its id and count do not change.
        self._triggers: dict[str, AccessEvent] = {}

    def evaluate(self, ev: AccessEvent) -> list[Detection]:
        if not self.match(ev):
            return []
        hits = [i for i, s in enumerate(self.steps) if s.match(ev)]
        if not hits:
            return []
        n = len(self.steps)
        for key, key_hits in self._keys_for(ev, hits).items():
            found = self._advance(ev, key, key_hits, n)
            if found:
                return found
        return []

    def route_keys(self, ev: AccessEvent) -> list[tuple[Any, ...]]:
        """One key per step key this event advances: a step keyed by other fields (a grant keyed on
        ``user.target.name``, a use on ``user.name``) is routed by its own key's value."""
        if not self.match(ev):
            return []
        hits = [i for i, s in enumerate(self.steps) if s.match(ev)]
        return list(self._keys_for(ev, hits)) if hits else []

    def _keys_for(self, ev: AccessEvent, hits: list[int]) -> dict[tuple[Any, ...], list[int]]:
        out: dict[tuple[Any, ...], list[int]] = {}
        owns = self.__dict__.get("owns")  # set on a partition's copy: only the keys it owns advance
        for i in hits:
            key = tuple(_hashable(p(ev)) for p in self._step_paths[i])
            if all(k is not None for k in key) and (owns is None or owns(key)):
                out.setdefault(key, []).append(i)
        return out

    def _advance(self, ev: AccessEvent, key: tuple[Any, ...], hits: list[int], n: int) -> list[Detection]:
        """A detection is named by the sequence's key (``by``), whichever step's event completes it (a
        late grant keyed on user.target.name completes the alert the use keyed on user.name would
        have: same dedup key, id and title).

        Order-insensitive within the allowed lateness: every step event of the key is kept in
        event-time order (for ``window`` + ``lateness`` behind the newest), and the rule fires at
        the earliest final-step event before which, within ``window``, the steps complete in order:
        the same sequence, the same trigger and the same count whether the events arrive in order
        or shuffled by up to ``lateness``."""
        st: dict[str, Any] = self._groups.touch(key, lambda: _sequence_state(n))
        if not isinstance(st, dict) or len(st.get("s", ())) != n:  # a state of the in-order scheme
            st = _sequence_state(n)
            self._groups[key] = st
        ts = ev.timestamp
        w = _weight(ev, self.weight_field)
        entry = (ts, w, ev.id)
        newest = st["max"] = ts if st["max"] is None else max(st["max"], ts)
        horizon = newest - self.window - self.lateness
        if ts < horizon:
            return []  # later than the allowed lateness: stored and counted late, too late to sequence
        fired: datetime | None = st["fired"]
        if fired is not None and fired - self.window <= ts <= fired:
            # A late event of the sequence that already fired: a step before the last one counts
            # into the open alert as far as the step's cap would have kept it in order.
            folded = [i for i in hits if i < n - 1 and st["fn"][i] < self._cap(i) and ts >= st["fc"][i]]
            if folded:
                i = folded[0]
                st["fn"][i] += 1
                return [Detection(self, fired, dict(zip(self.by, key, strict=True)), ev, [ev.id], count=w)]
            if ts < fired:
                return []
        steps: list[list[tuple[Any, ...]]] = st["s"]
        for i in hits:
            bisect.insort(steps[i], entry, key=_ts)
        if n - 1 in hits:
            # the final step keeps its event: the alert shows the trigger (the successful login),
            # whichever event completed the sequence last in arrival order
            trig_cache = self._triggers
            trig_cache[ev.id] = ev
            if len(trig_cache) > _MAX_TRIGGERS:
                for old_id in list(itertools.islice(trig_cache, len(trig_cache) - _MAX_TRIGGERS // 2)):
                    del trig_cache[old_id]
        for lst in steps:
            if lst and lst[0][0] < horizon:
                del lst[: bisect.bisect_left(lst, horizon, key=_ts)]
            if len(lst) > 4 * self._cap(0) + 64:  # bounded: a flood keeps its newest entries
                del lst[: len(lst) - 4 * self._cap(0) - 64]
        out: list[Detection] = []
        if not all(steps):
            return out  # a step with no event: nothing can complete (the common case, cheaply)
        # Only a window that holds this event can have completed: a final-step event within
        # ``window`` after it (in time order, that is this event itself).
        while (found := self._complete(steps, n, ts, ts + self.window)) is not None:
            final, counted, completions = found
            evidence = [x[2] for part in counted for x in part][-MAX_EVIDENCE:]
            total = sum(x[1] for part in counted for x in part)
            f_ts = final[0]
            for lst in steps:  # what the sequence used, and everything before its trigger, is done
                lst[:] = [x for x in lst if x[0] > f_ts]
            st["fired"] = f_ts if fired is None else max(fired, f_ts)
            st["fn"] = [len(part) for part in counted]
            st["fc"] = completions
            trig = ev if final[2] == ev.id else (
                AccessEvent.from_json(final[3]) if len(final) > 3 else self._triggers.get(final[2], ev))
            out.append(Detection(self, f_ts, dict(zip(self.by, key, strict=True)), trig, evidence, count=total))
        return out

    def _cap(self, i: int) -> int:
        return max(self.steps[i].min_count, 1) * 2

    def _complete(self, steps: list[list[tuple[datetime, int, str]]], n: int, lo_ts: datetime, hi_ts: datetime
                  ) -> tuple[tuple[datetime, int, str], list[list[tuple[datetime, int, str]]], list[datetime]] | None:
        """The earliest final-step event in [lo_ts, hi_ts] with the steps complete in order within
        ``window`` before it: (that event, the entries each step counts, the time each step was
        entered)."""
        finals = steps[n - 1]
        for k in range(bisect.bisect_left(finals, lo_ts, key=_ts), len(finals)):
            final = finals[k]
            f_ts = final[0]
            if f_ts > hi_ts:
                break
            lo = f_ts - self.window
            start = lo
            counted: list[list[tuple[datetime, int, str]]] = []
            entered: list[datetime] = []
            ok = True
            for i in range(n):
                mc = self.steps[i].min_count
                if i == n - 1:
                    part = [x for x in steps[i] if start <= x[0] <= f_ts and (x[0], x[2]) <= (f_ts, final[2])]
                    if sum(x[1] for x in part) < mc:
                        ok = False
                        break
                    entered.append(start)
                    counted.append(part[-self._cap(i):])
                    break
                part = [x for x in steps[i] if start <= x[0] <= f_ts]
                acc = 0
                done_at: datetime | None = None
                for x in part:
                    acc += x[1]
                    if acc >= mc:
                        done_at = x[0]
                        break
                if done_at is None:
                    ok = False
                    break
                entered.append(start)
                counted.append([x for x in part if x[0] <= f_ts][-self._cap(i):])
                start = done_at
            if ok:
                return final, counted, entered
        return None


_MAX_TRIGGERS = 2_000  # the memory of a few thousand events per rule


def _sequence_state(n: int) -> dict[str, Any]:
    return {"s": [[] for _ in range(n)], "max": None, "fired": None, "fn": [0] * n, "fc": [None] * n}


def _ts(entry: tuple[datetime, int, str]) -> datetime:
    return entry[0]


RULE_KINDS: dict[str, type[Rule]] = {"match": Rule, "threshold": ThresholdRule, "sequence": SequenceRule}
