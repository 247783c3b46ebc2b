"""A tiny HTTP endpoint for the liveness and readiness probes of a process without the API (the worker).

``/healthz`` answers 200 while the process runs; ``/readyz`` answers 200 when every check passes
and 503 with the failing checks otherwise (a check is a callable that raises or returns False);
``/metrics`` the worker's counters for Prometheus.
Stdlib only, one daemon thread; it never touches the pipeline's own threads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson

Check = Callable[[], object]


def serve_health(host: str, port: int, checks: dict[str, Check],
                 metrics: Callable[[], str] | None = None) -> ThreadingHTTPServer:
    """Start the probe server in a daemon thread; returns it (``shutdown()`` to stop). With
    ``metrics``, ``/metrics`` answers its text (Prometheus exposition format 0.0.4)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/healthz":
                self._reply(200, {"status": "ok"})
            elif self.path == "/readyz":
                failed: dict[str, str] = {}
                for name, check in checks.items():
                    try:
                        if check() is False:
                            failed[name] = "not ready"
                    except Exception as e:  # a probe reports, it never raises
                        failed[name] = f"{type(e).__name__}: {e}"[:300]
                body = {"status": "unavailable", "failed": failed} if failed else {"status": "ready"}
                self._reply(503 if failed else 200, {**body, "checks": sorted(checks)})
            elif self.path == "/metrics" and metrics is not None:
                try:
                    data, code = metrics().encode(), 200
                except Exception as e:  # a scrape reports, it never raises
                    data, code = f"# metrics unavailable: {type(e).__name__}: {e}\n".encode(), 500
                self.send_response(code)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            else:
                paths = ["/healthz", "/readyz", *(["/metrics"] if metrics is not None else [])]
                self._reply(404, {"status": "not found", "paths": paths})

        def _reply(self, code: int, doc: dict[str, object]) -> None:
            data = orjson.dumps(doc)
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            return None  # probes every few seconds would drown the worker's log

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="health", daemon=True).start()
    return server
