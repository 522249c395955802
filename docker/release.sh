#!/usr/bin/env bash
# Cross-compile static parley binaries for people without Go, with the
# version and commit stamped in (`parley version` prints both), and their
# SHA256SUMS.
#
#   docker/release.sh [OUTDIR]            (default dist/)
#   VERSION=v0.3.0 docker/release.sh      (default: git describe)
#   TARGETS="linux/amd64 windows/arm64" docker/release.sh
#
# CGO_ENABLED=0 everywhere: the store's SQLite is modernc.org/sqlite (pure
# Go), so no C toolchain is needed for any target.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-$root/dist}"
version="${VERSION:-$(git -C "$root" describe --tags --always --dirty 2>/dev/null || echo dev)}"
commit="${COMMIT:-$(git -C "$root" rev-parse HEAD 2>/dev/null || echo unknown)}"
targets="${TARGETS:-linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64}"

mkdir -p "$out"
cd "$root"
files=()
for t in $targets; do
	os="${t%/*}" arch="${t#*/}"
	name="parley-${version}-${os}-${arch}"
	[ "$os" = windows ] && name="$name.exe"
	echo "building $name" >&2
	CGO_ENABLED=0 GOOS="$os" GOARCH="$arch" go build -trimpath \
		-ldflags "-s -w -X main.version=${version} -X main.commit=${commit}" \
		-o "$out/$name" ./cmd/parley
	files+=("$name")
done
(cd "$out" && sha256sum "${files[@]}" > SHA256SUMS)
echo "$out"
