#!/usr/bin/env bash
# Build the parley image: a static binary, then a FROM scratch image.
#   docker/build.sh [TAG]     (default parley:dev)
set -euo pipefail
tag="${1:-parley:dev}"
root="$(cd "$(dirname "$0")/.." && pwd)"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT

version="$(git -C "$root" describe --tags --always --dirty 2>/dev/null || echo dev)"
cd "$root"
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${version} -X main.commit=$(git -C "$root" rev-parse HEAD 2>/dev/null || echo unknown)" -o "$stage/parley" ./cmd/parley
mkdir "$stage/data"
cp docker/Dockerfile "$stage/Dockerfile"
docker build --quiet --build-arg VERSION="$version" -t "$tag" "$stage" >/dev/null
echo "$tag"
