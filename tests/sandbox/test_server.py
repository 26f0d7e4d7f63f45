"""The sandbox's HTTPS server behaves like a router: no Nagle stall, alerts that arrive.

Without TCP_NODELAY every keep-alive response waited for the client's delayed ACK (40 ms
on Linux) between the header and body sends, so every sandbox call cost 40 ms more than a
real router's and benchmarks measured the sandbox, not the client. Without a lingering
close a refused client certificate reached the client as a reset now and then.
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


def _leaf_only(chain_pem: str) -> str:
    end = "-----END CERTIFICATE-----"
    return chain_pem.split(end, maxsplit=1)[0] + end + "\n"


def test_a_refused_client_certificate_reaches_the_client_as_the_alert() -> None:
    """CPI's endpoint refusing a chain without its intermediate: the client must read
    UNKNOWN_CA, not a reset. In TLS 1.3 the client has sent its request before the server
    judged its certificate; the pause makes the server close before the client reads,
    which without a lingering close turned the alert into a bare EOF now and then (and so
    a verdict into something the engine retries)."""
    import time

    from cf_sandbox.memtls import client_context, load_chain

    with Landscape(seed=False) as ls:
        minted = ls.mint(cn="no-intermediate", days=30)
        context = client_context(ls.ca_pem)
        load_chain(context, _leaf_only(minted.chain_pem), minted.key_pem)
        host, port = ls._cpi.server_address[:2]
        seen = []
        for _ in range(20):
            with (
                socket.create_connection((host, port)) as raw,
                context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
            ):
                tls.sendall(b"POST /http/ping HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx")
                time.sleep(0.02)
                try:
                    tls.recv(64)
                    seen.append("answered")
                except ssl.SSLError as error:
                    seen.append(str(error.reason))
                except OSError as error:
                    seen.append(type(error).__name__)
    assert set(seen) == {"TLSV1_ALERT_UNKNOWN_CA"}, seen
