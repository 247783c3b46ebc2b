"""The rules engine: every event through every rule that applies to its log type."""

from __future__ import annotations

import pickle
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from access_audit.core.errors import RuleError
from access_audit.core.events import AccessEvent
from access_audit.detect.rules import Detection, Rule


@dataclass
class EngineStats:
    events: int = 0
    detections: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    last_errors: list[RuleError] = field(default_factory=list)


class DetectionEngine:
    """Runs rules over events in order. A rule that raises never stops the stream.

    The error is counted per rule and the last few are kept (``stats.last_errors``) for
    ``access-audit status``; the other rules still see the event.
    """

    MAX_KEPT_ERRORS = 100

    def __init__(self, rules: list[Rule], context: Any = None) -> None:
        self.rules = list(rules)
        self.stats = EngineStats()
        if context is not None:
            for r in self.rules:
                r.bind(context)
        self._any: list[Rule] = [r for r in self.rules if not r.log_types]
        self._by_type: dict[str, list[Rule]] = {}
        for r in self.rules:
            for lt in r.log_types:
                self._by_type.setdefault(lt, []).append(r)
        self._cache: dict[str | None, list[Rule]] = {}

    def _rules_for(self, dataset: str | None) -> list[Rule]:
        rules = self._cache.get(dataset)
        if rules is None:
            rules = self._cache[dataset] = self._any + self._by_type.get(dataset or "", [])
        return rules

    def process(self, ev: AccessEvent) -> list[Detection]:
        self.stats.events += 1
        out: list[Detection] = []
        for rule in self._rules_for(ev.event.dataset):
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

    STATE_VERSION = 1

    def snapshot(self) -> bytes:
        """The state of every stateful rule, to persist at a commit point (see ``restore``)."""
        states = {}
        for r in self.rules:
            st = r.snapshot()
            if st is not None:
                states[r.id] = (r.kind, st)
        return pickle.dumps((self.STATE_VERSION, states), protocol=pickle.HIGHEST_PROTOCOL)

    def restore(self, blob: bytes) -> int:
        """Take back a snapshot; rules whose kind changed start fresh. Returns how many were restored."""
        version, states = pickle.loads(blob)
        if version != self.STATE_VERSION:
            return 0
        n = 0
        for r in self.rules:
            kind_state = states.get(r.id)
            if kind_state and kind_state[0] == r.kind:
                r.restore(kind_state[1])
                n += 1
        return n
