#!/usr/bin/env bash
# The release commit and its tags, made with plain git so that they run the same here
# (tests/release) and in the release workflow.
#   scripts/release-tag.sh check   X.Y.Z REMOTE
#       fails when X.Y.Z is not a version or the tag vX.Y.Z exists on REMOTE already
#   scripts/release-tag.sh publish X.Y.Z REGISTRY/NAME@sha256:DIGEST REMOTE
#       on top of HEAD, one commit whose action.yml and scan/action.yml run the prebuilt
#       image by digest (scripts/release-pin-action.sh), tagged vX.Y.Z; the major tag vX
#       moves to it; both are pushed to REMOTE. The branch (main) is not touched: it keeps
#       building from the Dockerfile, and only the tags reach the release commit.
# With GH_TOKEN and GITHUB_SERVER_URL set (the workflow), git authenticates with the token.
set -euo pipefail
mode=${1:?usage: release-tag.sh check|publish X.Y.Z [IMAGE@DIGEST] REMOTE}
version=${2:?version X.Y.Z}
if [[ ! "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
  echo "release-tag: version must be X.Y.Z, got '$version'" >&2
  exit 2
fi
tag="v$version"
major="v${version%%.*}"

# In the workflow: GitHub's token reaches git through the environment (as actions/checkout
# would put it into .git/config), never on a command line, masked in the log first.
if [[ -n "${GH_TOKEN:-}" && -n "${GITHUB_SERVER_URL:-}" ]]; then
  auth=$(printf 'x-access-token:%s' "$GH_TOKEN" | base64 -w0)
  echo "::add-mask::$auth"
  export GIT_CONFIG_COUNT=1
  export GIT_CONFIG_KEY_0="http.$GITHUB_SERVER_URL/.extraheader"
  export GIT_CONFIG_VALUE_0="AUTHORIZATION: basic $auth"
fi

tag_exists() {
  local refs
  if ! refs=$(git ls-remote --tags "$1" "refs/tags/$tag"); then
    echo "release-tag: cannot list the tags of $1" >&2
    exit 1
  fi
  [[ -n "$refs" ]]
}

case "$mode" in
  check)
    remote=${3:?remote}
    if tag_exists "$remote"; then
      echo "release-tag: tag $tag already exists on $remote; releases are immutable" >&2
      exit 1
    fi
    echo "release-tag: $tag is free"
    ;;
  publish)
    image=${3:?image reference}
    remote=${4:?remote}
    if tag_exists "$remote"; then
      echo "release-tag: tag $tag already exists on $remote; releases are immutable" >&2
      exit 1
    fi
    if [[ -n "$(git status --porcelain --untracked-files=no)" ]]; then
      echo "release-tag: the work tree has changes; release a clean checkout" >&2
      exit 1
    fi
    base=$(git rev-parse HEAD)
    git checkout --quiet --detach  # the commit must not move a branch
    "$(dirname "$0")/release-pin-action.sh" "$image" action.yml scan/action.yml
    git -c user.name="github-actions[bot]" \
      -c user.email="41898282+github-actions[bot]@users.noreply.github.com" \
      commit --quiet --no-verify -m "release $tag: action.yml and scan/action.yml run ${image}" \
      -m "Built from $base; main keeps building from the Dockerfile." -- action.yml scan/action.yml
    git -c user.name="github-actions[bot]" \
      -c user.email="41898282+github-actions[bot]@users.noreply.github.com" \
      tag --annotate --message "$tag" "$tag"
    git tag --force "$major" "$tag^{commit}" >/dev/null
    git push --quiet --atomic "$remote" "refs/tags/$tag" "+refs/tags/$major"
    release=$(git rev-parse "$tag^{commit}")
    git checkout --quiet --detach "$base"
    echo "release-tag: $tag and $major -> $release (built from $base)"
    if [[ -n "${GITHUB_OUTPUT:-}" ]]; then echo "commit=$release" >> "$GITHUB_OUTPUT"; fi
    ;;
  *)
    echo "release-tag: unknown mode '$mode'" >&2
    exit 2
    ;;
esac
