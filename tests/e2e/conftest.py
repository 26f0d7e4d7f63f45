"""Fixtures for end-to-end runs of the engine against the local sandbox landscape."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from cf_sandbox import Landscape


@pytest.fixture
def landscape_factory() -> Iterator[Callable[..., Landscape]]:
    """Start sandboxes with given options; all are stopped after the test."""
    with ExitStack() as stack:

        def start(**options: Any) -> Landscape:
            options.setdefault("instances", 3)
            return stack.enter_context(Landscape(**options))

        yield start


@pytest.fixture
def landscape(landscape_factory: Callable[..., Landscape]) -> Landscape:
    """A current landscape: CC 3.228, bindings limit 5, 3 instances."""
    return landscape_factory()
