"""Fixtures for the Action's tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# The helper modules beside this file are imported by name, also under
# `--import-mode=importlib`, which does not put test folders on sys.path.
sys.path.insert(0, str(Path(__file__).parent))

from material_kit import ClientMaterial, mint_client_material


@pytest.fixture(scope="session")
def client_material() -> ClientMaterial:
    return mint_client_material()
