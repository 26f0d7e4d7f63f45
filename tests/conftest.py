"""Shared pytest configuration: markers are registered in pyproject.toml."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from openbao_kit import OpenBao


@pytest.fixture(scope="session")
def openbao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenBao]:
    """One real OpenBao dev server per worker (tests/openbao_kit.py); tests use own mounts."""
    from openbao_kit import OpenBao

    with OpenBao.start(tmp_path_factory.mktemp("openbao")) as bao:
        yield bao
