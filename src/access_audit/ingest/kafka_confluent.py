"""Kafka adapters on confluent-kafka (librdkafka): the raw-log source, the alert and dead-letter
producers, ship. Same ports, headers, settings and commit order as ``ingest.kafka`` (kafka-python);
chosen with ``ACCESS_AUDIT_KAFKA_CLIENT=confluent``.

At-least-once: the consumer never auto-commits. ``ConfluentRecordSource`` remembers the next
offset of every partition it handed records from, and ``commit`` (which the pipeline calls after
the batch's events are stored and its alerts produced and flushed) commits exactly those offsets,
synchronously. A crash before that replays the batch; the stores and the alert ids make the replay
harmless. Offsets of partitions revoked by a rebalance are forgotten: their new owner replays
from the last commit.

librdkafka reconnects by itself; a broker that is down at start is probed with backoff and
logged, as the kafka-python adapter does.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any, cast

from access_audit.core.errors import BusError
from access_audit.core.records import RawRecord
from access_audit.handover import Handed
from access_audit.ingest.kafka import AlertsToTopic, DeadLettersToTopic, record_from_kafka, ship_with
from access_audit.settings import Settings

try:
    from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
except ImportError as e:  # pragma: no cover - a dependency; keep the hint anyway
    raise ImportError("the confluent Kafka adapter needs confluent-kafka: pip install confluent-kafka "
                      "(or set ACCESS_AUDIT_KAFKA_CLIENT=kafka-python)") from e

log = logging.getLogger(__name__)
rdlog = logging.getLogger(__name__ + ".librdkafka")


def client_config(s: Settings) -> dict[str, Any]:
    """librdkafka connection settings shared by consumers and producers (bootstrap, client id, SASL/SSL)."""
    cfg: dict[str, Any] = {"bootstrap.servers": s.kafka_bootstrap_servers, "client.id": s.kafka_client_id,
                           "security.protocol": s.kafka_security_protocol.lower(),
                           "logger": rdlog, "error_cb": _on_error}
    if s.kafka_sasl_mechanism:
        cfg["sasl.mechanism"] = s.kafka_sasl_mechanism
        cfg["sasl.username"] = s.kafka_sasl_username
        cfg["sasl.password"] = s.kafka_sasl_password.get_secret_value() if s.kafka_sasl_password else None
    if s.kafka_ssl_cafile:
        cfg["ssl.ca.location"] = str(s.kafka_ssl_cafile)
    return cfg


def _on_error(err: Any) -> None:
    # librdkafka retries by itself; transport errors (broker down, all brokers down) are logged.
    log.warning("Kafka: %s", err)


def _wait_for_broker(what: str, client: Any, bootstrap: str, max_wait_s: float | None = None,
                     wait: Any = None) -> None:
    """Block until the cluster answers a metadata request, retrying with backoff; BusError after
    ``max_wait_s``. ``wait(seconds, attempt, reason, left)`` replaces the sleep (as in ``ingest.kafka``)."""
    backoff, t0, attempt = 1.0, time.monotonic(), 0
    while True:
        attempt += 1
        try:
            client.list_topics(timeout=2.0)
            return
        except KafkaException as e:
            waited = time.monotonic() - t0
            if max_wait_s is not None and waited >= max_wait_s:
                raise BusError(f"cannot reach Kafka at {bootstrap} for the {what} after {waited:.0f}s "
                               f"({attempt} attempts): {e}") from e
            pause = backoff if max_wait_s is None else max(0.0, min(backoff, max_wait_s - waited))
            if wait is not None:
                wait(pause, attempt, str(e), None if max_wait_s is None else max_wait_s - waited)
            else:
                log.warning("Kafka unreachable at %s for the %s (%s); retrying in %.0fs", bootstrap, what, e, pause)
                time.sleep(pause)
            backoff = min(backoff * 2, 30.0)


class _Msg:
    """A confluent message seen through kafka-python's attribute names, for ``record_from_kafka``."""

    __slots__ = ("headers", "offset", "partition", "topic", "value")

    def __init__(self, m: Any) -> None:
        self.topic, self.partition, self.offset = m.topic(), m.partition(), m.offset()
        self.value, self.headers = m.value(), m.headers()


def consume_messages(consumer: Any, max_records: int, timeout_s: float, what: str = "") -> list[Any]:
    """One ``consume`` of a confluent consumer without its error events: a fatal error raises
    BusError, another is logged and skipped (librdkafka retries by itself); a failed call gives
    nothing (the position is kept)."""
    try:
        msgs = consumer.consume(num_messages=max_records, timeout=timeout_s)
    except KafkaException as e:
        log.warning("Kafka %spoll failed (%s); will retry", what, e)
        time.sleep(1.0)
        return []
    out = []
    for m in msgs:
        err = m.error()
        if err is not None:
            if err.fatal():
                raise BusError(f"Kafka {what}consumer: fatal error: {err}")
            log.warning("Kafka %sconsumer: %s", what, err)
            continue
        out.append(m)
    return out


def cached_lag(consumer: Any, parts: list[Any]) -> dict[tuple[str, int], int]:
    """Lag per assigned partition from what the consumer already knows: its position and the high
    watermark of the last fetch response. It asks the broker nothing: a watermark query per
    partition in the worker loop blocked it for seconds behind the fetches (and a worker that looks
    idle is stopped by ``--max-idle``). A partition not fetched yet is left out."""
    out: dict[tuple[str, int], int] = {}
    for tp in consumer.position(parts):
        _low, high = consumer.get_watermark_offsets(tp, cached=True)
        if high >= 0:
            out[(tp.topic, tp.partition)] = max(0, high - tp.offset) if tp.offset >= 0 else high
    return out


class ConfluentRecordSource:
    """RecordSource over a consumer group on the raw-log topics. Never auto-commits."""

    def __init__(self, settings: Settings, *, connect_timeout_s: float | None = None) -> None:
        self.settings = settings
        self.topic_log_types = dict(settings.kafka_topic_log_types)
        self.consumer = Consumer({
            **client_config(settings), "group.id": settings.kafka_group_id, "enable.auto.commit": False,
            "auto.offset.reset": "earliest", "max.poll.interval.ms": 600_000, "session.timeout.ms": 10_000,
            "heartbeat.interval.ms": 2_000, "reconnect.backoff.max.ms": 10_000})
        self._pending: dict[tuple[str, int], int] = {}  # (topic, partition) -> next offset to commit
        self.polled = 0
        self.commit_failures = 0
        _wait_for_broker("consumer", self.consumer, settings.kafka_bootstrap_servers, connect_timeout_s)
        self.consumer.subscribe(list(settings.kafka_topics), on_revoke=self._on_revoke)

    def _on_revoke(self, _consumer: Any, partitions: list[Any]) -> None:
        for tp in partitions:
            self._pending.pop((tp.topic, tp.partition), None)

    def poll(self, max_records: int = 1000, timeout_s: float = 1.0) -> list[RawRecord]:
        out: list[RawRecord] = []
        pending, types = self._pending, self.topic_log_types
        for m in consume_messages(self.consumer, max_records, timeout_s):
            view = _Msg(m)
            out.append(record_from_kafka(view, types))
            pending[(view.topic, view.partition)] = view.offset + 1
        self.polled += len(out)
        return out

    def commit(self) -> None:
        """Commit the positions of everything polled. A failed commit is retried at the next one;
        until then a restart replays (at-least-once), it never skips."""
        if not self._pending:
            return
        offsets = [TopicPartition(t, p, o) for (t, p), o in self._pending.items()]
        while True:
            try:
                self.consumer.commit(offsets=offsets, asynchronous=False)
                self._pending.clear()
                return
            except KafkaException as e:
                self.commit_failures += 1
                err = e.args[0] if e.args else None
                log.warning("Kafka offset commit failed (%s); retrying", e)
                if not (isinstance(err, KafkaError) and err.retriable()):
                    return  # e.g. a rebalance: the new owner replays from the last commit
                time.sleep(1.0)

    def exhausted(self) -> bool:
        return False

    def lag(self) -> int:
        parts = self.consumer.assignment()
        if not parts:
            return 0
        return sum(cached_lag(self.consumer, parts).values())

    def close(self) -> None:
        self.consumer.close()  # auto-commit is off: closing commits nothing


class _Producer:
    def __init__(self, settings: Settings, what: str, *, max_wait_s: float | None = None, wait: Any = None) -> None:
        self.what = what
        self.producer = Producer({
            **client_config(settings), "acks": "all", "enable.idempotence": True, "linger.ms": 20,
            "message.timeout.ms": 60_000, "request.timeout.ms": 30_000})
        self._failed: list[Any] = []
        _wait_for_broker(what, self.producer, settings.kafka_bootstrap_servers, max_wait_s, wait)

    def _delivered(self, err: Any, _msg: Any) -> None:
        if err is not None:
            self._failed.append(err)

    def _send(self, topic: str, value: bytes, key: bytes | None, headers: list[tuple[str, bytes]]) -> None:
        while True:
            try:
                self.producer.produce(topic, value=value, key=key, headers=cast(Any, headers),
                                      on_delivery=self._delivered)
                return
            except BufferError:  # the local queue is full: let deliveries drain it
                self.producer.poll(0.5)

    def flush(self) -> None:
        """Block until every message sent since the last flush is acknowledged; raise BusError otherwise."""
        not_done = self.producer.flush(60)
        failed, self._failed = self._failed, []
        if failed or not_done:
            raise BusError(f"{self.what}: {len(failed)} message(s) failed, {not_done} unacknowledged"
                           + (f": {failed[0]}" if failed else ""))

    def close(self) -> None:
        self.producer.flush(10)


class ConfluentAlertSink(AlertsToTopic, _Producer):
    """Alerts to the alerts topic through confluent-kafka (``ingest.kafka.AlertsToTopic``)."""


class ConfluentDeadLetterSink(DeadLettersToTopic, _Producer):
    """Dead letters to their topic through confluent-kafka (``ingest.kafka.DeadLettersToTopic``)."""


def ship(settings: Settings, records: Iterable[RawRecord], topic: str, key_of: Any = None, *,
         connect_timeout_s: float | None = None, wait: Any = None) -> int:
    """Send raw records to ``topic`` with the headers of ``ingest.kafka.record_headers`` (the same
    loop as ``ingest.kafka.ship``); returns the number of messages acknowledged by the broker.
    While no broker answers, connecting is retried (``wait`` shows it), BusError after ``connect_timeout_s``."""
    return ship_with(_Producer(settings, "shipper", max_wait_s=connect_timeout_s, wait=wait), records, topic, key_of)


# --- scale-out: the hand-over topics between the stages (access_audit.handover) ---------------

def ensure_topics(settings: Settings, topics: list[str], partitions: int, replication: int = 1,
                  *, connect_timeout_s: float | None = None) -> dict[str, int]:
    """Create the hand-over topics that do not exist; returns every topic's partition count
    (an existing topic keeps its own count: keys are placed by the count it has)."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({k: v for k, v in client_config(settings).items() if k != "logger"})
    _wait_for_broker("admin client", admin, settings.kafka_bootstrap_servers, connect_timeout_s)
    have = admin.list_topics(timeout=10).topics
    missing = [t for t in topics if t not in have]
    if missing:
        for t, fut in admin.create_topics([NewTopic(t, partitions, replication) for t in missing]).items():
            try:
                fut.result(30)
            except KafkaException as e:
                err = e.args[0] if e.args else None
                if not (isinstance(err, KafkaError) and err.code() == KafkaError.TOPIC_ALREADY_EXISTS):
                    raise BusError(f"cannot create the hand-over topic {t}: {e}") from e
    counts: dict[str, int] = {}
    for _ in range(50):
        meta = admin.list_topics(timeout=10).topics
        counts = {t: len(meta[t].partitions) for t in topics if t in meta and meta[t].error is None}
        if all(counts.get(t) for t in topics):
            return counts
        time.sleep(0.2)
    raise BusError(f"hand-over topics not ready: {sorted(t for t in topics if not counts.get(t))}")


class ConfluentHandoverProducer(_Producer):
    """Stage 1's producer to the hand-over topics, on the partition ``handover.partition_of`` chose."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings, "hand-over producer")

    def send(self, topic: str, partition: int, key: bytes, value: bytes) -> None:
        while True:
            try:
                self.producer.produce(topic, value=value, key=key, partition=partition, on_delivery=self._delivered)
                return
            except BufferError:
                self.producer.poll(0.5)


class ConfluentHandoverSource:
    """Stage 2's consumer (see ``ingest.kafka.KafkaHandoverSource``): restores a partition's
    state and seeks to its checkpointed offset on assignment, writes it before revocation."""

    def __init__(self, settings: Settings, topics: list[str], group_id: str, on_assign: Any, on_revoke: Any) -> None:
        self.consumer = Consumer({
            **client_config(settings), "group.id": group_id, "enable.auto.commit": False,
            "auto.offset.reset": "earliest", "max.poll.interval.ms": 600_000, "session.timeout.ms": 10_000,
            "heartbeat.interval.ms": 2_000, "reconnect.backoff.max.ms": 10_000})
        _wait_for_broker("hand-over consumer", self.consumer, settings.kafka_bootstrap_servers)

        def assigned(consumer: Any, parts: list[Any]) -> None:
            seek = on_assign([(tp.topic, tp.partition) for tp in parts])
            for tp in parts:
                off = seek.get((tp.topic, tp.partition))
                if off is not None:
                    tp.offset = off
            consumer.assign(parts)

        def revoked(_consumer: Any, parts: list[Any]) -> None:
            on_revoke([(tp.topic, tp.partition) for tp in parts])

        self.consumer.subscribe(list(topics), on_assign=assigned, on_revoke=revoked)

    def poll(self, max_records: int = 1000, timeout_s: float = 1.0) -> list[Handed]:
        return [Handed(str(m.topic()), int(m.partition() or 0), int(m.offset() or 0), m.value() or b"")
                for m in consume_messages(self.consumer, max_records, timeout_s, "hand-over ")]

    def commit(self, offsets: dict[tuple[str, int], int]) -> None:
        if not offsets:
            return
        try:
            self.consumer.commit(offsets=[TopicPartition(t, p, o) for (t, p), o in offsets.items()], asynchronous=False)
        except KafkaException as e:  # the checkpointed offset is what counts; the commit only shows lag
            log.warning("Kafka offset commit (hand-over) failed (%s)", e)

    def lag(self) -> dict[tuple[str, int], int]:
        parts = self.consumer.assignment()
        return cached_lag(self.consumer, parts) if parts else {}

    def close(self) -> None:
        self.consumer.close()
