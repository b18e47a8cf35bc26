# Sourced by the build scripts of tools built from their own Go module (tools/peers, tools/tilt).
#
# module_source <module> <version> <name>: sets $module_src to a writable copy of the module's source
# from the module cache (downloaded through the Go module proxy, checksums verified) in a temporary
# directory removed when the script exits. Building inside it uses the module's own go.sum and replace
# lines as they are.
module_source() {
  local dir
  dir=$(cd /tmp && go mod download -json "$1@$2" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
  module_work=$(mktemp -d)
  trap 'chmod -R u+w "$module_work"; rm -rf "$module_work"' EXIT
  cp -r "$dir" "$module_work/$3"
  chmod -R u+w "$module_work/$3"
  module_src="$module_work/$3"
}
