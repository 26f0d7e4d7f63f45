"""The rotation engine: staged, verified, zero-downtime, rolled back on failure.

`rotate(request)` is the only entry point; it returns a `Report` for every outcome it
can describe, and knows nothing of GitHub or of how inputs arrived.
"""

from .engine import rotate

__all__ = ["rotate"]
