"""The worker's probe endpoint (access_audit.health): liveness always, readiness from real checks."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

from access_audit.health import serve_health
from access_audit.store.query import Query
from access_audit.store.sqlite import SqliteStore


def get(port: int, path: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_readiness_follows_the_store(tmp_path: Path):
    store = SqliteStore(tmp_path / "events.db")
    server = serve_health("127.0.0.1", 0, {"store": lambda: store.count(Query(limit=1)) is not None,
                                            "broker": lambda: True})
    port = server.server_address[1]
    try:
        assert get(port, "/healthz") == (200, {"status": "ok"})
        assert get(port, "/readyz") == (200, {"status": "ready", "checks": ["broker", "store"]})
        store.close()  # the store goes away: not ready, with the reason
        code, doc = get(port, "/readyz")
        assert code == 503 and list(doc["failed"]) == ["store"] and doc["failed"]["store"]
        assert get(port, "/nope")[0] == 404
    finally:
        server.shutdown()
