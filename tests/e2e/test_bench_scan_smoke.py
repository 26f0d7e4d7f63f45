"""The fleet scan benchmark still runs and says what it must: fewer calls per app."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from checkout_kit import checkout_env

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BENCH = Path(__file__).parents[2] / "bench" / "scan_fleet.py"


def test_benchmark_compares_the_scan_with_the_per_app_approach() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH), "--apps", "20", "--latency-ms", "0", "--parallel", "2"],
        env=checkout_env(),
        capture_output=True,
        text=True,
        timeout=240,
        check=True,
    )
    rows = {
        line[7:23].strip(): line.split()
        for line in result.stdout.splitlines()
        if line[:6].strip() == "20"
    }
    assert set(rows) == {"per app", "scan, parallel 2"}, result.stdout
    per_app, fleet = float(rows["per app"][-4]), float(rows["scan, parallel 2"][-4])
    assert fleet < per_app
    assert fleet < 2.5  # two reads per app, plus a handful of list calls for all of them
    assert rows["per app"][-2:] == ["1.00x", "1.00x"]
