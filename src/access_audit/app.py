"""Composition root: settings + adapters -> a pipeline. The only place that picks adapters."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from access_audit.alert.manager import AlertManager
from access_audit.core.clock import Clock, SystemClock
from access_audit.core.errors import RuleLoadErrors, StoreUnavailableError
from access_audit.core.ports import AlertSink
from access_audit.detect.engine import DetectionEngine
from access_audit.detect.kinds import DetectContext
from access_audit.detect.loader import RuleSet, load_rules
from access_audit.parse.base import ParserRegistry
from access_audit.pipeline import Pipeline
from access_audit.settings import Settings
from access_audit.store.opening import open_store
from access_audit.store.sqlite import SqliteStore

log = logging.getLogger(__name__)
T = TypeVar("T")


def apply_lateness(rules: list[Any], settings: Settings) -> None:
    """Give each rule that keeps events in event-time order its allowed lateness (settings)."""
    for r in rules:
        if hasattr(r, "lateness"):
            r.lateness = settings.lateness_for(getattr(r, "log_types", None))


def load_ruleset(extra: list[Path] | None = None, *, strict: bool = True) -> RuleSet:
    """The default pack plus ``extra`` rule paths. With ``strict`` any rule problem raises."""
    rs = load_rules(extra or [], include_default=True)
    if rs.errors and strict:
        raise RuleLoadErrors(rs.errors)
    return rs


def build_context(settings: Settings) -> tuple[list[Any], DetectContext]:
    """Enrichers for the pipeline and the context for context-aware rules, from settings."""
    enrichers: list[Any] = []
    ctx = DetectContext()
    if settings.geoip:
        from access_audit.enrich.geoip import GeoIpEnricher

        enrichers.append(GeoIpEnricher(settings.geoip_db))
    if settings.identity_file:
        from access_audit.enrich.directory import DirectoryEnricher, IdentityDirectory

        ctx.directory = IdentityDirectory.from_file(settings.identity_file)
        enrichers.append(DirectoryEnricher(ctx.directory))
    if settings.resources_file:
        from access_audit.enrich.catalogue import CatalogueEnricher, ResourceCatalogue

        ctx.catalogue = ResourceCatalogue.from_file(settings.resources_file)
        enrichers.append(CatalogueEnricher(ctx.catalogue))
    return enrichers, ctx


ID_SCHEME_KEY = "meta.id_scheme"


def store_id_scheme(store: Any) -> int:
    """The event id scheme of a store (docs/design/decisions.md §2), recorded on first use.

    A store that holds events but no record was written before scheme 2: it stays on scheme 1, so
    that replays of the files it holds are still recognised. A new store gets scheme 2."""
    raw = store.get_state(ID_SCHEME_KEY)
    if raw:
        try:
            return int(raw)
        except ValueError:
            log.warning("store meta %s=%r is not a number; using id scheme 2", ID_SCHEME_KEY, raw)
            return 2
    from access_audit.store.query import Query

    scheme = 1 if store.count(Query(limit=1)) else 2
    store.put_state(ID_SCHEME_KEY, str(scheme).encode())
    if scheme == 1:
        log.warning("this store was written with event id scheme 1 (ids from file paths): it keeps that "
                    "scheme, so renamed or rotated files are stored again; a new data directory (or "
                    "index prefix) uses scheme 2")
    return scheme


def alert_sinks(settings: Settings, console: Any = None, *, clock: Clock | None = None) -> list[AlertSink]:
    """The embedded mode's alert sinks: Slack when a token is configured, else the console (a rich
    Console; None for no console output); a webhook when ``webhook_url`` is set; always the JSON
    Lines file. Slack and the webhook deliver from the outbox under the data directory; ``close()``
    each sink when done (Slack keeps delivering for a few seconds, the rest waits for the next run).
    """
    from access_audit.notify.console import ConsoleNotifier, JsonlAlertSink

    sinks: list[AlertSink] = []
    if settings.slack_token is not None or settings.slack_token_file is not None:
        from access_audit.notify.slack import SlackNotifier

        slack = SlackNotifier.from_settings(settings, clock=clock)
        slack.start()
        sinks.append(slack)
    elif console is not None:
        sinks.append(ConsoleNotifier(console))
    if settings.webhook_url:
        from access_audit.notify.webhook import WebhookNotifier

        sinks.append(WebhookNotifier.from_settings(settings, clock=clock))
    sinks.append(JsonlAlertSink(settings.alerts_path))
    return sinks


@dataclass
class Worker:
    pipeline: Pipeline
    store: Any
    source: Any
    closers: list[Any]
    stage2: Any = None  # handover.Stage2 (topology "rekey")
    handover: Any = None  # its HandoverSource
    topology: Any = None
    partitions: dict[str, int] | None = None
    last_activity: float = 0.0  # monotonic time of the last batch of either stage

    @property
    def busy(self) -> bool:
        return self.pipeline.busy or bool(self.stage2 is not None and self.stage2.busy)

    def run(self, *, batch_size: int, stop: Any, on_batch: Callable[[Any], None] | None = None,
            max_backoff_s: float = 30.0) -> None:
        """Both stages in one loop: a raw batch (stage 1), then a hand-over batch (stage 2)."""
        if self.stage2 is None:
            self.pipeline.run(self.source, batch_size=batch_size, stop=stop, until_exhausted=False,
                              on_batch=on_batch, max_backoff_s=max_backoff_s)
            return
        from functools import partial

        p, s2 = self.pipeline, self.stage2
        next_lag = 0.0
        while not stop.is_set():
            if time.monotonic() >= next_lag:  # read here: a consumer is not shared with the scrape thread
                next_lag = time.monotonic() + 15.0
                self._refresh_lag()
            got = p.step(self.source, batch_size=batch_size, stop=stop, timeout_s=0.2, on_batch=on_batch,
                         max_backoff_s=max_backoff_s)
            if got is None:
                return
            msgs = self.handover.poll(batch_size, 0.0 if got else 0.2)
            if msgs:
                self.last_activity = time.monotonic()
                s2.busy = True
                updates = p._retrying(partial(s2.detect, msgs), stop, max_backoff_s)
                if updates is None:
                    return
                if p._retrying(partial(p.write_alert_updates, updates), stop, max_backoff_s) is None:
                    return
                s2.busy = False
                self.last_activity = time.monotonic()
            p.checkpoint()
        p.checkpoint(force=True)

    def _refresh_lag(self) -> None:
        lag: dict[tuple[str, int], int] = {}
        try:
            raw = self.source.lag()
            lag[("raw", -1)] = raw if isinstance(raw, int) else 0
            if self.handover is not None:
                lag.update(self.handover.lag())
        except Exception as e:  # the lag is for the metrics: never a reason to stop
            log.debug("lag not read: %s", e)
            return
        self.lag = lag

    def metrics_text(self) -> str:
        """The worker's counters in the Prometheus text format (``--health-port``'s /metrics)."""
        st = self.pipeline.stats
        lines: list[str] = []

        def metric(name: str, kind: str, help_: str, samples: list[tuple[str, float]]) -> None:
            lines.append(f"# HELP access_audit_{name} {help_}")
            lines.append(f"# TYPE access_audit_{name} {kind}")
            lines.extend(f"access_audit_{name}{labels} {value:g}" for labels, value in samples)

        metric("records_total", "counter", "Raw records consumed.", [("", st.records)])
        metric("events_total", "counter", "Events parsed.", [("", st.events)])
        metric("events_stored_total", "counter", "Events new to the store.", [("", st.events_new)])
        metric("dead_letters_total", "counter", "Records sent to the dead-letter store, by reason.",
               [(f'{{reason="{r}"}}', n) for r, n in sorted(st.dead_by_reason.items())] or [("", 0)])
        metric("alerts_new_total", "counter", "Alerts opened.", [("", st.alerts_new)])
        metric("alert_updates_total", "counter", "Counter updates of open alerts.", [("", st.alert_updates)])
        metric("store_retries_total", "counter", "Batches retried while the store or bus was away.",
               [("", st.store_retries)])
        metric("batch_seconds_total", "counter", "Seconds spent on raw batches (prepare to commit).",
               [("", st.batch_seconds)])
        metric("batches_total", "counter", "Raw batches processed.", [("", st.batches)])
        late: Counter[str] = Counter(self.pipeline.engine.stats.late)
        if self.stage2 is not None:
            for t in self.stage2.tasks.values():
                late.update(t.engine.stats.late)
        metric("late_events_total", "counter",
               "Events later than the allowed lateness (stored and evaluated; alerts may differ), by log type.",
               [(f'{{log_type="{k}"}}', n) for k, n in sorted(late.items())] or [("", 0)])
        router = self.pipeline.router
        if router is not None and self.stage2 is not None:
            metric("handover_sent_total", "counter", "Messages handed over to stage 2.", [("", router.handed)])
            tasks = list(self.stage2.tasks.values())
            metric("handover_events_total", "counter", "Events stage 2 ran the rules over, per partition.",
                   [(f'{{partition="{t.label}"}}', t.events) for t in tasks] or [("", 0)])
            metric("handover_duplicates_total", "counter", "Replayed hand-overs dropped by event id.",
                   [(f'{{partition="{t.label}"}}', t.duplicates) for t in tasks] or [("", 0)])
            metric("state_groups", "gauge", "Rule groups and open alerts held, per hand-over partition.",
                   [(f'{{partition="{label}"}}', n) for label, n in self.stage2.state_sizes()] or [("", 0)])
        lag = getattr(self, "lag", {})
        metric("lag_messages", "gauge", "Messages behind the end of each assigned partition.",
               [(f'{{topic="{t}",partition="{p}"}}' if p >= 0 else '{topic="raw",partition="all"}', n)
                for (t, p), n in sorted(lag.items())] or [("", 0)])
        return "\n".join(lines) + "\n"

    def close(self) -> None:
        for c in self.closers:
            c.close()


def wait_for(what: str, step: Callable[[], T], *, max_wait_s: float | None = None) -> T:
    """Run ``step`` until the store answers: a worker started while Elasticsearch is down (or still
    allocating shards) logs and waits with backoff instead of dying."""
    backoff, waited = 1.0, 0.0
    while True:
        try:
            return step()
        except StoreUnavailableError as e:
            if max_wait_s is not None and waited >= max_wait_s:
                raise
            log.warning("%s: %s; retrying in %.0fs", what, e, backoff)
            time.sleep(backoff)
            waited += backoff
            backoff = min(backoff * 2, 30.0)


class KafkaAdapters(NamedTuple):
    source: Any  # (settings) -> RecordSource
    alert_sink: Any  # (settings) -> AlertSink
    dead_letter_sink: Any  # (settings) -> DeadLetterSink
    ship: Any  # (settings, records, topic, key_of) -> int
    ensure_topics: Any  # (settings, topics, partitions, replication) -> {topic: partitions}
    handover_producer: Any  # (settings) -> handover.HandoverProducer
    handover_source: Any  # (settings, topics, group, on_assign, on_revoke) -> handover.HandoverSource


def kafka_adapters(settings: Settings) -> KafkaAdapters:
    """The Kafka adapters of the client chosen by ``kafka_client``: confluent-kafka
    (``ingest.kafka_confluent``) or kafka-python (``ingest.kafka``). Same ports, headers and commit order."""
    if settings.kafka_client == "confluent":
        from access_audit.ingest import kafka_confluent as c

        return KafkaAdapters(c.ConfluentRecordSource, c.ConfluentAlertSink, c.ConfluentDeadLetterSink, c.ship,
                             c.ensure_topics, c.ConfluentHandoverProducer, c.ConfluentHandoverSource)
    from access_audit.ingest import kafka as k

    return KafkaAdapters(k.KafkaRecordSource, k.KafkaAlertSink, k.KafkaDeadLetterSink, k.ship,
                         k.ensure_topics, k.KafkaHandoverProducer, k.KafkaHandoverSource)


def build_worker(settings: Settings, *, sinks: list[AlertSink] | None = None, rules: list[Path] | None = None,
                 clock: Clock | None = None) -> Worker:
    """Production: Kafka in (consumer group), the configured store, alerts and dead letters to Kafka."""
    clock = clock or SystemClock()
    rs = load_ruleset([*settings.rules, *(rules or [])])
    apply_lateness(rs.rules, settings)
    store = wait_for("opening the store", lambda: open_store(settings))
    kafka = kafka_adapters(settings)
    alert_sink = kafka.alert_sink(settings)
    dl_sink = kafka.dead_letter_sink(settings)
    source = kafka.source(settings)
    enrichers, ctx = build_context(settings)
    scheme = wait_for("reading the store's id scheme", lambda: store_id_scheme(store))
    engine = DetectionEngine(rs.rules, ctx, lateness=settings.lateness_for)
    registry = ParserRegistry(clock=clock, id_scheme=scheme)
    all_sinks = [alert_sink, *(sinks or [])]
    if settings.kafka_topology == "single":
        pipeline = Pipeline(registry=registry, engine=engine, alerts=AlertManager(clock=clock), store=store,
                            sinks=all_sinks, dead_letter_sinks=[dl_sink], enrichers=enrichers)
        wait_for("restoring the rule state", pipeline.restore)
        return Worker(pipeline, store, source, [source, alert_sink, dl_sink, store])

    from access_audit.handover import Router, Stage2, Topology

    topology = Topology.of(rs.rules, settings.kafka_group_id)
    partitions = kafka.ensure_topics(settings, list(topology.topics), settings.kafka_handover_partitions,
                                     settings.kafka_handover_replication)
    producer = kafka.handover_producer(settings)
    pipeline = Pipeline(registry=registry, engine=engine, alerts=AlertManager(clock=clock), store=store,
                        sinks=all_sinks, dead_letter_sinks=[dl_sink], enrichers=enrichers,
                        router=Router(topology, engine, partitions, producer))
    stage2 = Stage2(topology, partitions, context=ctx, clock=clock, store=store,
                    write_alerts=pipeline.write_alert_updates, seen_cap=settings.handover_seen_ids,
                    lateness=settings.lateness_for)
    pipeline.state_sources.append(stage2)
    holder: list[Any] = []
    pipeline.after_checkpoint.append(lambda: holder[0].commit(stage2.take_commits()) if holder else None)

    def on_revoke(parts: list[tuple[str, int]]) -> None:
        stage2.revoke(parts, lambda: pipeline.checkpoint(force=True))

    handover = kafka.handover_source(settings, list(topology.topics), topology.consumer_group,
                                     stage2.assign, on_revoke)
    holder.append(handover)
    return Worker(pipeline, store, source, [source, handover, producer, alert_sink, dl_sink, store],
                  stage2=stage2, handover=handover, topology=topology, partitions=partitions)


@dataclass
class Embedded:
    pipeline: Pipeline
    store: SqliteStore
    rules: RuleSet


def build_embedded(settings: Settings, *, sinks: list[AlertSink], rules: list[Path] | None = None,
                   clock: Clock | None = None) -> Embedded:
    """The embedded default: SQLite store under the data directory, the given alert sinks."""
    clock = clock or SystemClock()
    rs = load_ruleset([*settings.rules, *(rules or [])])
    apply_lateness(rs.rules, settings)
    store = open_store(settings)
    enrichers, ctx = build_context(settings)
    registry = ParserRegistry(clock=clock, id_scheme=store_id_scheme(store))
    pipeline = Pipeline(registry=registry, engine=DetectionEngine(rs.rules, ctx, lateness=settings.lateness_for),
                        alerts=AlertManager(clock=clock), store=store, sinks=sinks, enrichers=enrichers)
    pipeline.restore()
    return Embedded(pipeline, store, rs)
