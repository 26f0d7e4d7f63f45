"""The GitHub Action adapter: inputs -> request, masking, outputs, job summary; no HTTP.

- `step`: one run in the order that keeps secrets out of the log (`main` is the entry);
- `inputs`: the runner's `INPUT_*` variables, checked by `request.build`;
- `report`: outputs, job summary and annotations of a `Report` (pure functions);
- `gha`: the runner's protocol (masking, workflow commands, summary, OIDC token).
"""

from .step import main

__all__ = ["main"]
