#!/usr/bin/env bash
# Builds Shopify's Toxiproxy server (pinned below) from the Go module proxy, once, into a cache outside
# the repository, inside a copy of its own module (its go.sum as it is). Prints the directory holding
# `toxiproxy-server`. The fault-injection tests (tests/chaos) put it between Smith and the API server.
set -euo pipefail
TOXIPROXY_VERSION=v2.5.0
module=github.com/Shopify/toxiproxy/v2
out="${SMITH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/smith}/toxiproxy/${TOXIPROXY_VERSION}"
if [[ -x "$out/toxiproxy-server" ]]; then
  echo "$out"
  exit 0
fi
export GOTOOLCHAIN=local GOFLAGS="-mod=mod -trimpath" CGO_ENABLED=0
source "$(dirname "$0")/../lib/gomodule.sh"
module_source "$module" "$TOXIPROXY_VERSION" toxiproxy
mkdir -p "$out"
start=$SECONDS
echo "building toxiproxy $TOXIPROXY_VERSION ..." >&2
(cd "$module_src" && go build -ldflags "-s -w" -o "$out/toxiproxy-server.tmp" ./cmd/server)
mv "$out/toxiproxy-server.tmp" "$out/toxiproxy-server"
echo "built toxiproxy in $((SECONDS - start))s" >&2
echo "$out"
