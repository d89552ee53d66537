#!/usr/bin/env bash
# Build (Release) and run tcpx-bench: a receiver and a sender process on
# loopback, random data verified byte for byte, a throughput table with the
# raw-TCP ceiling of the same run. Extra arguments go to tcpx-bench.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
build=${TCPX_BUILD_DIR:-build-release}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DTCPX_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" --target tcpx-bench
exec "$build/tools/tcpx-bench" "$@"
