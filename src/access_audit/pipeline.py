"""The pipeline: raw records -> parse -> store -> detect -> alerts, one batch at a time.

One code path for both modes: the source is the in-process bus or Kafka, the store SQLite or
Elasticsearch, the sinks the console/JSON Lines or Kafka/Slack. The order within a batch is what
makes it at-least-once without duplicates (see ``core.ports``): store first (idempotent by event
id), then detect and emit alerts (idempotent by alert id), then let the source commit.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from access_audit.alert.manager import AlertManager
from access_audit.core.alerts import Alert
from access_audit.core.errors import BusError, StoreUnavailableError
from access_audit.core.ports import AlertSink, DeadLetterSink, EventStore, RecordSource
from access_audit.core.records import RawRecord
from access_audit.detect.engine import DetectionEngine
from access_audit.parse.base import ParserRegistry

log = logging.getLogger(__name__)


@dataclass
class PipelineStats:
    records: int = 0
    events: int = 0
    events_new: int = 0
    dead_letters: int = 0
    alerts_new: int = 0
    alert_updates: int = 0
    batches: int = 0
    store_retries: int = 0
    by_log_type: Counter[str] = field(default_factory=Counter)
    dead_by_reason: Counter[str] = field(default_factory=Counter)


@dataclass
class BatchResult:
    events: int
    events_new: int
    dead_letters: int
    new_alerts: list[Alert]
    updated_alerts: list[Alert]


class Pipeline:
    def __init__(self, *, registry: ParserRegistry, engine: DetectionEngine, alerts: AlertManager,
                 store: EventStore, sinks: list[AlertSink] | None = None,
                 dead_letter_sinks: list[DeadLetterSink] | None = None) -> None:
        self.registry = registry
        self.engine = engine
        self.alerts = alerts
        self.store = store
        self.sinks = list(sinks or [])
        self.dead_letter_sinks = list(dead_letter_sinks or [])
        self.stats = PipelineStats()
        self.busy = False  # a batch is in hand (being processed or waiting for the store to return)

    def process(self, records: list[RawRecord]) -> BatchResult:
        """Parse, store, detect and emit one batch. Raises StoreUnavailableError before anything
        of the batch is acknowledged when the store is down (the caller retries the batch)."""
        events = []
        dead = []
        for rec in records:
            res = self.registry.parse(rec)
            events.extend(res.events)
            dead.extend(res.dead_letters)
        if dead:
            self.store.write_dead_letters(dead)
            for s in self.dead_letter_sinks:
                for d in dead:
                    s.emit_dead_letter(d)
        new = self.store.write_events(events) if events else 0

        changed: dict[str, Alert] = {}
        new_alerts: list[Alert] = []
        updated: list[Alert] = []
        for ev in events:
            for det in self.engine.process(ev):
                upd = self.alerts.process(det)
                changed[upd.alert.id] = upd.alert
                (new_alerts if upd.new else updated).append(upd.alert)
                for sink in self.sinks:
                    sink.emit(upd.alert, upd.new)
        if changed:
            self.store.write_alerts(list(changed.values()))
        for sink in self.sinks:
            sink.flush()
        for s in self.dead_letter_sinks:
            s.flush()

        st = self.stats
        st.batches += 1
        st.records += len(records)
        st.events += len(events)
        st.events_new += new
        st.dead_letters += len(dead)
        st.alerts_new += len(new_alerts)
        st.alert_updates += len(updated)
        for ev in events:
            st.by_log_type[ev.event.dataset or "?"] += 1
        for d in dead:
            st.dead_by_reason[d.reason.split(":")[0]] += 1
        return BatchResult(len(events), new, len(dead), new_alerts, updated)

    def run(self, source: RecordSource, *, batch_size: int = 1000, stop: threading.Event | None = None,
            until_exhausted: bool = True, on_batch: Callable[[BatchResult], None] | None = None,
            max_backoff_s: float = 30.0) -> PipelineStats:
        """Consume ``source`` until it is exhausted (files) or ``stop`` is set (streams).

        While the store (or the bus that takes alerts and dead letters) is unavailable the same
        batch is retried with backoff and the source is not committed: nothing is skipped and
        nothing unstored is acknowledged.
        """
        stop = stop or threading.Event()
        while not stop.is_set():
            records = source.poll(batch_size, 1.0)
            if not records:
                if until_exhausted and source.exhausted():
                    break
                continue
            backoff = 0.5
            self.busy = True
            while True:
                try:
                    result = self.process(records)
                    break
                except (StoreUnavailableError, BusError) as e:
                    self.stats.store_retries += 1
                    log.warning("%s; retrying the batch in %.1fs, offsets not committed", e, backoff)
                    if stop.wait(backoff):
                        return self.stats
                    backoff = min(backoff * 2, max_backoff_s)
            source.commit()
            self.busy = False
            if on_batch:
                on_batch(result)
        return self.stats
