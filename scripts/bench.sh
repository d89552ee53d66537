#!/usr/bin/env bash
# Build (Release) and run tcpx-bench: a receiver and a sender process on
# loopback, random data verified byte for byte, a throughput table with the
# raw-TCP ceiling of the same run. Arguments go to tcpx-bench (--help).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
build=${TCPX_BUILD_DIR:-build-release}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DTCPX_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" --target tcpx-bench
# With no arguments, use the GPU when there is one: a GPU table (GPU 0 to
# GPU 1 when there are two, else GPU 0 to GPU 0) and the host table beside it.
if [ $# -eq 0 ] && command -v nvidia-smi >/dev/null && nvidia-smi -L 2>/dev/null | grep -q '^GPU'; then
  set -- --gpu
fi
exec "$build/tools/tcpx-bench" "$@"
