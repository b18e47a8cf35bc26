#!/usr/bin/env bash
# Builds Tilt (tilt-dev/tilt), pinned below, from the Go module proxy, once, into a cache outside the
# repository. Prints the directory holding `tilt`.
#
# The proxy serves this exact version (not Tilt's version list). The build runs inside a copy of the
# module's own source so that its go.sum (which holds the hashes of two dependencies the checksum database
# does not know) and its three replace lines are used as they are; checksum verification stays on.
# The module zip has no web UI assets, so a one-page placeholder stands in for them: `tilt ci` and
# `tilt up` need none (the UI is not used by Smith's dev loop; `tilt up` serves the placeholder).
set -euo pipefail
TILT_VERSION=v0.33.21
TILT_DATE=2024-11-08
module=github.com/tilt-dev/tilt
# Bump `recipe` when the build commands below change in a way that changes the binary.
recipe=1
out="${SMITH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/smith}/tilt/${TILT_VERSION}-r${recipe}"
if [[ -x "$out/tilt" ]]; then
  echo "$out"
  exit 0
fi
export GOTOOLCHAIN=local GOFLAGS="-mod=mod -trimpath" CGO_ENABLED=1
source "$(dirname "$0")/../lib/gomodule.sh"
module_source "$module" "$TILT_VERSION" tilt
mkdir -p "$module_src/pkg/assets/build" "$out"
cat >"$module_src/pkg/assets/build/index.html" <<'HTML'
<!doctype html><title>Tilt</title><p>Tilt built from Go modules for Smith: no web UI. Use <code>tilt ci</code>, <code>tilt get</code> and <code>tilt logs</code>.</p>
HTML
start=$SECONDS
echo "building tilt $TILT_VERSION (about 10 minutes from an empty Go cache on 2 cores) ..." >&2
(cd "$module_src" && go build -ldflags "-s -w -X main.version=${TILT_VERSION#v} -X main.date=$TILT_DATE" \
  -o "$out/tilt.tmp" ./cmd/tilt)
mv "$out/tilt.tmp" "$out/tilt"
echo "built tilt in $((SECONDS - start))s" >&2
echo "$out"
