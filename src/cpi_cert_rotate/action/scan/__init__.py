"""The scan action (scan/action.yml): the fleet scan as a GitHub Action step.

A second action in this repository, run from the same image as the rotation
(`entrypoint.py scan`): its own inputs (no key, no app: it only reads) and its own
outputs (`due`, the matrix a rotate job is fed with). Masking, outputs, summary and log
lines go through `gha`, as the main action's do.
"""

from .run import main, run

__all__ = ["main", "run"]
