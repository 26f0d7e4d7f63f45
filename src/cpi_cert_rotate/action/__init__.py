"""The GitHub Action adapter: inputs -> request, masking, outputs, job summary; no HTTP.

- `step`: one run in the order that keeps secrets out of the log (`step.main` is the
  container's entry, `python -m cpi_cert_rotate.action` runs it too);
- `inputs`: the runner's `INPUT_*` variables, checked by `request.build`;
- `report`: outputs, job summary and annotations of a `Report` (pure functions);
- `gha`: the runner's protocol (masking, workflow commands, summary, OIDC token).

Nothing is imported here, so that importing one module never runs another.
"""
