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
file "$build/simdformer.node" 2>/dev/null || ls -l "$build/simdformer.node"
echo "check-arm64-build: ok ($(grep -c 'neon/' "$build/CMakeFiles/simdformer.dir/build.make" 2>/dev/null || echo '?') NEON build steps)"
