"""The strategy benchmark still runs and says what it must: overlap has no failed call."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from checkout_kit import checkout_env

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BENCH = Path(__file__).parents[2] / "bench" / "compare_strategies.py"


def test_benchmark_compares_every_strategy_against_the_seed() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH), "--repeat", "1", "--start-s", "0.1", "--staging-s", "0.3"],
        env=checkout_env(),
        capture_output=True,
        text=True,
        timeout=240,
        check=True,
    )
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines() if line}
    assert {"overlap", "swap", "in-place", "restage"} <= rows.keys()
    assert rows["overlap"][2].startswith("0/"), result.stdout
    assert not rows["restage"][2].startswith("0/"), "the seed flow should show its outage"
    assert "ratio" in result.stdout
