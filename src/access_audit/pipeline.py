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
from functools import partial
from typing import Any

from access_audit.alert.created import deliver
from access_audit.alert.manager import AlertManager
from access_audit.core.alerts import Alert
from access_audit.core.errors import BusError, StoreError, StoreUnavailableError
from access_audit.core.events import AccessEvent
from access_audit.core.ports import AlertSink, DeadLetterSink, EventStore, RecordSource
from access_audit.core.records import DeadLetter, RawRecord
from access_audit.detect.engine import DetectionEngine
from access_audit.enrich import Enricher
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
    batch_seconds: float = 0.0  # time spent on batches (prepare to commit), for the metrics
    by_log_type: Counter[str] = field(default_factory=Counter)
    dead_by_reason: Counter[str] = field(default_factory=Counter)


@dataclass
class Batch:
    records: list[RawRecord]
    events: list[AccessEvent] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    alert_updates: list[tuple[Alert, bool]] = field(default_factory=list)
    handover: list[tuple[str, int, bytes, bytes]] = field(default_factory=list)  # Kafka: to stage 2


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
                 dead_letter_sinks: list[DeadLetterSink] | None = None, enrichers: list[Enricher] | None = None,
                 checkpoint_every_s: float = 10.0, router: Any = None) -> None:
        self.registry = registry
        # Kafka workers hand events over to the rules' partitions (``access_audit.handover``)
        # instead of running the rules here; the embedded pipeline has no router.
        self.router = router
        self.state_sources: list[Any] = []  # more checkpoint_rows() providers (stage 2)
        self.after_checkpoint: list[Callable[[], None]] = []
        self.enrichers = list(enrichers or [])
        self.checkpoint_every_s = checkpoint_every_s
        self._last_checkpoint = 0.0
        self.engine = engine
        self.alerts = alerts
        self.store = store
        self.sinks = list(sinks or [])
        self.dead_letter_sinks = list(dead_letter_sinks or [])
        self.stats = PipelineStats()
        self.busy = False  # a batch is in hand (being processed or waiting for the store to return)
        # Rule state rows not yet written (a failed checkpoint keeps them for the next one).
        self._pending_state: dict[tuple[str, str], bytes | None] = {}
        self._pending_drops: list[str] = []

    def process(self, records: list[RawRecord]) -> BatchResult:
        """Prepare, detect and write one batch (no retries: see ``run`` for those)."""
        batch = self.prepare(records)
        self.detect(batch)
        return self.write(batch)

    def prepare(self, records: list[RawRecord]) -> Batch:
        """Parse and enrich; ask the store which events it holds already. Touches no rule state,
        so it can be retried freely (StoreUnavailableError when the store is down)."""
        batch = Batch(records)
        for rec in records:
            res = self.registry.parse(rec)
            batch.events.extend(res.events)
            batch.dead.extend(res.dead_letters)
        for enricher in self.enrichers:
            for ev in batch.events:
                enricher.enrich(ev)
        existing = getattr(self.store, "existing_ids", None)
        if existing and batch.events:
            batch.seen = existing([e.id for e in batch.events])
        return batch

    def detect(self, batch: Batch) -> None:
        """Run the rules over the events not stored before, in order. Runs once per batch.

        With a router the rules run in stage 2: every event of the batch is planned for hand-over,
        those stored before included (a replay after a crash must hand over what was stored but
        not handed over; stage 2 drops the ids it has seen)."""
        if self.router is not None:
            batch.handover = self.router.plan(batch.events)
            return
        for ev in batch.events:
            if ev.id in batch.seen:
                continue  # stored before: a replay or a re-ingest must not feed the rules twice
            for det in self.engine.process(ev):
                upd = self.alerts.process(det)
                batch.alert_updates.append((upd.alert, upd.new))

    def write(self, batch: Batch) -> BatchResult:
        """Store dead letters, events and alerts and flush every sink. Idempotent, so it is what
        ``run`` retries while the store or the bus is unavailable."""
        dead, events = batch.dead, batch.events
        if dead:
            self.store.write_dead_letters(dead)
            for dls in self.dead_letter_sinks:
                for d in dead:
                    dls.emit_dead_letter(d)
        new = self.store.write_events(events) if events else 0
        if batch.handover:
            self.router.send(batch.handover)
        batch.alert_updates = self.write_alert_updates(batch.alert_updates, count=False)
        for dls in self.dead_letter_sinks:
            dls.flush()

        new_alerts = [a for a, n in batch.alert_updates if n]
        updated = [a for a, n in batch.alert_updates if not n]
        st = self.stats
        st.batches += 1
        st.records += len(batch.records)
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

    def write_alert_updates(self, updates: list[tuple[Alert, bool]], *, count: bool = True) -> list[tuple[Alert, bool]]:
        """Store alert updates, then tell the sinks; idempotent (retried while the store is down).

        "new" is the store's answer (the ids it created), so alerts_new, the sinks' new flag and
        the alerts index agree, also after a restart from an older checkpoint."""
        updates = deliver(self.store, self.sinks, updates)
        if count:
            n_new = sum(1 for _, n in updates if n)
            self.stats.alerts_new += n_new
            self.stats.alert_updates += len(updates) - n_new
        return updates

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
            got = self.step(source, batch_size=batch_size, stop=stop, on_batch=on_batch,
                            max_backoff_s=max_backoff_s)
            if got is None:
                return self.stats
            if not got and until_exhausted and source.exhausted():
                break
        self.checkpoint(force=True)
        return self.stats

    def step(self, source: RecordSource, *, batch_size: int = 1000, stop: threading.Event,
             timeout_s: float = 1.0, on_batch: Callable[[BatchResult], None] | None = None,
             max_backoff_s: float = 30.0) -> bool | None:
        """One batch: poll, prepare, detect, write, commit, checkpoint. False when nothing came,
        None when ``stop`` was set while a step waited for the store."""
        records = source.poll(batch_size, timeout_s)
        if not records:
            return False
        t0 = time.monotonic()
        self.busy = True
        batch: Batch | None = self._retrying(partial(self.prepare, records), stop, max_backoff_s)
        if batch is None:
            return None
        self.detect(batch)
        result: BatchResult | None = self._retrying(partial(self.write, batch), stop, max_backoff_s)
        if result is None:
            return None
        source.commit()
        self.busy = False
        self.stats.batch_seconds += time.monotonic() - t0
        self.checkpoint()
        if on_batch:
            on_batch(result)
        return True

    def _retrying(self, step: Callable[[], Any], stop: threading.Event, max_backoff_s: float) -> Any:
        """Run an idempotent step until it works; None if ``stop`` was set while waiting."""
        backoff = 0.5
        while True:
            try:
                return step()
            except (StoreUnavailableError, BusError) as e:
                self.stats.store_retries += 1
                log.warning("%s; retrying the batch in %.1fs, offsets not committed", e, backoff)
                if stop.wait(backoff):
                    return None
                backoff = min(backoff * 2, max_backoff_s)

    LEGACY_STATE_KEY = "detect-state"  # a pickle written by 0.1: never loaded (it would run code)

    def checkpoint(self, force: bool = False) -> bool:
        """Persist what changed in the rule state and the open alerts, at a commit point, at most
        every few seconds (docs/design/decisions.md, section 4).

        Taken right after a commit, the state matches what the source will replay after a restart:
        baselines survive and history is not alerted again. Only the groups touched since the last
        checkpoint are written, so the cost follows the change, not the size of the state.
        """
        now = time.monotonic()
        if not force and now - self._last_checkpoint < self.checkpoint_every_s:
            return False
        write = getattr(self.store, "write_state", None)
        if write is None:
            return False
        ups, dels, drops = self.engine.checkpoint_rows()
        a_ups, a_dels = self.alerts.checkpoint_rows()
        for src in self.state_sources:
            s_ups, s_dels, s_drops = src.checkpoint_rows()
            ups, a_dels, drops = [*ups, *s_ups], [*a_dels, *s_dels], [*drops, *s_drops]
        pending = self._pending_state
        for ns in drops:
            for k in [k for k in pending if k[0] == ns]:
                del pending[k]
            self._pending_drops.append(ns)
        for ns, key, value in (*ups, *a_ups):
            pending[(ns, key)] = value
        for ns, key in (*dels, *a_dels):
            pending[(ns, key)] = None
        if not pending and not self._pending_drops:
            self._last_checkpoint = now
            return True
        try:
            for ns in self._pending_drops:
                self.store.drop_state(ns)  # type: ignore[attr-defined]
            self._pending_drops.clear()
            write([(ns, k, v) for (ns, k), v in pending.items() if v is not None],
                  [(ns, k) for (ns, k), v in pending.items() if v is None])
        except (StoreUnavailableError, StoreError) as e:
            # Not fatal: the rows stay pending and the next checkpoint writes them. A restart in
            # between resumes from the older state (it may miss counts of the events in between;
            # it never double-counts them).
            log.warning("rule state not checkpointed (%s); will retry", e)
            return False
        pending.clear()
        self._last_checkpoint = now
        for hook in self.after_checkpoint:
            hook()
        return True

    def restore(self) -> bool:
        """Continue from the rule state and open alerts in the store, if there are any."""
        read = getattr(self.store, "read_state", None)
        if read is None:
            return False
        get = getattr(self.store, "get_state", None)
        if get is not None and get(self.LEGACY_STATE_KEY):
            log.warning("the store holds rule state pickled by access-audit 0.1 ('%s'); it is not loaded "
                        "(unpickling runs code), so stateful rules warm up again", self.LEGACY_STATE_KEY)
        drop = getattr(self.store, "drop_state", None)
        n = self.engine.restore_rows(read, drop)
        load = getattr(self.store, "alerts_by_ids", None)
        if load is not None:
            n += self.alerts.restore_rows(read, load)
        return n > 0
