"""Kafka adapters (kafka-python): the raw-log source, the alert and dead-letter producers, ship.

At-least-once: offsets are committed only by ``KafkaRecordSource.commit``, which the pipeline
calls after the batch's events are stored and its alerts produced and flushed. A crash before
that replays the batch; the stores and the alert ids make the replay harmless.

A broker that is down at start or goes away later is retried with backoff and logged; the
worker keeps its position (the committed offsets live in Kafka, the fetch position in the
consumer).
"""

from __future__ import annotations

import base64
import contextlib
import logging
import time
from collections.abc import Iterable
from typing import Any

import orjson

from access_audit.core.alerts import Alert
from access_audit.core.errors import BusError
from access_audit.core.records import DeadLetter, RawRecord
from access_audit.handover import Handed
from access_audit.settings import Settings

try:
    from kafka import KafkaConsumer, KafkaProducer
    from kafka import errors as kafka_errors
    from kafka.errors import KafkaError
except ImportError as e:  # pragma: no cover - kafka-python is a dependency; keep the hint anyway
    raise ImportError("the Kafka adapter needs kafka-python: pip install kafka-python") from e

# kafka-python 2.x raises NoBrokersAvailable when nothing answers; 3.x dropped the class.
NoBrokersAvailable: type[Exception] = getattr(kafka_errors, "NoBrokersAvailable", KafkaError)

log = logging.getLogger(__name__)

H_LOG_TYPE, H_ORIGIN, H_SOURCE, H_YEAR = "log_type", "origin", "source", "year"
H_STREAM, H_OCCURRENCE = "aa-stream", "aa-occ"  # the event id's stream and occurrence (decisions.md §2)


def client_config(s: Settings) -> dict[str, Any]:
    """Connection settings shared by consumers and producers (bootstrap, client id, SASL/SSL)."""
    cfg: dict[str, Any] = {"bootstrap_servers": s.kafka_bootstrap_servers.split(","), "client_id": s.kafka_client_id,
                           "security_protocol": s.kafka_security_protocol}
    if s.kafka_sasl_mechanism:
        cfg["sasl_mechanism"] = s.kafka_sasl_mechanism
        cfg["sasl_plain_username"] = s.kafka_sasl_username
        cfg["sasl_plain_password"] = s.kafka_sasl_password.get_secret_value() if s.kafka_sasl_password else None
    if s.kafka_ssl_cafile:
        cfg["ssl_cafile"] = str(s.kafka_ssl_cafile)
    return cfg


def _retry_connect(what: str, factory: Any, max_wait_s: float | None = None, wait: Any = None,
                   where: str = "") -> Any:
    """Create a client, retrying with backoff while no broker answers; BusError after ``max_wait_s``.

    ``wait(seconds, attempt, reason, left)`` replaces the sleep between attempts (``ship`` shows a
    countdown with it); ``left`` is the time until giving up, or None."""
    backoff, t0 = 1.0, time.monotonic()
    attempt = 0
    while True:
        attempt += 1
        try:
            return factory()
        except (NoBrokersAvailable, KafkaError) as e:
            waited = time.monotonic() - t0
            if max_wait_s is not None and waited >= max_wait_s:
                raise BusError(f"cannot reach Kafka for the {what} after {waited:.0f}s ({attempt} attempts): "
                               f"{e}") from e
            pause = backoff if max_wait_s is None else max(0.0, min(backoff, max_wait_s - waited))
            if wait is not None:
                wait(pause, attempt, str(e), None if max_wait_s is None else max_wait_s - waited)
            else:
                log.warning("Kafka unreachable at %s for the %s (%s); retrying in %.0fs", where or "?", what, e, pause)
                time.sleep(pause)
            backoff = min(backoff * 2, 30.0)


def record_from_kafka(msg: Any, topic_log_types: dict[str, str]) -> RawRecord:
    """A RawRecord from a consumed message: log type from the header, else the topic's, else detect.

    Messages from ``ship`` carry the stream and occurrence of their line (``aa-stream``,
    ``aa-occ``); any other message is identified by its place: stream ``kafka:<topic>/<partition>``,
    occurrence = offset, so a replay of the same topic is recognised."""
    h = {k: v for k, v in (msg.headers or [])}
    origin = (h.get(H_ORIGIN) or b"").decode() or f"{msg.topic}/{msg.partition}/{msg.offset}"
    year = h.get(H_YEAR)
    occ = h.get(H_OCCURRENCE)
    if occ is not None and occ.isdigit():
        stream, occurrence = (h.get(H_STREAM) or b"").decode("utf-8", "replace"), int(occ)
    else:
        stream, occurrence = f"kafka:{msg.topic}/{msg.partition}", int(msg.offset)
    return RawRecord(
        data=msg.value if msg.value is not None else b"",
        origin=origin,
        source=(h.get(H_SOURCE) or b"").decode() or f"kafka:{msg.topic}",
        log_type=(h.get(H_LOG_TYPE) or b"").decode() or topic_log_types.get(msg.topic),
        year=int(year) if year else None,
        stream=stream,
        occurrence=occurrence,
    )


def poll_messages(consumer: Any, max_records: int, timeout_s: float, what: str = "") -> list[Any]:
    """One poll of a kafka-python consumer, flattened; a failed poll is logged and gives nothing
    (the position is kept: the next poll fetches the same messages)."""
    try:
        batches = consumer.poll(timeout_ms=int(timeout_s * 1000), max_records=max_records)
    except KafkaError as e:
        log.warning("Kafka %spoll failed (%s); will retry", what, e)
        time.sleep(1.0)
        return []
    return [m for msgs in batches.values() for m in msgs]


def cached_lag(consumer: Any, parts: Any) -> dict[tuple[str, int], int]:
    """Lag per assigned partition from what the consumer already knows (its position and the high
    watermark of the last fetch response): no request to the broker from the worker loop, so a
    metric never stalls the pipeline. A partition not fetched yet is left out."""
    out: dict[tuple[str, int], int] = {}
    for tp in parts:
        high = consumer.highwater(tp)
        if high is not None:
            out[(tp.topic, tp.partition)] = max(0, high - consumer.position(tp))
    return out


class KafkaRecordSource:
    """RecordSource over a consumer group on the raw-log topics. Never auto-commits."""

    def __init__(self, settings: Settings, *, connect_timeout_s: float | None = None) -> None:
        self.settings = settings
        self.topic_log_types = dict(settings.kafka_topic_log_types)
        self.consumer = _retry_connect("consumer", lambda: KafkaConsumer(
            *settings.kafka_topics, group_id=settings.kafka_group_id, enable_auto_commit=False,
            auto_offset_reset="earliest", max_poll_records=settings.batch_size,
            max_poll_interval_ms=600_000, session_timeout_ms=10_000, heartbeat_interval_ms=2_000,
            reconnect_backoff_max_ms=10_000, **client_config(settings)), connect_timeout_s,
            where=settings.kafka_bootstrap_servers)
        self.polled = 0
        self.commit_failures = 0
        self._last_origins: list[tuple[str, int, int]] = []

    def poll(self, max_records: int = 1000, timeout_s: float = 1.0) -> list[RawRecord]:
        out = [record_from_kafka(m, self.topic_log_types) for m in poll_messages(self.consumer, max_records, timeout_s)]
        self.polled += len(out)
        return out

    def commit(self) -> None:
        """Commit the positions of everything polled. A failed commit is retried at the next one;
        until then a restart replays (at-least-once), it never skips."""
        while True:
            try:
                self.consumer.commit()
                return
            except KafkaError as e:
                self.commit_failures += 1
                log.warning("Kafka offset commit failed (%s); retrying", e)
                if not getattr(e, "retriable", False):
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
        self.consumer.close(autocommit=False)


class _Producer:
    def __init__(self, settings: Settings, what: str, *, max_wait_s: float | None = None, wait: Any = None) -> None:
        extra: dict[str, Any] = {}
        if max_wait_s is not None and "bootstrap_timeout_ms" in getattr(KafkaProducer, "DEFAULT_CONFIG", {}):
            # kafka-python 3 waits for the first broker inside the constructor: keep one attempt short
            extra["bootstrap_timeout_ms"] = int(max(1.0, min(5.0, max_wait_s / 3)) * 1000)
        self.producer = _retry_connect(what, lambda: KafkaProducer(
            acks="all", retries=10, linger_ms=20, max_in_flight_requests_per_connection=1,
            request_timeout_ms=30_000, **extra, **client_config(settings)), max_wait_s, wait,
            where=settings.kafka_bootstrap_servers)
        self._futures: list[Any] = []
        self.what = what

    def _send(self, topic: str, value: bytes, key: bytes | None, headers: list[tuple[str, bytes]]) -> None:
        self._futures.append(self.producer.send(topic, value=value, key=key, headers=headers))

    def flush(self) -> None:
        """Block until every message sent since the last flush is acknowledged; raise BusError otherwise."""
        futures, self._futures = self._futures, []
        try:
            self.producer.flush(timeout=60)
        except KafkaError as e:
            raise BusError(f"{self.what}: flush failed: {e}") from e
        failed = [f.exception for f in futures if f.failed()]
        not_done = [f for f in futures if not f.is_done]
        if failed or not_done:
            raise BusError(f"{self.what}: {len(failed)} message(s) failed, {len(not_done)} unacknowledged"
                           + (f": {failed[0]}" if failed else ""))

    def close(self) -> None:
        self.producer.close(timeout=10)


class AlertsToTopic:
    """Produces alerts (new ones and counter updates) to the alerts topic, keyed by alert id; mixed
    into each client's producer (``_send``), so both clients write the same messages."""

    topic: str
    _send: Any

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings, "alert producer")  # type: ignore[call-arg]
        self.topic = settings.kafka_alerts_topic

    def emit(self, alert: Alert, new: bool) -> None:
        self._send(self.topic, orjson.dumps({**alert.to_doc(), "new": new}), alert.id.encode(), [])


class DeadLettersToTopic:
    """Produces dead letters with the raw bytes, the reason and where the record came from; mixed
    into each client's producer like ``AlertsToTopic``."""

    topic: str
    _send: Any

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings, "dead-letter producer")  # type: ignore[call-arg]
        self.topic = settings.kafka_dead_letter_topic

    def emit_dead_letter(self, d: DeadLetter) -> None:
        doc = d.to_doc()
        doc.pop("raw_text", None)
        self._send(self.topic, orjson.dumps(doc), d.origin.encode(), [("reason", d.reason.encode()[:1000])])


class KafkaAlertSink(AlertsToTopic, _Producer):
    """Alerts to the alerts topic through kafka-python."""


class KafkaDeadLetterSink(DeadLettersToTopic, _Producer):
    """Dead letters to their topic through kafka-python."""


def record_headers(rec: RawRecord) -> list[tuple[str, bytes]]:
    """The headers ``ship`` puts on a raw record, whichever client sends it (``record_from_kafka``
    reads them back): origin, source, the event id's stream and occurrence, log type and year."""
    headers = [(H_ORIGIN, rec.origin.encode()), (H_SOURCE, rec.source.encode()),
               (H_STREAM, rec.stream.encode()), (H_OCCURRENCE, str(rec.occurrence).encode())]
    if rec.log_type:
        headers.append((H_LOG_TYPE, rec.log_type.encode()))
    if rec.year:
        headers.append((H_YEAR, str(rec.year).encode()))
    return headers


def ship_with(producer: Any, records: Iterable[RawRecord], topic: str, key_of: Any = None) -> int:
    """The ship loop of both clients: send with ``record_headers``, flush every 10,000 and at the end
    (``producer.flush`` raises BusError unless the broker acknowledged all), close."""
    n = 0
    try:
        for rec in records:
            producer._send(topic, rec.data, key_of(rec) if key_of else None, record_headers(rec))
            n += 1
            if n % 10_000 == 0:
                producer.flush()
        producer.flush()
    finally:
        producer.close()
    return n


def ship(settings: Settings, records: Iterable[RawRecord], topic: str, key_of: Any = None, *,
         connect_timeout_s: float | None = None, wait: Any = None) -> int:
    """Send raw records to ``topic`` with their log type, origin, source, stream and occurrence as headers.

    ``key_of(record) -> bytes | None`` keys each message (so one key's events meet on one
    consumer); returns the number of messages acknowledged by the broker. While no broker
    answers, connecting is retried (``wait`` shows it) and BusError is raised after
    ``connect_timeout_s``.
    """
    return ship_with(_Producer(settings, "shipper", max_wait_s=connect_timeout_s, wait=wait), records, topic, key_of)


# --- scale-out: the hand-over topics between the stages (access_audit.handover) ---------------

def ensure_topics(settings: Settings, topics: list[str], partitions: int, replication: int = 1,
                  *, connect_timeout_s: float | None = None) -> dict[str, int]:
    """Create the hand-over topics that do not exist; returns every topic's partition count
    (an existing topic keeps its own count: keys are placed by the count it has)."""
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = _retry_connect("admin client", lambda: KafkaAdminClient(**client_config(settings)), connect_timeout_s,
                           where=settings.kafka_bootstrap_servers)
    try:
        missing = [t for t in topics if t not in set(admin.list_topics())]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # another worker created it first
                admin.create_topics([NewTopic(t, partitions, replication) for t in missing])
        for _ in range(50):
            counts = {d["topic"]: len(d.get("partitions") or []) for d in admin.describe_topics(topics)}
            if all(counts.get(t) for t in topics):
                return counts
            time.sleep(0.2)
        raise BusError(f"hand-over topics not ready: {sorted(t for t in topics if not counts.get(t))}")
    finally:
        admin.close()


class KafkaHandoverProducer(_Producer):
    """Stage 1's producer to the hand-over topics, on the partition ``handover.partition_of`` chose."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings, "hand-over producer")

    def send(self, topic: str, partition: int, key: bytes, value: bytes) -> None:
        self._futures.append(self.producer.send(topic, value=value, key=key, partition=partition))


class KafkaHandoverSource:
    """Stage 2's consumer: the hand-over topics, in group ``<group>.by``, with a rebalance listener
    that restores a partition's state (and seeks to its checkpointed offset) when it is assigned
    and writes it before it is revoked."""

    def __init__(self, settings: Settings, topics: list[str], group_id: str, on_assign: Any, on_revoke: Any) -> None:
        from kafka import ConsumerRebalanceListener, TopicPartition

        self._tp = TopicPartition
        self.consumer = _retry_connect("hand-over consumer", lambda: KafkaConsumer(
            group_id=group_id, enable_auto_commit=False, auto_offset_reset="earliest",
            max_poll_records=settings.batch_size, max_poll_interval_ms=600_000, session_timeout_ms=10_000,
            heartbeat_interval_ms=2_000, reconnect_backoff_max_ms=10_000, **client_config(settings)),
            where=settings.kafka_bootstrap_servers)
        consumer = self.consumer

        class Listener(ConsumerRebalanceListener):  # type: ignore[misc]
            def on_partitions_revoked(self, revoked: Any) -> None:
                on_revoke([(tp.topic, tp.partition) for tp in revoked])

            def on_partitions_assigned(self, assigned: Any) -> None:
                seek = on_assign([(tp.topic, tp.partition) for tp in assigned])
                for (t, p), off in seek.items():
                    consumer.seek(TopicPartition(t, p), off)

        self.consumer.subscribe(topics=list(topics), listener=Listener())

    def poll(self, max_records: int = 1000, timeout_s: float = 1.0) -> list[Handed]:
        return [Handed(m.topic, m.partition, m.offset, m.value or b"")
                for m in poll_messages(self.consumer, max_records, timeout_s, "hand-over ")]

    def commit(self, offsets: dict[tuple[str, int], int]) -> None:
        from kafka.structs import OffsetAndMetadata

        if not offsets:
            return
        extra = (-1,) if len(OffsetAndMetadata._fields) > 2 else ()
        try:
            self.consumer.commit({self._tp(t, p): OffsetAndMetadata(o, "", *extra) for (t, p), o in offsets.items()})
        except KafkaError as e:  # the checkpointed offset is what counts; the commit only shows lag
            log.warning("Kafka offset commit (hand-over) failed (%s)", e)

    def lag(self) -> dict[tuple[str, int], int]:
        parts = list(self.consumer.assignment())
        return cached_lag(self.consumer, parts) if parts else {}

    def close(self) -> None:
        self.consumer.close(autocommit=False)


def group_lag(settings: Settings, group_id: str, topics: list[str]) -> dict[tuple[str, int], tuple[int, int]]:
    """(committed offset, lag) of every partition of ``topics`` for a consumer group (``status``;
    a partition the group never committed shows offset -1 and the whole partition as lag)."""
    from kafka import TopicPartition
    from kafka.admin import KafkaAdminClient

    admin = _retry_connect("admin client", lambda: KafkaAdminClient(**client_config(settings)), 10.0,
                           where=settings.kafka_bootstrap_servers)
    consumer = _retry_connect("consumer", lambda: KafkaConsumer(**client_config(settings)), 10.0,
                              where=settings.kafka_bootstrap_servers)
    try:
        committed = {(tp.topic, tp.partition): om.offset
                     for tp, om in admin.list_consumer_group_offsets(group_id).items()}
        parts = [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or [])]
        ends = consumer.end_offsets(parts) if parts else {}
        return {(tp.topic, tp.partition): (committed.get((tp.topic, tp.partition), -1),
                                           ends[tp] - max(0, committed.get((tp.topic, tp.partition), 0)))
                for tp in parts}
    finally:
        consumer.close()
        admin.close()


def dead_letter_from_kafka(value: bytes) -> dict[str, Any]:
    """Decode a dead-letter message (for tools and tests): the raw bytes are base64 in the JSON."""
    doc: dict[str, Any] = orjson.loads(value)
    doc["raw"] = base64.b64decode(doc.pop("raw_b64"))
    return doc
