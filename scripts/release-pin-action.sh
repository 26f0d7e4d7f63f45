#!/usr/bin/env bash
# Point action.yml at a prebuilt image: `image: Dockerfile` becomes
# `image: docker://REGISTRY/NAME@sha256:<digest>`. The release workflow runs it on the
# release commit only; main keeps building from the Dockerfile.
#   scripts/release-pin-action.sh ghcr.io/acme/cpi-cert-rotate@sha256:<64 hex> [action.yml]
# A reference without a digest (a tag can be moved) or an action.yml that does not say
# exactly `image: Dockerfile` under `runs:` is refused, and nothing is written.
set -euo pipefail
ref=${1:?usage: release-pin-action.sh IMAGE@sha256:DIGEST [action.yml]}
action=${2:-action.yml}
if [[ ! "$ref" =~ ^[a-z0-9.:-]+(/[a-z0-9._-]+)+@sha256:[0-9a-f]{64}$ ]]; then
  echo "release-pin-action: '$ref' is not REGISTRY/NAME@sha256:<64 hex digits>" >&2
  exit 2
fi
runs=$(sed -n '/^runs:$/,$p' "$action")
expected=$'runs:\n  using: docker\n  image: Dockerfile'
if [[ "$runs" != "$expected" ]]; then
  echo "release-pin-action: $action must end with exactly:" >&2
  printf '%s\n' "$expected" >&2
  exit 2
fi
tmp=$(mktemp "$action.XXXXXX")
sed "s#^  image: Dockerfile\$#  image: docker://$ref#" "$action" > "$tmp"
mv "$tmp" "$action"
