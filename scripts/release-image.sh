#!/usr/bin/env bash
# Build the Action's image for every platform, check each one, and push them as one
# multi-platform index; prints `digest=sha256:...` (and appends it to $GITHUB_OUTPUT).
#   scripts/release-image.sh REGISTRY/NAME TAG
# Environment:
#   PLATFORMS      default linux/amd64,linux/arm64 (others run under qemu-user-static)
#   BUILD_FLAGS    extra `podman build` flags, word-split (CI here: the local base and
#                  the proxy's CA; see tests/action/podman_kit.py)
#   PUSH_FLAGS     extra `podman manifest push` flags, word-split (e.g. --cert-dir DIR)
#   SOURCE_DATE_EPOCH  image and file timestamps (default: the HEAD commit's time), so
#                  that they say which commit, not when the build ran (apt still installs
#                  the bookworm packages current at build time)
# podman, because it runs the same here and on a GitHub runner (ubuntu-24.04 has it).
set -euo pipefail
repo=${1:?usage: release-image.sh REGISTRY/NAME TAG}
tag=${2:?usage: release-image.sh REGISTRY/NAME TAG}
platforms=${PLATFORMS:-linux/amd64,linux/arm64}
read -r -a build_flags <<< "${BUILD_FLAGS:-}"
read -r -a push_flags <<< "${PUSH_FLAGS:-}"
cd "$(dirname "$0")/.."
epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
source_url=${SOURCE_URL:-https://github.com/${GITHUB_REPOSITORY:-unknown/cpi-cert-rotate}}
list="localhost/cpi-cert-rotate-release:$tag-$$"
work=$(mktemp -d)
trap 'podman manifest rm "$list" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

podman build --platform "$platforms" --manifest "$list" --timestamp "$epoch" \
  --label "org.opencontainers.image.source=$source_url" \
  --label "org.opencontainers.image.revision=$revision" \
  --label "org.opencontainers.image.version=$tag" \
  --label "org.opencontainers.image.licenses=Apache-2.0" \
  --label "org.opencontainers.image.description=cpi-cert-rotate GitHub Action" \
  "${build_flags[@]}" .

# Each platform's image must be that platform (a base digest that is not a multi-arch
# index would give every platform the same architecture) and must import the Action.
IFS=, read -r -a wanted <<< "$platforms"
for platform in "${wanted[@]}"; do
  arch=${platform#linux/}
  machine=$(podman run --rm --platform "$platform" --entrypoint /opt/venv/bin/python "$list" \
    -B -c 'import sys; sys.path[:0] = ["/action"]; import platform, cpi_cert_rotate.action
print(platform.machine())' \
    2>"$work/err") || { cat "$work/err" >&2; exit 1; }
  case "$arch:$machine" in
    amd64:x86_64 | arm64:aarch64) echo "release-image: $platform runs ($machine)" >&2 ;;
    *) echo "release-image: $platform image runs as '$machine'" >&2; exit 1 ;;
  esac
done

podman manifest push --all --format oci --digestfile "$work/digest" "${push_flags[@]}" \
  "$list" "docker://$repo:$tag"
digest=$(cat "$work/digest")
[[ "$digest" =~ ^sha256:[0-9a-f]{64}$ ]] || { echo "release-image: bad digest '$digest'" >&2; exit 1; }
echo "digest=$digest"
if [[ -n "${GITHUB_OUTPUT:-}" ]]; then echo "digest=$digest" >> "$GITHUB_OUTPUT"; fi
