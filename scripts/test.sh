#!/usr/bin/env bash
# Build everything with warnings as errors and run the whole test suite:
#   1. the normal build, every test (GPU tests skip without a GPU);
#   2. ASan+UBSan build, unit and integration tests;
#   3. TSan build, unit and integration tests (not the 256 MiB ones).
# TCPX_SANITIZERS="" skips 2 and 3 (e.g. TCPX_SANITIZERS="address").
# Extra arguments go to every ctest run (e.g. -R transfers).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
jobs=$(nproc)
status=0

run_suite() { # <build dir> <cmake args...>
  local dir=$1; shift
  echo "=== $dir: $*"
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTCPX_WERROR=ON "$@" >/dev/null
  cmake --build "$dir" -j"$jobs" >/dev/null
}

# Tests run two at a time (most wait on sockets, timers and peers, and the
# 2-minute soak would otherwise run alone); the TSan suite, whose tests are
# heavy on the CPU, one at a time (below).
run_suite "${TCPX_BUILD_DIR:-build-test}"
(cd "${TCPX_BUILD_DIR:-build-test}" && ctest --output-on-failure --timeout 600 -j2 "${@}") || status=1

for san in ${TCPX_SANITIZERS-address thread}; do
  dir="build-test-$san"
  # Sanitizer builds leave CUDA out: the host paths are what they check.
  run_suite "$dir" -DTCPX_SANITIZE="$san" -DTCPX_CUDA=OFF -DTCPX_BUILD_TOOLS=OFF
  # TSan: one test at a time, and not the two 256 MiB transfers (sizes, not
  # races, are what they check; normal and ASan builds run them).
  par=(-j2)
  [ "$san" = thread ] && par=(-j1 -E big256m)
  (cd "$dir" && ASAN_OPTIONS=detect_leaks=1 TSAN_OPTIONS=halt_on_error=1 \
     ctest --output-on-failure --timeout 900 "${par[@]}" -L "unit|integration" -LE netns "${@}") || status=1
done
exit $status
