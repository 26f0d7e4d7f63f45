"""Fixtures shared by the CF client unit tests: a test CA and the stateful loopback fake."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import trustme
from cf_fake import FakeCf


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    """A throwaway CA that issues the fake's server certificate."""
    return trustme.CA()


@pytest.fixture
def fake(ca: trustme.CA) -> Iterator[FakeCf]:
    """A fresh loopback CC + UAA fake per test, closed afterwards."""
    server = FakeCf(ca)
    yield server
    server.close()
