"""A local Cloud Foundry + UAA + Cloud Integration landscape for tests, demo and benchmarks.

Not part of the container image. `Landscape` is the entry point; see `landscape.py`.
"""

from .landscape import Landscape
from .pki import Minted

__all__ = ["Landscape", "Minted"]
