"""A TCP fault proxy on loopback, in front of a real server (Elasticsearch, Slack's fake...).

Modes, switched at any time (switching drops the open connections, so clients reconnect into
the new mode):

- ``pass``: bytes flow both ways, optionally with ``delay_s`` before each chunk;
- ``refuse``: the port is closed (connection refused);
- ``reset``: connections are accepted and reset at once;
- ``http429``: every HTTP request gets ``429 Too Many Requests`` with Elasticsearch's rejection
  body (bulk rejections), on keep-alive connections too;
- ``slow_answer``: every HTTP request is passed on at once, and the answer to one whose request
  line contains ``match`` (``/_bulk``) is held ``delay_s`` before it is sent back: the server did
  the work, the client times out first (the answer lost in flight).
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time

REJECTED = (b'{"error":{"root_cause":[{"type":"es_rejected_execution_exception","reason":"rejected by the fault '
            b'proxy"}],"type":"es_rejected_execution_exception","reason":"rejected by the fault proxy"},"status":429}')


class FaultProxy:
    def __init__(self, upstream: tuple[str, int], port: int = 0) -> None:
        self.upstream = upstream
        self.mode = "pass"
        self.delay_s = 0.0
        self.match = b""
        self.requests_rejected = 0
        self.answers_held = 0
        self._port = port
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._stop = threading.Event()

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    def start(self) -> FaultProxy:
        self._listen()
        return self

    def _listen(self) -> None:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self._port))
        self._port = s.getsockname()[1]
        s.listen(128)
        self._listener = s
        threading.Thread(target=self._accept, args=(s,), daemon=True).start()

    def set(self, mode: str, delay_s: float = 0.0, match: bytes = b"") -> None:
        assert mode in ("pass", "refuse", "reset", "http429", "slow_answer")
        with self._lock:
            prev, self.mode, self.delay_s, self.match = self.mode, mode, delay_s, match
            conns, self._conns = self._conns, set()
        for c in conns:
            _abort(c)
        if mode == "refuse" and self._listener is not None:
            self._listener.close()
            self._listener = None
        elif prev == "refuse" and mode != "refuse":
            self._listen()

    def stop(self) -> None:
        self._stop.set()
        self.set("refuse")

    def _accept(self, s: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                c, _ = s.accept()
            except OSError:
                return
            with self._lock:
                mode = self.mode
                self._conns.add(c)
            if mode == "reset":
                _abort(c)
            elif mode == "http429":
                threading.Thread(target=self._reject, args=(c,), daemon=True).start()
            elif mode == "slow_answer":
                threading.Thread(target=self._slow, args=(c,), daemon=True).start()
            else:
                threading.Thread(target=self._pipe, args=(c,), daemon=True).start()

    def _reject(self, c: socket.socket) -> None:
        buf = b""
        with contextlib.suppress(OSError):
            while True:
                while b"\r\n\r\n" not in buf:
                    chunk = c.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                head, _, rest = buf.partition(b"\r\n\r\n")
                n = 0
                for line in head.split(b"\r\n")[1:]:
                    k, _, v = line.partition(b":")
                    if k.strip().lower() == b"content-length":
                        n = int(v.strip())
                while len(rest) < n:
                    chunk = c.recv(65536)
                    if not chunk:
                        return
                    rest += chunk
                buf = rest[n:]
                self.requests_rejected += 1
                c.sendall(b"HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\n"
                          b"x-elastic-product: Elasticsearch\r\ncontent-length: " + str(len(REJECTED)).encode()
                          + b"\r\n\r\n" + REJECTED)

    def _slow(self, c: socket.socket) -> None:
        try:
            u = socket.create_connection(self.upstream, timeout=30)
        except OSError:
            _abort(c)
            return
        with self._lock:
            self._conns.add(u)
        cbuf, ubuf = b"", b""
        with contextlib.suppress(OSError):
            while True:
                req, cbuf = _http_message(c, cbuf)
                if req is None:
                    return
                u.sendall(req)
                resp, ubuf = _http_message(u, ubuf)
                if resp is None:
                    return
                if self.match and self.match in req.split(b"\r\n", 1)[0]:
                    self.answers_held += 1
                    time.sleep(self.delay_s)
                c.sendall(resp)
        _abort(c)
        _abort(u)

    def _pipe(self, c: socket.socket) -> None:
        try:
            u = socket.create_connection(self.upstream, timeout=10)
        except OSError:
            _abort(c)
            return
        u.settimeout(None)
        with self._lock:
            self._conns.add(u)

        def one_way(a: socket.socket, b: socket.socket) -> None:
            with contextlib.suppress(OSError):
                while True:
                    data = a.recv(65536)
                    if not data or self.mode != "pass":  # a connection that outlived a switch
                        break
                    if self.delay_s:
                        time.sleep(self.delay_s)
                    b.sendall(data)
            for x in (a, b):
                if self.mode != "pass":
                    _abort(x)
                else:
                    with contextlib.suppress(OSError):
                        x.shutdown(socket.SHUT_RDWR)

        threading.Thread(target=one_way, args=(u, c), daemon=True).start()
        one_way(c, u)


def _http_message(s: socket.socket, buf: bytes) -> tuple[bytes | None, bytes]:
    """One HTTP/1.1 message (head and a Content-Length body) read from ``s``; None at the end."""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            return None, buf
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    n = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            n = int(v.strip())
    while len(rest) < n:
        chunk = s.recv(65536)
        if not chunk:
            return None, buf
        rest += chunk
    return head + b"\r\n\r\n" + rest[:n], rest[n:]


def _abort(s: socket.socket) -> None:
    with contextlib.suppress(OSError):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST, not FIN
    with contextlib.suppress(OSError):
        s.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked in recv(); close() alone would not
    with contextlib.suppress(OSError):
        s.close()
