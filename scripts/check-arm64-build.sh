#!/usr/bin/env bash
# Cross-compiles the whole addon for arm64 (Linux, NEON kernels) with Debian's
# aarch64 cross compiler, to prove the CMake logic and the NEON kernels build
# on a machine that cannot run them. Usage: bash scripts/check-arm64-build.sh
set -euo pipefail
cd "$(dirname "$0")/.."
compiler=${AARCH64_CXX:-aarch64-linux-gnu-g++}
if ! command -v "$compiler" >/dev/null; then
  echo "check-arm64-build: $compiler not found (apt-get install g++-aarch64-linux-gnu)" >&2
  exit 1
fi
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
# cmake-js normally passes CMAKE_JS_INC; the Node-API headers are plain C headers, the same for every arch.
cmake -S . -B "$build" -DCMAKE_SYSTEM_NAME=Linux -DCMAKE_SYSTEM_PROCESSOR=aarch64 \
  -DCMAKE_CXX_COMPILER="$compiler" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_JS_INC="$(node -p "require('node-api-headers').include_dir")" >/dev/null
cmake --build "$build" -j 2 >/dev/null
# A shared library links with undefined symbols; Node-API's are resolved by
# node at load, but none of ours may be missing (a kernel not built for arm64).
missing=$(aarch64-linux-gnu-nm -uC "$build/simdformer.node" | grep 'simdformer::' || true)
if [ -n "$missing" ]; then
  echo "check-arm64-build: undefined simdformer symbols:" >&2
  echo "$missing" >&2
  exit 1
fi
echo "check-arm64-build: ok: $(file -b "$build/simdformer.node" | cut -d, -f1-2)"
