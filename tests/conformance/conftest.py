"""Fixtures for the conformance tests: one landscape per module (they only read, or undo
what they change), and a logged-in raw client."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conformance_kit import Api

from cf_sandbox import Landscape


@pytest.fixture(scope="module")
def landscape() -> Iterator[Landscape]:
    with Landscape(instances=2) as ls:
        yield ls


@pytest.fixture(scope="module")
def api(landscape: Landscape) -> Api:
    return Api(landscape)
