"""A forwarding HTTP proxy on loopback that can misbehave on purpose: answer 5xx, hang, cut connections, slow down.

It stands between pvc and the moto server, so fault tests exercise the real client against a real server with
real failures in between (nothing is mocked in pvc)."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

__all__ = ["FaultProxy"]


class FaultProxy:
    """`with FaultProxy(upstream) as proxy:` — point clients at `proxy.url`; set `proxy.fail`, `proxy.delay`...

    fail       number of requests still to answer with `status` (then requests go through again)
    fail_all   answer every request with `status`
    hang       seconds to wait before answering (a timeout, seen from the client)
    delay      seconds to wait before forwarding each request whose method is in `slow_methods`
    cut        close the connection without an answer
    strip      request headers to drop (e.g. "if-none-match": a server without conditional writes)
    """

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname, parts.port)
        self.fail = 0
        self.fail_all = False
        self.status = 503
        self.hang = 0.0
        self.delay = 0.0
        self.slow_methods = ("PUT",)
        self.cut = False
        self.strip: set[str] = set()
        self.requests: list[tuple[str, str, int]] = []  # method, path, status
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def _any(self) -> None:
                proxy._handle(self)

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _any

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        with self._lock:
            failing = self.fail_all or self.fail > 0
            if self.fail > 0:
                self.fail -= 1
        if self.cut:
            self._log(h, 0)
            h.connection.shutdown(socket.SHUT_RDWR)
            h.close_connection = True
            return
        if self.hang:
            time.sleep(self.hang)
        if failing:
            payload = f"<Error><Code>ServiceUnavailable</Code><Message>injected {self.status}</Message></Error>".encode()
            self._answer(h, self.status, {"Content-Type": "application/xml"}, payload)
            return
        if self.delay and h.command in self.slow_methods:
            time.sleep(self.delay)
        conn = http.client.HTTPConnection(*self.upstream, timeout=60)
        dropped = {"connection", "proxy-connection"} | self.strip
        headers = {k: v for k, v in h.headers.items() if k.lower() not in dropped}
        conn.request(h.command, h.path, body=body or None, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        self._answer(h, resp.status, {k: v for k, v in resp.getheaders() if k.lower() not in
                                      ("transfer-encoding", "connection", "content-length")}, data)
        conn.close()

    def _answer(self, h: BaseHTTPRequestHandler, status: int, headers: dict, data: bytes) -> None:
        self._log(h, status)
        h.send_response(status)
        for k, v in headers.items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(data)

    def _log(self, h: BaseHTTPRequestHandler, status: int) -> None:
        with self._lock:
            self.requests.append((h.command, h.path, status))
