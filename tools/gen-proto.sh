#!/usr/bin/env bash
# Generates Python code and type stubs from proto/smith/v1 into the directory given (default: the
# committed location in libs/proto/src). `make proto-check` generates into a temporary directory and diffs.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/libs/proto/src}
bin=$(dirname "$(uv run --frozen python -c 'import sys; print(sys.executable)')")
mkdir -p "$out/smith/v1"
rm -f "$out"/smith/v1/*_pb2*.py "$out"/smith/v1/*_pb2*.pyi
(cd "$root/proto" && uv run --frozen python -m grpc_tools.protoc -I . \
  --plugin=protoc-gen-mypy="$bin/protoc-gen-mypy" --plugin=protoc-gen-mypy_grpc="$bin/protoc-gen-mypy_grpc" \
  --python_out="$out" --grpc_python_out="$out" --mypy_out="$out" --mypy_grpc_out="$out" \
  smith/v1/*.proto)
touch "$out/smith/__init__.py" "$out/smith/v1/__init__.py"
[[ -f "$out/smith/py.typed" ]] || touch "$out/smith/py.typed"
