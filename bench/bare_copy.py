"""The bare copy: what a user would write in an afternoon to move a topic into Elasticsearch.

A kafka-python consumer with its default settings (plus ``max_poll_records=1000`` and manual
commits), ``json.loads`` per message, ``elasticsearch.helpers.streaming_bulk`` with
``chunk_size=1000``, and a commit after each bulk. The one change to a default: the
Elasticsearch client's request timeout is 60 s instead of 10 s (the first bulk into a new index
builds its dynamic mapping and timed out on a loaded machine). No parsing into ECS, no detection. Kept this
simple on purpose: it is the yardstick ``access-audit worker`` is compared with in bench/run.py.

    python bench/bare_copy.py --topic T --count N --es http://127.0.0.1:19200 --index I --group G

Prints one JSON line: messages, indexed, errors (e.g. mapping conflicts), seconds from the first
message to the last commit, and the rate.
"""

from __future__ import annotations

import argparse
import json
import time

from elasticsearch import Elasticsearch
from elasticsearch.helpers import streaming_bulk
from kafka import KafkaConsumer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--count", type=int, required=True, help="stop after this many messages")
    ap.add_argument("--bootstrap", default="127.0.0.1:19092")
    ap.add_argument("--es", default="http://127.0.0.1:19200")
    ap.add_argument("--index", required=True)
    ap.add_argument("--group", required=True)
    args = ap.parse_args()

    consumer = KafkaConsumer(args.topic, bootstrap_servers=args.bootstrap, group_id=args.group,
                             auto_offset_reset="earliest", enable_auto_commit=False, max_poll_records=1000)
    es = Elasticsearch(args.es, request_timeout=60)  # the default 10 s times out on a loaded 2-core machine
    seen = indexed = errors = 0
    first = None
    while seen < args.count:
        batch = consumer.poll(timeout_ms=1000)
        docs = [json.loads(m.value) for msgs in batch.values() for m in msgs]
        if not docs:
            continue
        if first is None:
            first = time.perf_counter()
        seen += len(docs)
        for ok, _item in streaming_bulk(es, ({"_index": args.index, "_source": d} for d in docs), chunk_size=1000,
                                        raise_on_error=False, raise_on_exception=False):
            if ok:
                indexed += 1
            else:
                errors += 1
        consumer.commit()
    seconds = time.perf_counter() - (first or time.perf_counter())
    consumer.close()
    es.close()
    print(json.dumps({"messages": seen, "indexed": indexed, "errors": errors, "seconds": seconds,
                      "per_s": seen / seconds if seconds else None}))


if __name__ == "__main__":
    main()
