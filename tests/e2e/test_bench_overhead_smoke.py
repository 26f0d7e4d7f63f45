"""The overhead benchmark still runs end to end, tiny: through its latency proxy, against
the cf CLI flow, and prints what it must (overhead beyond the floor, calls, the ratio)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from checkout_kit import checkout_env

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BENCH = Path(__file__).parents[2] / "bench" / "overhead.py"


def test_overhead_benchmark_prints_every_column() -> None:
    tiny = ["--repeat", "1", "--job-s", "0.1", "--start-s", "0.1", "--cli-poll-s", "0.05"]
    result = subprocess.run(
        [sys.executable, str(BENCH), "--instances", "1", "2", "--rtt-ms", "0", "20", *tiny],
        env=checkout_env(),
        capture_output=True,
        text=True,
        timeout=240,
        check=True,
    )
    rows = [line.split() for line in result.stdout.splitlines() if line[:6].strip().isdigit()]
    assert [(r[0], r[1]) for r in rows] == [("0", "1"), ("0", "2"), ("20", "1"), ("20", "2")]
    for _, _, wall, floor, overhead, calls, polls, cli, ratio in rows:
        assert float(wall) > float(floor) > 0
        assert float(overhead) == pytest.approx(float(wall) - float(floor), abs=0.02)
        assert int(calls) > int(polls) > 0
        assert float(cli) > 0
        assert ratio.endswith("x")
    # 20 ms each way costs round trips: the slower rows are the proxied ones
    assert float(rows[2][2]) > float(rows[0][2]), result.stdout
