"""The targets benchmark still runs and says what it must: one login for every target."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from checkout_kit import checkout_env

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BENCH = Path(__file__).parents[2] / "bench" / "targets_fleet.py"


def test_benchmark_compares_one_run_per_app_with_one_targets_run() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH), "--apps", "10", "--latency-ms", "0", "--parallel", "2"],
        env=checkout_env(),
        capture_output=True,
        text=True,
        timeout=240,
        check=True,
    )
    rows = {line[:22].strip(): line[22:].split() for line in result.stdout.splitlines()[3:]}
    assert set(rows) == {"per app", "per app, 4 at a time", "targets, parallel 2"}, result.stdout
    targets = int(rows["per app"][0])
    assert targets >= 3
    assert int(rows["per app"][1]) == targets  # a login per run
    assert int(rows["targets, parallel 2"][1]) == 1  # one login for the whole file
    assert rows["per app"][-2:] == ["1.00x", "1.00x"]
