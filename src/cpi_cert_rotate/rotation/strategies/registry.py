"""Every strategy of this package, by its `Strategy` name, found by reading the package.

A module here that defines `STRATEGY` is a strategy; nothing else lists them. Adding one is
adding its module (and its name to `models.Strategy`, the word users type).
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache
from pathlib import Path

from ...models import Strategy
from .base import RotationStrategy


@cache
def registry() -> dict[Strategy, RotationStrategy]:
    """The strategies by name; `auto` is none of them, it picks one (`auto.select`)."""
    found: dict[Strategy, RotationStrategy] = {}
    for module in pkgutil.iter_modules([str(Path(__file__).parent)]):
        loaded = importlib.import_module(f"{__package__}.{module.name}")
        strategy: RotationStrategy | None = getattr(loaded, "STRATEGY", None)
        if strategy is not None:
            found[strategy.name] = strategy
    return found


def by_preference() -> list[RotationStrategy]:
    """The strategies `auto` may pick, in the order it tries them."""
    ranked = [s for s in registry().values() if s.preference is not None]
    return sorted(ranked, key=lambda s: s.preference or 0)
