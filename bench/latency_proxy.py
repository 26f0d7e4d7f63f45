"""A loopback TCP relay that adds a round-trip time: the network between a runner and CC.

Every byte is delivered half an RTT after it was read, in each direction, in order; a new
connection's first bytes wait one RTT more (the TCP handshake a real connection pays
before TLS starts). It binds 127.0.0.1 only and relays only to a loopback upstream;
connections and buffered bytes are bounded (`MAX_CONNECTIONS`, `MAX_BUFFER`), and a full
buffer stops reading, as a full TCP window does. TLS passes through untouched, so the
client verifies the sandbox's own certificate (issued for 127.0.0.1).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import threading
import time
from types import TracebackType

MAX_CONNECTIONS = 64
MAX_BUFFER = 1 << 20
_CHUNK = 64 * 1024


class LatencyProxy:
    """`LatencyProxy(("127.0.0.1", port), rtt_s)`; `url` is where clients connect."""

    def __init__(self, upstream: tuple[str, int], rtt_s: float) -> None:
        if not ipaddress.ip_address(upstream[0]).is_loopback:
            raise ValueError("the latency proxy relays to loopback only")
        if not 0 <= rtt_s <= 5:
            raise ValueError("rtt_s must be within 0..5 s")
        self.upstream, self.rtt_s = upstream, rtt_s
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="latency-proxy", daemon=True)
        self._server: asyncio.AbstractServer | None = None
        self._slots = asyncio.Semaphore(MAX_CONNECTIONS)
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        """`https://127.0.0.1:<port>`."""
        return f"https://127.0.0.1:{self.port}"

    def __enter__(self) -> LatencyProxy:
        self._thread.start()
        self._ready.wait(5)
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._serve, "127.0.0.1", 0)
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            self._server.close()
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            self._loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            self._loop.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            async with self._slots:
                opened = time.monotonic()
                up_reader, up_writer = await asyncio.open_connection(*self.upstream)
                half = self.rtt_s / 2
                await asyncio.gather(
                    _pipe(reader, up_writer, half, not_before=opened + self.rtt_s),
                    _pipe(up_reader, writer, half, not_before=0.0),
                    return_exceptions=True,
                )
        except (asyncio.CancelledError, OSError):
            pass  # stopped, or the upstream is gone: the client sees the connection close
        finally:
            self._tasks.discard(task)
            writer.close()


async def _pipe(
    src: asyncio.StreamReader, dst: asyncio.StreamWriter, delay: float, *, not_before: float
) -> None:
    """Copy src to dst, each chunk `delay` after it was read (and not before `not_before`)."""
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(maxsize=MAX_BUFFER // _CHUNK)

    async def read() -> None:
        while data := await src.read(_CHUNK):
            await queue.put((max(time.monotonic() + delay, not_before), data))
        await queue.put((time.monotonic() + delay, b""))

    async def write() -> None:
        while True:
            due, data = await queue.get()
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                with contextlib.suppress(OSError):
                    dst.write_eof()
                return
            dst.write(data)
            await dst.drain()

    reader = asyncio.ensure_future(read())
    try:
        await write()
    finally:
        reader.cancel()
        with contextlib.suppress(OSError):
            dst.close()
