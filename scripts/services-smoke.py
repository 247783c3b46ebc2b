#!/usr/bin/env python3
"""Smoke test for the services started by scripts/services.

Checks that a real Kafka broker and a real Elasticsearch node answer the Python
clients the project uses:

  kafka-python:      create a 3-partition topic, produce, consume in a group, commit
  elasticsearch-py:  index template, bulk (op_type=create), search, count

Usage:
  python3 scripts/services-smoke.py [kafka|elasticsearch|all]
  python3 scripts/services-smoke.py elasticsearch --write-only   # index docs, keep them
  python3 scripts/services-smoke.py elasticsearch --check-only   # docs from --write-only still there?

Reads ACCESS_AUDIT_KAFKA_BOOTSTRAP_SERVERS / ACCESS_AUDIT_ELASTICSEARCH_URL
(see `scripts/services env`). Needs: pip install kafka-python 'elasticsearch>=8.19,<9'.
"""
import os
import sys
import time
import uuid

KAFKA = os.environ.get("ACCESS_AUDIT_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092")
ES_URL = os.environ.get("ACCESS_AUDIT_ELASTICSEARCH_URL", "http://127.0.0.1:19200")
PERSIST_INDEX = "services-smoke-persist"
N_DOCS = 50


def log(msg):
    print(f"[smoke] {msg}", flush=True)


def smoke_kafka():
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import NewTopic

    t0 = time.monotonic()
    topic = f"smoke-{uuid.uuid4().hex[:8]}"
    group = f"smoke-group-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=KAFKA, client_id="smoke-admin")
    admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
    log(f"kafka: created topic {topic} with 3 partitions")

    producer = KafkaProducer(bootstrap_servers=KAFKA, acks="all", linger_ms=5)
    n = 30
    for i in range(n):
        producer.send(topic, key=str(i % 7).encode(), value=f"event-{i}".encode())
    producer.flush()
    producer.close()
    log(f"kafka: produced {n} records")

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=KAFKA,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=20000,
    )
    seen = []
    for msg in consumer:
        seen.append(msg)
        if len(seen) == n:
            break
    assert len(seen) == n, f"consumed {len(seen)} of {n}"
    parts = {m.partition for m in seen}
    assert len(parts) > 1, f"all records landed in partitions {parts}"
    consumer.commit()
    committed = {p: consumer.committed(TopicPartition(topic, p)) for p in range(3)}
    consumer.close()
    assert sum(v or 0 for v in committed.values()) == n, committed
    log(f"kafka: consumed {n} records from partitions {sorted(parts)} in group {group}, committed {committed}")

    # A second consumer in the same group sees the committed offsets: nothing left.
    c2 = KafkaConsumer(topic, bootstrap_servers=KAFKA, group_id=group,
                       auto_offset_reset="earliest", consumer_timeout_ms=3000)
    left = list(c2)
    c2.close()
    assert not left, f"{len(left)} records re-delivered after commit"
    # kafka-python 3.x: list_groups() -> [{"group_id": ...}];
    # 2.x: list_consumer_groups() -> [(group_id, protocol_type)].
    if hasattr(admin, "list_groups"):
        groups = [g["group_id"] for g in admin.list_groups()]
    else:
        groups = [g[0] for g in admin.list_consumer_groups()]
    assert group in groups, groups
    admin.delete_topics([topic])
    admin.close()
    log(f"kafka: OK ({time.monotonic() - t0:.1f}s)")


def es_client():
    import json
    import urllib.request

    import elasticsearch
    from elasticsearch import Elasticsearch

    # The client sends "compatible-with=<client major>"; the server only
    # accepts its own major (and the one before), so the majors must match.
    with urllib.request.urlopen(f"{ES_URL}/_nodes/_local?filter_path=nodes.*.version", timeout=10) as r:
        server = next(iter(json.load(r)["nodes"].values()))["version"]
    client = elasticsearch.__versionstr__
    if client.split(".")[0] != server.split(".")[0]:
        sys.exit(f"elasticsearch-py {client} does not match server {server}: "
                 f"pip install 'elasticsearch>={server.rsplit('.', 1)[0]},<{int(server.split('.')[0]) + 1}'")
    log(f"es: server {server}, elasticsearch-py {client}")
    return Elasticsearch(ES_URL, request_timeout=30)


def es_write(es, index, n=N_DOCS):
    from elasticsearch import helpers

    es.indices.put_index_template(
        name="services-smoke",
        index_patterns=["services-smoke-*"],
        template={
            "settings": {"number_of_shards": 1, "number_of_replicas": 0},
            "mappings": {
                "properties": {
                    "user": {"type": "keyword"},
                    "action": {"type": "keyword"},
                    "message": {"type": "text"},
                    "@timestamp": {"type": "date"},
                }
            },
        },
        priority=100,
    )
    actions = [
        {
            "_op_type": "create",
            "_index": index,
            "_id": f"doc-{i}",
            "_source": {
                "user": f"user-{i % 5}",
                "action": "login" if i % 2 else "read",
                "message": f"user {i % 5} did something number {i}",
                "@timestamp": f"2026-01-01T00:00:{i % 60:02d}Z",
            },
        }
        for i in range(n)
    ]
    ok, errors = helpers.bulk(es, actions, refresh="wait_for", raise_on_error=False)
    assert ok == n and not errors, (ok, errors[:3])
    # op_type=create on an existing id must conflict (409).
    ok2, errors2 = helpers.bulk(es, actions[:1], raise_on_error=False)
    assert ok2 == 0 and errors2 and errors2[0]["create"]["status"] == 409, errors2
    mapping = es.indices.get_mapping(index=index)
    assert mapping[index]["mappings"]["properties"]["user"]["type"] == "keyword", mapping
    log(f"es: template applied, bulk-created {n} docs in {index} (duplicate create -> 409)")


def es_check(es, index, n=N_DOCS):
    es.indices.refresh(index=index)
    count = es.count(index=index)["count"]
    assert count == n, f"count {count} != {n}"
    res = es.search(index=index, query={"term": {"user": "user-3"}}, size=100,
                    aggs={"by_action": {"terms": {"field": "action"}}})
    hits = res["hits"]["total"]["value"]
    assert hits == n // 5, res["hits"]["total"]
    buckets = {b["key"]: b["doc_count"] for b in res["aggregations"]["by_action"]["buckets"]}
    res2 = es.search(index=index, query={"match": {"message": "number"}}, size=0)
    assert res2["hits"]["total"]["value"] == n, res2["hits"]["total"]
    log(f"es: count={count}, term search hits={hits}, agg={buckets}, match hits={res2['hits']['total']['value']}")


def smoke_es(mode):
    t0 = time.monotonic()
    es = es_client()
    health = es.cluster.health(wait_for_status="yellow", timeout="30s")
    log(f"es: cluster {health['cluster_name']} status {health['status']}")
    if mode == "write-only":
        if es.indices.exists(index=PERSIST_INDEX):
            es.indices.delete(index=PERSIST_INDEX)
        es_write(es, PERSIST_INDEX)
        es_check(es, PERSIST_INDEX)
    elif mode == "check-only":
        es_check(es, PERSIST_INDEX)
        es.indices.delete(index=PERSIST_INDEX)
        log(f"es: {PERSIST_INDEX} survived the restart; deleted it")
    else:
        index = f"services-smoke-{uuid.uuid4().hex[:8]}"
        es_write(es, index)
        es_check(es, index)
        es.indices.delete(index=index)
        es.indices.delete_index_template(name="services-smoke")
        assert not es.indices.exists(index=index)
        log(f"es: deleted {index} and the template")
    log(f"es: OK ({time.monotonic() - t0:.1f}s)")


def main(argv):
    which = "all"
    mode = "full"
    for a in argv:
        if a in ("kafka", "elasticsearch", "all"):
            which = a
        elif a in ("--write-only", "--check-only"):
            mode = a[2:]
        else:
            sys.exit(__doc__)
    if which in ("kafka", "all"):
        smoke_kafka()
    if which in ("elasticsearch", "all"):
        smoke_es(mode)
    log("all OK")


if __name__ == "__main__":
    main(sys.argv[1:])
