"""Fixtures for the sandbox's contract tests: a fresh landscape and a raw CF v3 client."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sandbox_client import Cf

from cf_sandbox import Landscape


@pytest.fixture
def ls() -> Iterator[Landscape]:
    with Landscape(instances=3) as landscape:
        yield landscape


@pytest.fixture
def cf(ls: Landscape) -> Cf:
    return Cf(ls)
