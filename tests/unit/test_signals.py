"""SIGINT/SIGTERM become a stop request for the duration of a block, then handlers return."""

from __future__ import annotations

import os
import signal
import threading

from cpi_cert_rotate.signals import stop_requested_on_signals


def test_signals_set_the_event_and_are_recorded() -> None:
    before = signal.getsignal(signal.SIGTERM)
    event = threading.Event()
    with stop_requested_on_signals(event) as received:
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGINT)
        assert event.wait(2)
    assert received == ["SIGTERM", "SIGINT"]
    assert signal.getsignal(signal.SIGTERM) is before


def test_outside_the_main_thread_the_block_runs_unchanged() -> None:
    seen: list[object] = []

    def worker() -> None:
        with stop_requested_on_signals(threading.Event()) as received:
            seen.append(received)

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen == [[]]
