#!/usr/bin/env bash
# Point the repository's actions at a prebuilt image: their `image:` (the Dockerfile, as
# `Dockerfile` in action.yml or `../Dockerfile` in scan/action.yml) becomes
# `image: docker://REGISTRY/NAME@sha256:<digest>`; every other line stays as it is (the
# scan action keeps its `args: [scan]`). The release workflow runs it on the release
# commit only; main keeps building from the Dockerfile.
#   scripts/release-pin-action.sh ghcr.io/acme/cpi-cert-rotate@sha256:<64 hex> [ACTION.yml ...]
# Without files: action.yml and scan/action.yml, the two actions of this repository, so a
# release can never pin one and leave the other building. A reference without a digest (a
# tag can be moved), or a file whose `runs:` is not exactly `using: docker`, an image that
# is the Dockerfile, and optionally `args:`, is refused, and then no file is written.
set -euo pipefail
ref=${1:?usage: release-pin-action.sh IMAGE@sha256:DIGEST [ACTION.yml ...]}
shift
if [[ $# -eq 0 ]]; then
  set -- action.yml scan/action.yml
fi
if [[ ! "$ref" =~ ^[a-z0-9.:-]+(/[a-z0-9._-]+)+@sha256:[0-9a-f]{64}$ ]]; then
  echo "release-pin-action: '$ref' is not REGISTRY/NAME@sha256:<64 hex digits>" >&2
  exit 2
fi
# The image line: the Dockerfile beside or above the action file; scan/action.yml tells
# zizmor why a build is fine there (a pinned image needs no such comment).
image='  image: (\.\./)?Dockerfile( # zizmor: ignore\[unpinned-images\])?'
expected="^runs:"$'\n'"  using: docker"$'\n'"$image("$'\n'"  args:("$'\n'"    - [a-z0-9-]+)+)?$"
for action in "$@"; do
  runs=$(sed -n '/^runs:$/,$p' "$action")
  if [[ ! "$runs" =~ $expected ]]; then
    echo "release-pin-action: $action must end with a runs: block of exactly:" >&2
    printf '%s\n' "runs:" "  using: docker" "  image: Dockerfile   (or ../Dockerfile)" \
      "  args: [...]        (optional, one item a line)" >&2
    exit 2
  fi
done
for action in "$@"; do
  tmp=$(mktemp "$action.XXXXXX")
  sed -E "s|^$image\$|  image: docker://$ref|" "$action" > "$tmp"
  mv "$tmp" "$action"
done
