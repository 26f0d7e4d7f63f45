"""HTTPS servers on loopback: threaded, keep-alive, stoppable without leaking threads.

Each connection is wrapped in TLS by the accept loop but shakes hands in its own thread,
so a slow or hostile client cannot stall the others. `stop()` closes the listening
socket, shuts down every open connection (keep-alive readers wake up) and joins all
handler threads: a test that starts and stops many landscapes leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .web import DROP, Request, Response

log = logging.getLogger(__name__)

# Idle keep-alive connections are closed after this long (CC's gorouter idles at 90 s).
_IDLE_TIMEOUT_S = 30.0
_JOIN_TIMEOUT_S = 5.0
# How long a refused handshake waits for the client to close (nginx's lingering_time is 30 s).
_LINGER_S = 2.0

App = Callable[[Request], Response]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: TlsServer

    def setup(self) -> None:
        conn: ssl.SSLSocket = self.request
        conn.settimeout(_IDLE_TIMEOUT_S)
        try:
            conn.do_handshake()
        except OSError:
            _linger(conn)
            raise
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.server.name, format % args)

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        peer: bytes | None = None
        if self.server.client_certs:
            peer = self.connection.getpeercert(binary_form=True)
        req = Request.parse(
            self.server.name,
            self.command,
            self.path,
            headers=self.headers,
            body=body,
            base_url=self.server.url,
            peer_cert_der=peer,
        )
        resp = self.server.app(req)
        if resp is DROP:
            self.close_connection = True
            _shutdown(self.connection)
            return
        payload, content_type = resp.encode()
        self.send_response(resp.status)
        if content_type:
            self.send_header("Content-Type", content_type)
        for name, value in resp.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def _linger(conn: ssl.SSLSocket) -> None:
    """After a refused handshake: let the client read the alert before the socket closes.

    In TLS 1.3 the client sends its request right after its Finished, before the server
    has judged its certificate. Closing with that request unread makes the kernel answer
    with a reset, which can reach the client before it reads the alert, so it sees a bare
    EOF instead of `UNKNOWN_CA`. Routers avoid this by a lingering close (nginx's
    `lingering_close`, https://nginx.org/en/docs/http/ngx_http_core_module.html#lingering_close):
    stop writing, read and discard until the client closes, for a short while.
    """
    with contextlib.suppress(OSError):
        conn.shutdown(socket.SHUT_WR)  # also drops the TLS layer: recv reads raw bytes
        conn.settimeout(_LINGER_S)
        deadline = time.monotonic() + _LINGER_S
        while time.monotonic() < deadline and conn.recv(65536):
            pass


class TlsServer(ThreadingHTTPServer):
    """One HTTPS listener on 127.0.0.1 serving `app`."""

    daemon_threads = True
    block_on_close = False

    def __init__(
        self,
        name: str,
        ctx: ssl.SSLContext,
        app: App,
        *,
        port: int = 0,
        client_certs: bool = False,
    ) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.name = name
        self.ctx = ctx
        self.app = app
        self.client_certs = client_certs
        self.url = f"https://127.0.0.1:{self.server_address[1]}"
        self._conns: set[socket.socket] = set()
        self._workers: set[threading.Thread] = set()
        self._guard = threading.Lock()
        self._loop: threading.Thread | None = None
        self._closing = False

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = self.socket.accept()
        # http.server writes the headers and the body in two sends; with Nagle's algorithm
        # the body then waits for the client's delayed ACK (40 ms on Linux) on every
        # keep-alive response. Real routers (gorouter, nginx) send without that wait.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self.ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

    def process_request(self, request: Any, client_address: Any) -> None:
        worker = threading.Thread(
            target=self._work, args=(request, client_address), name=f"{self.name}-conn"
        )
        worker.daemon = True
        with self._guard:
            if self._closing:
                self.shutdown_request(request)
                return
            self._conns.add(request)
            self._workers.add(worker)
        worker.start()

    def _work(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:  # one bad connection must not matter
            log.debug("%s: connection from %s ended with an error", self.name, client_address)
        finally:
            self.shutdown_request(request)
            with self._guard:
                self._conns.discard(request)
                self._workers.discard(threading.current_thread())

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("%s: error on connection from %s", self.name, client_address, exc_info=True)

    def start(self) -> None:
        """Serve in a background thread."""
        self._loop = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, name=f"{self.name}-accept"
        )
        self._loop.daemon = True
        self._loop.start()

    def stop(self) -> None:
        """Stop accepting, close every connection, join every thread."""
        if self._loop is not None:
            self.shutdown()
            self._loop.join(_JOIN_TIMEOUT_S)
        with self._guard:
            self._closing = True
            conns, workers = list(self._conns), list(self._workers)
        self.server_close()
        for conn in conns:
            _shutdown(conn)
        for worker in workers:
            worker.join(_JOIN_TIMEOUT_S)
