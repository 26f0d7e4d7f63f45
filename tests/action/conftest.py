"""Fixtures for the Action's tests."""

from __future__ import annotations

import pytest
from material_kit import ClientMaterial, mint_client_material


@pytest.fixture(scope="session")
def client_material() -> ClientMaterial:
    return mint_client_material()
