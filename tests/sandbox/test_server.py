"""The sandbox's HTTPS server answers without Nagle's wait (TCP_NODELAY on each connection).

Without it every keep-alive response waited for the client's delayed ACK (40 ms on
Linux) between the header and body sends, so every sandbox call cost 40 ms more than a
real router's and benchmarks measured the sandbox, not the client.
"""

from __future__ import annotations

import socket
import ssl

from cf_sandbox import Landscape


def test_every_accepted_connection_sends_without_delay() -> None:
    with Landscape(seed=False) as ls:
        server = ls._cc
        host, port = server.server_address[:2]
        context = ssl.create_default_context(cadata=ls.ca_pem)
        with (
            socket.create_connection((host, port)) as raw,
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            tls.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert tls.recv(12).startswith(b"HTTP/1.1 200")
            with server._guard:
                (conn,) = server._conns
            assert conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


def test_a_call_round_trip_on_loopback_is_under_5_ms() -> None:
    """The median of 50 keep-alive calls (one warm-up first): the sandbox adds no stall
    of its own, so what a benchmark measures is the client and the latency it is given."""
    import statistics
    import time

    from cf_sandbox.memtls import client_context, session

    with Landscape(seed=False) as ls:
        http = session(client_context(ls.ca_pem))
        with http:
            http.get(ls.api_url + "/v3/info", timeout=5).raise_for_status()
            took = []
            for _ in range(50):
                started = time.perf_counter()
                http.get(ls.api_url + "/v3/info", timeout=5).raise_for_status()
                took.append(time.perf_counter() - started)
    median = statistics.median(took)
    assert median < 0.005, f"median round trip {median * 1000:.1f} ms"
