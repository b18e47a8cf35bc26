#!/usr/bin/env bash
# Builds the peers `make bench ARGS=--peers` runs beside Smith — kro (kubernetes-sigs/kro), pinned below —
# from the Go module proxy, once, into a cache outside the repository. Builds inside a copy of the
# module's own source, so its go.sum (and its replace lines) are used as they are. Prints the directory
# holding `kro` (the controller) and `crds/` (its CRDs). Not part of CI: only the benchmark needs it.
set -euo pipefail
KRO_VERSION=v0.9.4
module=github.com/kubernetes-sigs/kro
out="${SMITH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/smith}/peers/kro-${KRO_VERSION}"
if [[ -x "$out/kro" && -d "$out/crds" ]]; then
  echo "$out"
  exit 0
fi
export GOTOOLCHAIN=local GOFLAGS="-mod=mod -trimpath" CGO_ENABLED=0
source "$(dirname "$0")/../lib/gomodule.sh"
module_source "$module" "$KRO_VERSION" kro
mkdir -p "$out/crds"
start=$SECONDS
echo "building kro $KRO_VERSION ..." >&2
(cd "$module_src" && go build -ldflags "-s -w" -o "$out/kro.tmp" ./cmd/controller)
cp "$module_src"/helm/crds/*.yaml "$out/crds/"
mv "$out/kro.tmp" "$out/kro"
echo "built kro in $((SECONDS - start))s" >&2
echo "$out"
