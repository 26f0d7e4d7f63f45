"""Fixtures for the Action's tests."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

# The helper modules beside this file are imported by name, also under
# `--import-mode=importlib`, which does not put test folders on sys.path.
sys.path.insert(0, str(Path(__file__).parent))

from material_kit import ClientMaterial, mint_client_material


@pytest.fixture(scope="session")
def client_material() -> ClientMaterial:
    return mint_client_material()


@pytest.fixture
def landscape_factory() -> Iterator[Callable[..., Any]]:
    """Start sandbox landscapes (2 instances unless told); all stop after the test."""
    from cf_sandbox import Landscape

    with ExitStack() as stack:

        def start(**options: Any) -> Any:
            options.setdefault("instances", 2)
            return stack.enter_context(Landscape(**options))

        yield start


@pytest.fixture
def landscape(landscape_factory: Callable[..., Any]) -> Any:
    return landscape_factory()
