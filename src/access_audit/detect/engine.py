"""The rules engine: every event through the rules that can match it, in rule order.

Rules are compiled once (``detect.loader``, ``detect.sigma``); here they are grouped per log type
and indexed by the literal equality each requires (``detect.prefilter``), so that an event meets
only its candidate rules, the way Suricata's prefilter picks the signatures an input can match.
``dispatch=False`` evaluates every rule of the log type on every event: the reference the tests
compare the index against (same detections, same order).

State is per rule and partition (``detect.state``): ``checkpoint_rows`` gives what changed since
the last checkpoint, ``restore_rows`` takes a partition's state back.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson

from access_audit.core.errors import RuleError
from access_audit.core.events import AccessEvent
from access_audit.detect.prefilter import IndexKey, choose
from access_audit.detect.rules import Detection, Rule
from access_audit.detect.state import META_KEY, STATE_VERSION, fingerprint

log = logging.getLogger(__name__)

_DEFAULT_LATENESS = timedelta(minutes=15)


@dataclass
class EngineStats:
    events: int = 0
    evaluations: int = 0  # rule evaluations (what the dispatch index saves shows here)
    detections: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    last_errors: list[RuleError] = field(default_factory=list)
    # events later than the allowed lateness behind the newest event of their log type on this
    # partition (the watermark): still stored and evaluated, counted here (issue 11)
    late: Counter[str] = field(default_factory=Counter)


@dataclass
class _Plan:
    """The rules of one log type: those every event meets, and the indexed ones."""

    always: list[int]
    # per index field: (the getter, how the rules compare a value, value -> rule positions)
    fields: list[tuple[Callable[[Any], Any], Callable[[Any], str | None], dict[str, list[int]]]]


class DetectionEngine:
    """Runs rules over events in order. A rule that raises never stops the stream.

    The error is counted per rule and the last few are kept (``stats.last_errors``) for
    ``access-audit status``; the other rules still see the event.
    """

    MAX_KEPT_ERRORS = 100

    def __init__(self, rules: list[Rule], context: Any = None, *, dispatch: bool = True,
                 partition: int = -1, lateness: Callable[[list[str]], timedelta] | None = None) -> None:
        self.rules = list(rules)
        self._lateness_of = lateness or (lambda _types: _DEFAULT_LATENESS)
        self._lateness: dict[str | None, timedelta] = {}
        self._newest: dict[str | None, datetime] = {}
        self.stats = EngineStats()
        self.dispatch = dispatch
        self.partition = partition
        if context is not None:
            for r in self.rules:
                r.bind(context)
        self.index_keys: dict[str, IndexKey | None] = {r.id: self._index_key(r) for r in self.rules}
        self._plans: dict[str | None, _Plan] = {}

    @staticmethod
    def _index_key(rule: Rule) -> IndexKey | None:
        req = rule.requires
        if not req:
            return None
        return choose(req, rule.index_key)

    def _plan(self, dataset: str | None) -> _Plan:
        plan = self._plans.get(dataset)
        if plan is not None:
            return plan
        always: list[int] = []
        fields: dict[str, tuple[Callable[[Any], Any], Callable[[Any], str | None], dict[str, list[int]]]] = {}
        for i, r in enumerate(self.rules):
            if r.log_types and (dataset or "") not in r.log_types:
                continue
            key = self.index_keys.get(r.id) if self.dispatch else None
            if key is None:
                always.append(i)
                continue
            _, _, table = fields.setdefault(key.name, (key.getter, key.text, {}))
            for v in key.values:
                table.setdefault(v, []).append(i)
        plan = self._plans[dataset] = _Plan(always, list(fields.values()))
        return plan

    def candidates(self, ev: AccessEvent) -> list[Rule]:
        """The rules this event can match, in rule order."""
        plan = self._plan(ev.event.dataset)
        if not plan.fields:
            return [self.rules[i] for i in plan.always]
        picked: list[int] = []
        for getter, text, table in plan.fields:
            for v in getter(ev):
                t = text(v)
                if t is None:
                    continue
                hit = table.get(t.casefold())
                if hit:
                    picked.extend(hit)
        if not picked:
            return [self.rules[i] for i in plan.always]
        idx = sorted(set(picked).union(plan.always))
        return [self.rules[i] for i in idx]

    def process(self, ev: AccessEvent) -> list[Detection]:
        self.stats.events += 1
        self._watermark(ev)
        out: list[Detection] = []
        rules = self.candidates(ev)
        self.stats.evaluations += len(rules)
        for rule in rules:
            try:
                found = rule.evaluate(ev)
            except Exception as e:  # a broken rule must not stop the others or the stream
                self.stats.errors[rule.id] += 1
                err = RuleError(f"failed on event {ev.event.id}: {type(e).__name__}: {e}",
                                rule_id=rule.id, source=rule.source)
                self.stats.last_errors.append(err)
                del self.stats.last_errors[:-self.MAX_KEPT_ERRORS]
                continue
            if found:
                self.stats.detections[rule.id] += len(found)
                out.extend(found)
        return out

    def _watermark(self, ev: AccessEvent) -> None:
        """Count an event that arrives later than the allowed lateness (per log type)."""
        ds = ev.event.dataset
        ts = ev.timestamp
        newest = self._newest.get(ds)
        if newest is None or ts > newest:
            self._newest[ds] = ts
            return
        lateness = self._lateness.get(ds)
        if lateness is None:
            lateness = self._lateness[ds] = self._lateness_of([ds] if ds else [])
        if ts < newest - lateness:
            self.stats.late[ds or "-"] += 1

    # --- state ----------------------------------------------------------------------------

    def namespace(self, rule: Rule) -> str:
        return f"{rule.id}/{self.partition}"

    def checkpoint_rows(self) -> tuple[list[tuple[str, str, bytes]], list[tuple[str, str]], list[str]]:
        """What changed since the last call: (upserts, deletes, namespaces to drop first).

        Each stateful rule contributes the groups touched since, and its meta row (version, kind,
        fingerprint, evictions) when anything changed. The record of changes is reset: the caller
        must keep the rows until they are written (see ``Pipeline.checkpoint``).
        """
        ups: list[tuple[str, str, bytes]] = []
        dels: list[tuple[str, str]] = []
        drops: list[str] = []
        for r in self.rules:
            groups = r.state_groups()
            if groups is None:
                continue
            g_ups, g_dels, drop = groups.changes()
            if not (g_ups or g_dels or drop):
                continue
            ns = self.namespace(r)
            if drop:
                drops.append(ns)
            meta = {"v": STATE_VERSION, "kind": r.kind, "fp": fingerprint(r), "evicted": groups.evicted}
            ups.append((ns, META_KEY, orjson.dumps(meta)))
            ups.extend((ns, k, v) for k, v in g_ups)
            dels.extend((ns, k) for k in g_dels)
        return ups, dels, drops

    def restore_rows(self, read: Callable[[str], Iterator[tuple[str, bytes]]],
                     drop: Callable[[str], None] | None = None) -> int:
        """Take back the state of every stateful rule for this partition. A rule whose stored
        kind or fingerprint differs starts fresh (its old rows are dropped, with a warning).
        Returns how many rules were restored."""
        n = 0
        for r in self.rules:
            groups = r.state_groups()
            if groups is None:
                continue
            ns = self.namespace(r)
            rows = list(read(ns))
            if not rows:
                continue
            meta_raw = next((v for k, v in rows if k == META_KEY), None)
            try:
                meta = orjson.loads(meta_raw) if meta_raw is not None else {}
            except orjson.JSONDecodeError:
                meta = {}
            want = {"v": STATE_VERSION, "kind": r.kind, "fp": fingerprint(r)}
            if any(meta.get(k) != v for k, v in want.items()):
                log.warning("rule %s: stored state was made for other settings (%s), starting fresh",
                            r.id, {k: meta.get(k) for k in want})
                if drop is not None:
                    drop(ns)
                continue
            groups.load(rows)
            groups.evicted = int(meta.get("evicted", 0))
            n += 1
        return n
